"""End to end on the shared demo home (tests/conftest.py): generate, ingest, dbt build, publish; the daily re-run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import cli
from vault import settings_of

from core.db import connect
from core.home import PROJECT_DIR
from core.settings import Settings
from core.vault import VaultError, open_vault
from warehouse import build as build_module
from warehouse.build import catalogue_project, project_fingerprint
from warehouse.dbt import DbtOutcome


@pytest.fixture
def demo_run(demo):
    """(home folder, inbox, the demo's result) as the tests below name them."""
    return demo.home.root, demo.inbox, demo.result


def test_the_demo_runs_the_daily_job_which_loads_every_file_builds_and_alerts_on_the_injected_problems(demo_run):
    home, inbox, ran = demo_run
    # The sample carries defects and overdue records on purpose: the job publishes, then exits 1 naming them.
    assert "Published" in ran.output, ran.output
    assert ran.exit_code == 0  # the demo lists the alerts of the daily job (exit 1) and ends normally
    assert "data-quality check failed" in ran.output and "past their retention period" in ran.output
    assert "file(s) refused" not in ran.output
    assert "stale" not in ran.output  # exported today: fresh (and the freshness queries found the load log)
    manifest = json.loads((inbox / "manifest.json").read_text())
    con = open_vault(settings_of(home), read_only=True)
    files = dict(con.execute("select source_file, rows_read from ingest.files where status = 'loaded'").fetchall())
    # Every file the generator wrote was loaded, and every row of it was read.
    assert {f["path"]: f["rows"] for f in manifest["files"]} == files
    entities = {row[0] for row in con.execute("select distinct system || '/' || entity from ingest.files").fetchall()}
    assert len(entities) == 9
    con.close()


def test_the_daily_job_archives_the_churn_report(demo_run):
    """The latest closed month issued, the running month provisional, an index of both, in both languages."""
    home, _, ran = demo_run
    archive = home / "reports" / "churn"
    months = {p.name: json.loads((p / "issues.json").read_text())["current"] for p in archive.iterdir() if p.is_dir()}
    closed = [m for m, issue in months.items() if not issue["provisional"]]
    running = [m for m, issue in months.items() if issue["provisional"]]
    assert len(closed) == 1 and len(running) <= 1 and months[closed[0]]["issue"] == 1
    for month, issue in months.items():
        assert sorted(issue["langs"]) == ["en", "fi"]
        assert all((archive / month / entry[kind]).exists() for entry in issue["langs"].values()
                   for kind in ("html", "pdf"))
    index = (archive / "index.en.html").read_text()
    assert all(f'data-month="{month}"' in index for month in months)
    assert str(archive / "index.en.html") in ran.output  # the demo says where the archive is


def test_injected_malformed_rows_are_rejected_at_their_line(demo_run):
    home, inbox, _ = demo_run
    manifest = json.loads((inbox / "manifest.json").read_text())
    malformed = {(d["file"], d["line"]) for d in manifest["defects"] if d["kind"] == "malformed_row"}
    assert malformed, "the sample should carry malformed rows at the default defect rate"
    con = open_vault(settings_of(home), read_only=True)
    rejected = set(con.execute("select source_file, line from ingest.rejects").fetchall())
    con.close()
    assert malformed <= rejected


def test_staging_gives_one_current_row_per_key_and_the_analytics_file_stands_alone(demo_run):
    home, _, _ = demo_run
    vault = open_vault(settings_of(home), read_only=True)
    customers, distinct = vault.execute(
        "select count(*), count(distinct customer_id) from staging.stg_crm__customers").fetchone()
    assert customers == distinct > 0
    bad_phones = vault.execute("""select count(*) from staging.stg_crm__customers
                                  where phone is not null and not regexp_matches(phone, '^\\+[1-9][0-9]{6,14}$')
                               """).fetchone()[0]
    assert bad_phones == 0
    products = vault.execute("select count(*) from staging.stg_services__products").fetchone()[0]
    vault.close()
    assert not (home / "analytics.next.duckdb").exists()
    analytics = connect(home / "analytics.duckdb", read_only=True)  # opened without the vault
    assert analytics.execute("select count(*) from core.dim_products").fetchone()[0] == products
    analytics.close()


def test_a_second_run_on_the_same_inbox_changes_nothing(demo_run):
    home, inbox, _ = demo_run
    con = open_vault(settings_of(home), read_only=True)
    before = con.execute("select count(*), max(load_id) from ingest.files").fetchone()
    con.close()
    again = cli(home, "ingest", "--inbox", str(inbox), "--json")
    assert again.exit_code == 0
    assert {json.loads(line)["status"] for line in again.stdout.splitlines()} == {"unchanged"}
    con = open_vault(settings_of(home), read_only=True)
    assert con.execute("select count(*), max(load_id) from ingest.files").fetchone() == before
    con.close()


def test_logs_and_console_output_carry_no_personal_data(demo_run):
    home, _, ran = demo_run
    con = open_vault(settings_of(home), read_only=True)
    values = {v for (v,) in con.execute("""
        select distinct v from (
            select unnest([hetu, email, phone_raw, last_name, street_address]) as v from staging.stg_crm__customers
        ) where length(v) >= 5""").fetchall()}
    con.close()
    assert len(values) > 100
    texts = [ran.output] + [p.read_text(errors="replace") for p in home.rglob("*.log")]
    leaks = {v for v in values for text in texts if v in text}
    assert not leaks, f"{len(leaks)} personal values found in logs or console output"


HETU_PATTERN = r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b"


def test_the_analytics_database_and_the_reports_hold_no_direct_identifier(demo_run):
    """Every text column of every analytics table, and every report, against the vault's identifiers."""
    home, _, _ = demo_run
    con = open_vault(settings_of(home), read_only=True)
    con.execute(f"attach '{home / 'analytics.duckdb'}' as analytics (read_only)")
    con.execute("""
        create temp table identifiers as
        select distinct v from (
            select unnest([hetu, email, phone, phone_raw, street_address, billing_street_address,
                           first_name || ' ' || last_name, last_name || ' ' || first_name]) as v
            from vault.staging.stg_crm__customers
            union all
            select unnest([holder_phone, holder_first_name || ' ' || holder_last_name])
            from vault.staging.stg_services__key_handovers
            union all
            select unnest([service_username, service_identifier]) from vault.staging.stg_services__services
        ) where length(v) >= 5""")
    assert con.execute("select count(*) from identifiers").fetchone()[0] > 500
    columns = con.execute("""
        select schema_name, table_name, column_name from duckdb_columns()
        where database_name = 'analytics' and data_type = 'VARCHAR'""").fetchall()
    assert len(columns) > 20
    hits = []
    for schema, table, column in columns:
        found = con.execute(f"""
            select count(*) from analytics."{schema}"."{table}" as t
            where t."{column}" in (select v from identifiers)
                or regexp_matches(t."{column}", '{HETU_PATTERN}')
                or exists (select 1 from identifiers where contains(v, '@') and contains(t."{column}", v))
        """).fetchone()[0]
        if found:
            hits.append(f"{schema}.{table}.{column}: {found} rows")
    identifiers = [v for (v,) in con.execute("select v from identifiers").fetchall()]
    con.close()
    assert not hits, hits

    reports = [p for p in (home / "reports").rglob("*") if p.suffix in (".html", ".json")
               and p.parent.name != "catalogue"]  # the catalogue documents columns, it holds no rows
    assert {p.parent.name for p in reports} >= {"churn", "quality", "retention"}
    for report in reports:
        text = report.read_text(encoding="utf-8")
        leaked = [v for v in identifiers if v in text]
        assert not leaked, f"{report.name}: {len(leaked)} identifiers from the vault"
        assert not re.search(HETU_PATTERN, text), report.name


def test_the_vault_is_encrypted_and_its_key_stays_in_the_key_file(demo_run):
    home, _, _ = demo_run
    with pytest.raises(duckdb.Error, match="encrypted"):
        duckdb.connect(str(home / "vault.duckdb"), read_only=True)
    with pytest.raises(VaultError):
        open_vault(Settings.for_home(home, vault_key="0" * 64), read_only=True)  # a wrong key does not open it
    key_file = home / "keys" / "vault.key"
    assert key_file.stat().st_mode & 0o077 == 0
    key = key_file.read_text().strip()
    leaks = [p for p in home.rglob("*") if p.is_file() and p != key_file and key.encode() in p.read_bytes()]
    assert leaks == []  # not in dbt's logs, its target folder, the reports or the warehouse log


def test_the_demo_ends_with_an_example_access_package_and_the_privacy_notice(demo_run):
    home, _, ran = demo_run
    printed = re.search(r"access package\s+(\S+access\.en\.html)", ran.output)
    assert printed, ran.output
    page = Path(printed[1])
    assert page.exists() and page.stat().st_mode & 0o077 == 0 and page.parent.parent == home / "access"
    package = json.loads((page.parent / "access.json").read_text())
    held = {d["table"] for d in package["datasets"] if d["rows_count"]}
    assert "staging.stg_crm__customers" in held  # and data that was disclosed, so the package lists recipients
    assert held & {"staging.stg_services__key_handovers", "staging.stg_billing__collection_cases"}
    assert (home / "reports" / "privacy" / "tietosuojaseloste.fi.html").exists()


def test_a_failed_build_leaves_the_published_analytics_as_it_was(demo_copy):
    home = demo_copy.root
    con = open_vault(settings_of(home))
    con.execute("drop table raw_services.products")  # the staging view over it can no longer be built
    con.close()
    published = (home / "analytics.duckdb").read_bytes()
    result = cli(home, "build")
    assert result.exit_code == 3 and "Build failed" in result.output, result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash on the missing freshness step
    assert (home / "analytics.duckdb").read_bytes() == published
    assert not (home / "analytics.next.duckdb").exists()


def test_the_composite_key_test_names_a_duplicated_key_once(demo_run, tmp_path):
    """dbt's unique_combination (macros/generic_tests) as compiled for privacy.retention_status: silent on the
    built mart; a record there twice is named, with its count, however the hashing first stage groups it."""
    home = settings_of(demo_run[0]).home
    compiled = next((home.dbt_dir / "target" / "compiled").rglob(
        "unique_combination_retention_status_record_type__record_key.sql")).read_text(encoding="utf-8")
    shutil.copy2(home.analytics, tmp_path / "analytics.duckdb")
    con = duckdb.connect()
    try:
        con.execute(f"attach '{tmp_path / 'analytics.duckdb'}' as analytics")
        assert con.execute(compiled).fetchall() == []
        twice = con.execute("select record_type, record_key from analytics.privacy.retention_status "
                            "order by record_key limit 1").fetchone()
        con.execute("insert into analytics.privacy.retention_status select * from analytics.privacy.retention_status "
                    "where record_type = ? and record_key = ?", list(twice))
        assert con.execute(compiled).fetchall() == [(*twice, 2)]
    finally:
        con.close()


def _mart_docs() -> dict[tuple[str, str], tuple[str | None, dict[str, str | None]]]:
    """(schema, table) -> the mart's description and its columns', as models/marts/<area>/*.yml write them."""
    docs = {}
    for path in (PROJECT_DIR / "models" / "marts").rglob("*.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            schema = path.parent.name  # one schema per area, named after its folder (dbt_project.yml)
            docs[(schema, model["name"])] = (model.get("description"),
                                            {c["name"]: c.get("description") for c in model.get("columns", [])})
    return docs


def _undocumented(analytics: Path) -> list[str]:
    """What of the published analytics file, opened as an analyst would, does not carry its catalogue entry."""
    docs = _mart_docs()
    schemas = sorted({schema for schema, _ in docs})
    con = duckdb.connect(str(analytics), read_only=True)
    try:
        tables = {(s, t): c for s, t, c in con.execute(
            "select schema_name, table_name, comment from duckdb_tables() where list_contains(?, schema_name)",
            [schemas]).fetchall()}
        columns = con.execute("""select schema_name, table_name, column_name, comment from duckdb_columns()
                                 where list_contains(?, schema_name) order by all""", [schemas]).fetchall()
    finally:
        con.close()
    assert len(tables) >= 15 and len(columns) >= 200 and set(tables) == set(docs), set(tables) ^ set(docs)
    wrong = [f"{s}.{t}: {comment!r}" for (s, t), comment in tables.items() if not comment or comment != docs[s, t][0]]
    wrong += [f"{s}.{t}.{c}: {comment!r}" for s, t, c, comment in columns
              if not comment or comment != docs[s, t][1].get(c)]
    return wrong


def test_every_mart_and_column_carries_its_description_in_the_database(demo_run):
    """A SQL client shows the catalogue: `persist_docs` writes each description as the table's or column's comment."""
    home, _, _ = demo_run
    wrong = _undocumented(home / "analytics.duckdb")
    assert not wrong, f"{len(wrong)} tables or columns without their description: {wrong[:10]}"


def test_the_descriptions_survive_an_incremental_build(demo_copy):
    """The incremental marts are built into a copy of the published file, some rewritten by their pre-hook.
    The catalogue (descriptions and columns, no figures) is made again only when the project changed."""
    catalogue = demo_copy.catalogue.read_bytes()
    assert catalogue_project(demo_copy.catalogue) == project_fingerprint(settings_of(demo_copy))
    result = cli(demo_copy, "build")
    assert result.exit_code == 0, result.output
    assert demo_copy.catalogue.read_bytes() == catalogue  # same project: the demo's catalogue stands
    con = duckdb.connect(str(demo_copy.analytics), read_only=True)
    try:  # incremental, not a full build (that records null: all keys)
        assert con.execute("select count(recomputed_keys) from build_state.incremental_state").fetchone()[0] >= 5
    finally:
        con.close()
    wrong = _undocumented(demo_copy.analytics)
    assert not wrong, f"{len(wrong)} tables or columns without their description: {wrong[:10]}"


def test_the_catalogue_is_made_again_when_the_project_changed(demo_copy, monkeypatch):
    """Only the catalogue's mark decides (dbt stands in: its build is the tests above's business)."""
    ran = []

    def dbt(settings, *args, **kwargs):
        ran.append(" ".join(args))
        if args[:2] == ("docs", "generate"):
            (settings.home.dbt_dir / "target" / "static_index.html").write_text(
                "<html><head></head><body>the project now</body></html>", encoding="utf-8")
        return DbtOutcome(" ".join(args), True)

    monkeypatch.setattr(build_module, "run_dbt", dbt)
    settings = settings_of(demo_copy)
    build_module.build(settings)  # the demo's catalogue is of this project
    assert ran == ["build", "source freshness"]
    page = demo_copy.catalogue.read_text(encoding="utf-8")
    demo_copy.catalogue.write_text(page.replace(project_fingerprint(settings), "0" * 64), encoding="utf-8")
    build_module.build(settings)  # made for another project: made again, with this project's mark
    assert ran[2:] == ["build", "source freshness", "docs generate --static"]
    assert "the project now" in demo_copy.catalogue.read_text(encoding="utf-8")
    assert catalogue_project(demo_copy.catalogue) == project_fingerprint(settings)
