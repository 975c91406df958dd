# The two commands of the README: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# dbt and sqlfluff's dbt templater need these even when they only compile.
LINT_HOME := $(CURDIR)/var/lint
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: demo test lint bench lock clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	# compat: the project folder itself goes on sys.path, so each top-level package is importable as it appears
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --config-settings editable_mode=compat -e .
	touch $@

demo: $(VENV)/.installed
	$(BIN)/warehouse demo

test: $(VENV)/.installed
	$(BIN)/pytest

# sqlfluff compiles the models with dbt against an empty lint home in var/lint: its key files are made here, its
# paths are the dbt vars in .sqlfluff ([sqlfluff:templater:dbt:context]).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	mkdir -p $(LINT_HOME)/tmp
	for key in pseudonym vault; do test -f $(LINT_HOME)/$$key.key || $(BIN)/python -c "from core.keys import \
	  create_key; from pathlib import Path; create_key(Path('$(LINT_HOME)/$$key.key'))"; done
	$(BIN)/sqlfluff lint models macros

# Every stage at 10,000 and 100,000 customers, results into benchmarks/results (`make bench BENCH_ARGS="--customers
# 2000"` for another size; `nice -n 10 make bench` on a shared machine).
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py $(or $(BENCH_ARGS),--customers 10000 --customers 100000)

# Re-resolve the pinned dependencies into requirements.lock (needs the package index).
lock:
	rm -rf var/lock-venv && $(PYTHON) -m venv var/lock-venv
	var/lock-venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	var/lock-venv/bin/pip freeze --exclude-editable --disable-pip-version-check > requirements.lock
	rm -rf var/lock-venv

clean:
	rm -rf $(VENV) var target logs
