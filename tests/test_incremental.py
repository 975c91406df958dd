"""Incremental builds: a day's exports recompute only what they touch, and give what a full rebuild gives.

On generated data: the first export days are built, then the last day's files arrive and are built
incrementally; then corrected versions of that day's files arrive (a withdrawn invoice, a customer gone from
the snapshot). After each incremental build every table of the vault and of the analytics database must
equal, row for row, what `warehouse build --full-refresh` gives from the same ingested data.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from conftest import cli
from vault import settings_of

import warehouse.build as build_module
from core.home import PROJECT_DIR, Home
from core.sql import literal
from core.vault import ALIAS, open_vault, vault_key
from samplegen import generate_exports
from warehouse.dbt import run_dbt

END = date.today()  # exported today: fresh, as the daily job expects
LAST_DAY = f"{END:%Y%m%d}"
# Columns that are the time of the build, not a result of the data.
BUILD_TIME = {("churn", "data_cutoff"): ["built_at"]}
# The incremental models' own bookkeeping (the changed customers: empty in a full build).
NOT_COMPARED = {("intermediate", "incremental_state"), ("build_state", "incremental_state"),
                ("intermediate", "int_changed_customers"), ("runs", "builds")}


def _warehouse(home: Home, *args: str) -> str:
    ran = cli(home, *args)
    assert ran.exit_code == 0, ran.output
    return ran.output


def _deliver(source: Path, inbox: Path, last_day: bool) -> None:
    for path in source.rglob("*_*.*"):
        if (LAST_DAY in path.name) == last_day:
            target = inbox / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _drop_last_line(path: Path) -> None:
    """A corrected export: the same file name, one row fewer."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))


def _tables(con, catalog: str) -> list[tuple[str, str]]:
    return [(s, t) for s, t in con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ? order by all", [catalog]
    ).fetchall() if (s, t) not in NOT_COMPARED]


def _differences(home: Home, copy: Path) -> dict[str, int]:
    """Rows in one build but not the other (both ways, duplicates counted), per table of vault and analytics."""
    con = open_vault(settings_of(home), read_only=True)
    differences = {}
    try:
        con.execute(f"attach {literal(copy / 'vault.duckdb')} as incremental_vault "
                    f"(encryption_key {literal(vault_key(settings_of(home)))}, read_only)")
        con.execute(f"attach {literal(home.analytics)} as full_analytics (read_only)")
        con.execute(f"attach {literal(copy / 'analytics.duckdb')} as incremental_analytics (read_only)")
        pairs = [(ALIAS, "incremental_vault", t) for t in _tables(con, ALIAS)]
        pairs += [("full_analytics", "incremental_analytics", t) for t in _tables(con, "full_analytics")]
        assert len(pairs) > 20 and _tables(con, "incremental_vault") == _tables(con, ALIAS)
        for full, incremental, (schema, table) in pairs:
            columns = ", ".join(f'"{c}"' for (c,) in con.execute(
                "select column_name from duckdb_columns() where database_name = ? and schema_name = ? "
                "and table_name = ? order by column_index", [full, schema, table]).fetchall()
                if c not in BUILD_TIME.get((schema, table), []))
            a, b = (f'select {columns} from {db}."{schema}"."{table}"' for db in (full, incremental))
            differences[f"{full}.{schema}.{table}"] = con.execute(
                f"select count(*) from (({a} except all {b}) union all ({b} except all {a}))").fetchone()[0]
    finally:
        con.close()
    return differences


def _compare_with_full_refresh(home: Home, tmp: Path) -> dict[str, int]:
    copy = tmp / "incremental"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    for name in ("vault.duckdb", "analytics.duckdb"):
        shutil.copy2(home.root / name, copy / name)
    _warehouse(home, "build", "--full-refresh")
    return _differences(home, copy)


def _rewritten_tables(home: Home) -> int:
    """How many times a build replaced a table by the copy of its kept rows (forget_changes), from dbt's log."""
    log = home.dbt_dir / "logs" / "dbt.log"
    return log.read_text(encoding="utf-8").count('__kept" rename to') if log.exists() else 0


def _marked_vectors(home: Home, table: str) -> int:
    """The 2,048-row vectors of a vault table with deleted rows: fewer rows than 2,048, the last one aside."""
    con = open_vault(settings_of(home), read_only=True)
    try:
        return con.execute(f"""
            select count(*) from (select rowid // 2048 as vector, count(*) as n from {table} group by vector)
            where n < 2048 and vector < (select max(rowid) // 2048 from {table})""").fetchone()[0]
    finally:
        con.close()


def _recomputed(home: Home) -> dict[str, int | None]:
    con = open_vault(settings_of(home), read_only=True)
    try:
        return dict(con.execute("select model, recomputed_keys from intermediate.incremental_state").fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    """Days 1-2 built; then day 3 built incrementally."""
    tmp = tmp_path_factory.mktemp("incremental")
    exports, inbox = tmp / "exports", tmp / "inbox"
    generate_exports(exports, customers=250, seed=5, start=date(2021, 1, 1), end=END, days=3)
    home = Home(tmp / "home")
    _deliver(exports, inbox, last_day=False)
    _warehouse(home, "ingest", "--inbox", str(inbox))
    _warehouse(home, "build")
    _deliver(exports, inbox, last_day=True)
    _warehouse(home, "ingest", "--inbox", str(inbox))
    _warehouse(home, "build")
    shutil.copytree(home.root, tmp / "after-day-3")  # as the day's build left it, for the tests that build on
    return tmp, home, inbox


def test_a_day_of_exports_recomputes_a_few_customers_not_all(daily):
    _, home, _ = daily
    recomputed = _recomputed(home)
    con = open_vault(settings_of(home), read_only=True)
    try:
        customers = con.execute("select count(*) from staging.stg_crm__customers").fetchone()[0]
        invoices = con.execute("select count(*) from staging.stg_billing__invoices").fetchone()[0]
        changed = con.execute("select count(*) from intermediate.int_changed_customers").fetchone()[0]
    finally:
        con.close()
    assert 0 < changed < customers / 4, (changed, customers)
    # computed once for the build: each customer-partitioned model recomputes that set, no more
    for model in ("int_invoices", "int_service_months", "int_customer_months", "int_retention__expiries"):
        assert recomputed[model] == changed, (model, recomputed[model], changed)
    assert 0 < recomputed["stg_billing__invoices"] < invoices / 10


def test_the_incremental_build_equals_a_full_refresh(daily):
    tmp, home, _ = daily
    differences = _compare_with_full_refresh(home, tmp)
    assert not {table: n for table, n in differences.items() if n}, differences
    # the full refresh recomputed everything: its bookkeeping says so
    assert set(_recomputed(home).values()) == {None}


def test_corrected_files_withdraw_what_they_no_longer_list(daily, monkeypatch):
    """Built with no budget for deletes: every incremental table is rewritten without the changed keys' rows.

    The first incremental build (the fixture) deletes them: at this size every delete is within its budget.
    """
    tmp, home, inbox = daily
    _drop_last_line(inbox / "billing" / f"invoices_{LAST_DAY}.csv")
    _drop_last_line(inbox / "crm" / f"customers_{LAST_DAY}.csv")
    _warehouse(home, "ingest", "--inbox", str(inbox))
    dbt, rewritten = build_module.run_dbt, _rewritten_tables(home)
    no_budget = {"incremental_delete_budget_mb": 0}
    monkeypatch.setattr(build_module, "run_dbt", lambda settings, *args, **kw: dbt(settings, *args,
                                                                                   extra_vars=no_budget, **kw))
    _warehouse(home, "build")
    # at least every customer-partitioned table (some customers changed); a staging table no corrected key
    # reached has nothing to remove
    customer_partitioned = sum("'changed_customers':" in p.read_text()  # their meta (macros/incremental/hooks.sql)
                               for p in (PROJECT_DIR / "models").rglob("*.sql"))
    assert _rewritten_tables(home) - rewritten >= customer_partitioned > 8
    differences = _compare_with_full_refresh(home, tmp)
    assert not {table: n for table, n in differences.items() if n}, differences


@pytest.mark.parametrize("fits", [True, False])
def test_the_delete_budget_counts_the_deletes_of_earlier_builds(daily, tmp_path, fits):
    """Deleted rows' markers stay in the table, and every read pins them again: a build with nothing new to
    delete still rewrites a table whose earlier deletes alone exceed the budget, and leaves one within it."""
    tmp, _, _ = daily
    home = Home(tmp_path / "home")
    shutil.copytree(tmp / "after-day-3", home.root)
    table = "staging.stg_billing__invoices"
    marked, rewritten = _marked_vectors(home, table), _rewritten_tables(home)
    assert marked > 0  # the day's build deleted the rows of the invoices its files listed
    budget = (marked + (0.5 if fits else -0.5)) * 16 / 1024  # MB, 16 KiB per marked vector
    assert run_dbt(settings_of(home), "run", "--select", "stg_billing__invoices",
                   extra_vars={"incremental_delete_budget_mb": budget}).success
    assert _recomputed(home)["stg_billing__invoices"] == 0  # no file since: no key to recompute
    assert _rewritten_tables(home) - rewritten == (0 if fits else 1)
    assert _marked_vectors(home, table) == (marked if fits else 0)


def test_a_model_built_without_its_changed_customers_recomputes_everyone(daily, tmp_path):
    """dbt run on one model alone: the changed customers were not computed for its window, so it takes all."""
    _, home, _ = daily
    alone = Home(tmp_path / "home")
    shutil.copytree(home.root, alone.root)
    con = open_vault(settings_of(alone))
    try:
        # as if int_changed_customers had last been built for an earlier load
        con.execute("update intermediate.incremental_state set load_id = load_id - 1 "
                    "where model = 'int_changed_customers'")
        customers = con.execute("""select count(*) from (select customer_id from staging.stg_services__services
                                   union select customer_id from staging.stg_billing__invoices)""").fetchone()[0]
    finally:
        con.close()
    assert run_dbt(settings_of(alone), "run", "--select", "int_service_months").success
    assert _recomputed(alone)["int_service_months"] == customers
