"""The application goes one way: CLI -> pipeline -> feature packages -> core, and nothing below imports above.

Read from the source with `ast`, not by importing: an import inside a function counts as much as one at the
top of a module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core.home import PROJECT_DIR

CORE = {"core"}
FEATURES = {"ingest", "expectations", "reports", "retention", "privacy", "metrics"}
APPLICATION = {"warehouse"}
TOOLS = {"samplegen"}  # the sample generator: a development tool that uses core only
OURS = CORE | FEATURES | APPLICATION | TOOLS
# What each layer may import of ours (its own package always).
ALLOWED = {
    **{package: CORE for package in CORE},
    **{package: CORE for package in FEATURES},
    **{package: OURS for package in APPLICATION},
    **{package: CORE for package in TOOLS},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in sorted(OURS):
        for path in sorted((PROJECT_DIR / package).rglob("*.py")):
            found[".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts)] = path
    return found


def imports(path: Path) -> set[str]:
    """The top-level package of every module `path` imports, anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & OURS


@pytest.mark.parametrize("module", list(modules()))
def test_no_import_runs_back_up_or_sideways(module):
    package = module.split(".")[0]
    wrong = imports(modules()[module]) - ALLOWED[package] - {package}
    assert not wrong, f"{module} imports {sorted(wrong)}: the layers are CLI -> pipeline -> features -> core"


def test_only_the_settings_module_touches_the_environment():
    users = [module for module, path in modules().items()
             if re.search(r"\bos\.environ\b|\bgetenv\(", path.read_text(encoding="utf-8"))]
    assert users == ["core.settings"]


def test_the_command_line_holds_no_sql_and_no_orchestration():
    cli = (PROJECT_DIR / "warehouse" / "cli.py").read_text(encoding="utf-8")
    assert not re.search(r"\b(select|insert|update|delete|create)\s+\S+\s+(from|into|set|table)\b", cli, re.I)
    called = {node.func.attr for node in ast.walk(ast.parse(cli)) if isinstance(node, ast.Call)
              and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
              and node.func.value.id == "pipeline"}
    # each command calls one pipeline function (ingest's progress bar also asks how many files there are)
    assert called <= {"generate", "ingest", "count_files", "build", "check", "report", "audit", "enforce", "erase",
                      "object_to_marketing", "daily_run", "demo", "subject_access", "rectify", "privacy_notice",
                      "lookup", "metrics", "dbt"}
    assert not re.search(r"^(from|import) (duckdb|core\.vault|core\.db)\b", cli, re.M)  # no database of its own
