"""Data-quality checks (expectations/): every injected defect is caught, clean data passes, nothing personal leaks."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import pytest
from conftest import cli, copy_home
from vault import secret_of, settings_of

from core.db import connect
from core.pseudonym import pseudonymous_key
from core.settings import Settings
from core.vault import open_vault
from expectations import gx_duckdb
from expectations.run import load_suites, run_checks

# Which check must flag each kind of defect the sample generator injects (manifest.json).
CATCHES = {
    "invalid_hetu_check": ("crm_customers", "hetu_valid"),
    "invalid_ytunnus_check": ("crm_customers", "ytunnus_valid"),
    "duplicate_person": ("crm_customers", "same_hetu_one_customer"),
    "unknown_customer_service": ("services_services", "service_has_known_customer"),
    "termination_before_opening": ("services_services", "termination_not_before_opening"),
    "total_mismatch": ("billing_invoices", "total_is_net_plus_vat"),
    "hetu_in_ticket": ("crm_ticket_messages", "no_hetu_in_message"),
    "orphan_invoice_line": ("billing_invoice_lines", "line_has_invoice"),
    # Rows the ingest could not read are missing from staging: the rejects check names them.
    "malformed_row": ("ingest_rejects", "no_rejected_rows"),
    "impossible_date": ("ingest_rejects", "no_rejected_rows"),
    "non_numeric_amount": ("ingest_rejects", "no_rejected_rows"),
}
# Not a defect of the data: the sample keeps records past their retention period on purpose (issue 5).
OVERDUE = ("privacy_retention", "no_overdue_records")
MISSING_CONTACT = {"email": ("crm_customers", "person_has_email"), "phone": ("crm_customers", "person_has_phone")}


# From 2022: long enough for records to outlive their retention periods (1-3 years), so the overdue check has keys.
SAMPLE = ["--customers", "200", "--seed", "11", "--start", "2022-01-01", "--end", date.today().isoformat()]


def _manifest(home: Path) -> dict:
    return json.loads((home / "inbox" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def samples(demo, tmp_path_factory):
    """The demo home (its sample carries every kind of defect) and a clean sample, built here."""
    dirty = copy_home(demo.home, tmp_path_factory.mktemp("dirty") / "home").root
    shutil.copytree(demo.inbox, dirty / "inbox")
    clean = tmp_path_factory.mktemp("clean")
    for args in (["generate", "--out", str(clean / "inbox"), *SAMPLE, "--defect-rate", "0"],
                 ["ingest", "--inbox", str(clean / "inbox")], ["build"]):
        result = cli(clean, *args)
        assert result.exit_code == 0, result.output
    return dirty, clean


def check(home: Path, analytics: Path | None = None, **kwargs):
    """The checks on a test home; the mart suites read `analytics`, else the published analytics."""
    return run_checks(settings_of(home), secret_of(home), analytics, **kwargs)


@pytest.fixture(scope="module")
def defective(samples):
    home = samples[0]
    run = check(home, home / "analytics.duckdb")
    return home, _manifest(home), run


def _result(run, suite, name):
    return next(r for r in run.results if (r.suite, r.expectation) == (suite, name))


def test_every_injected_defect_is_caught_with_its_key(defective):
    home, manifest, run = defective
    secret = secret_of(home)
    expected: dict[tuple[str, str], set[str]] = {}
    for defect in manifest["defects"]:
        kind = defect["kind"]
        check = MISSING_CONTACT[defect["column"]] if kind == "missing_contact" else CATCHES.get(kind)
        assert check, f"no check is known to catch the generator's defect kind {kind!r}: add one"
        expected.setdefault(check, set()).add(defect["key"])
    assert len(expected) >= 10
    for (suite, name), keys in expected.items():
        result = _result(run, suite, name)
        assert not result.success and not result.raised, (suite, name)
        assert {pseudonymous_key(secret, k) for k in keys} <= set(result.example_keys), (suite, name)
        if name == "same_hetu_one_customer":  # the duplicate and the customer it duplicates
            assert result.unexpected_count == 2 * len(keys)
        elif suite in ("crm_customers", "crm_ticket_messages") or name == "termination_not_before_opening":
            assert result.unexpected_count == len(keys), (suite, name)
        else:  # a rejected invoice also orphans its lines and payments: more rows than injected defects
            assert result.unexpected_count >= len(keys), (suite, name)
    assert run.has_errors


def test_a_clean_sample_passes_every_error_check(samples):
    home = samples[1]
    assert _manifest(home)["defects"] == []
    run = check(home)  # the mart suites read the published analytics
    failed = [(r.suite, r.expectation, r.unexpected_count) for r in run.results
              if r.severity == "error" and not r.success and (r.suite, r.expectation) != OVERDUE]
    assert failed == []
    assert run.errors <= 1 and not any(r.raised or r.skipped for r in run.results)
    assert len(run.results) == sum(len(s.checks) for s in load_suites())


def test_history_grows_by_one_run_per_call_and_analytics_gets_the_banner(defective, tmp_path):
    home, _, first = defective
    con = open_vault(settings_of(home), read_only=True)
    before = con.execute("select count(distinct run_id), count(*) from quality.check_results").fetchone()
    con.close()
    second = check(home)
    con = open_vault(settings_of(home), read_only=True)
    after = con.execute("select count(distinct run_id), count(*) from quality.check_results").fetchone()
    con.close()
    assert after == (before[0] + 1, before[1] + len(second.results))
    assert len(second.trend) == after[0]
    analytics = connect(home / "analytics.duckdb", read_only=True)
    summary = analytics.execute("select checks, passed, errors, warnings from quality.summary").fetchall()
    results = analytics.execute("select count(*) from quality.results where run_id = ?", [first.run_id]).fetchone()
    analytics.close()
    s = first.summary()
    assert summary == [(s["checks"], s["passed"], s["errors"], s["warnings"])]
    assert results[0] == len(first.results)


def _personal_values(home: Path) -> set[str]:
    con = open_vault(settings_of(home), read_only=True)
    values = set()
    for table, columns in {"stg_crm__customers": ["hetu", "email", "phone", "phone_raw", "street_address",
                                                  "first_name", "last_name", "billing_street_address"],
                           "stg_services__key_handovers": ["holder_first_name", "holder_last_name", "holder_phone"],
                           }.items():
        for column in columns:
            values.update(v for (v,) in con.execute(f"select distinct {column} from staging.{table}").fetchall()
                          if v and len(v) >= 6)  # shorter names could occur in ordinary words
    con.close()
    return values


def test_no_personal_data_in_history_or_page(defective, tmp_path):
    home, _, run = defective
    values = _personal_values(home)
    assert any(re.fullmatch(r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]", v) for v in values)  # the probe has HETUs to find
    con = open_vault(settings_of(home), read_only=True)
    history = "\n".join(map(str, con.execute("select * from quality.check_results").fetchall()))
    con.close()
    page = run.write_html(tmp_path / "report", controller="Esimerkki Oy").read_text(encoding="utf-8")
    for text in (history, page):
        leaked = [v for v in values if v in text]
        assert leaked == []


def test_the_page_makes_no_outside_request(defective, tmp_path):
    _, _, run = defective
    page = run.write_html(tmp_path, controller="Esimerkki Oy").read_text(encoding="utf-8")
    assert "hetu_valid" in page and "failed" in page
    assert "Esimerkki Oy customer register" in page and "(Europe/Helsinki)" in page
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(script|link|img|iframe)\b", page)


def test_gx_duckdb_adaptation():
    """Fails loudly when a GX or duckdb-engine upgrade makes the workaround unnecessary or breaks it."""
    import great_expectations as gx
    from duckdb_engine import ConnectionWrapper

    def validate(wrapper):
        con = connect()
        con.execute("create schema s; create table s.t as select range as id, "
                    "case when range % 10 = 0 then null else 'x' || range end as v from range(100)")
        ctx = gx_duckdb.context()
        source = gx_duckdb.add_datasource(ctx, "memory", con, ["s"], wrapper=wrapper)
        batch = source.add_table_asset("t", table_name="t", schema_name="s").add_batch_definition_whole_table("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name="t"))
        for expectation in (
                gx.expectations.ExpectColumnValuesToNotBeNull(column="v"),
                gx.expectations.UnexpectedRowsExpectation(
                    unexpected_rows_query="select id from {batch} where v is null"),
                gx.expectations.ExpectColumnValuesToMatchRegex(column="v", regex="^x"),
                gx.expectations.ExpectColumnValuesToBeOfType(column="v", type_="VARCHAR")):
            expectation.catch_exceptions = True
            suite.add_expectation(expectation)
        results = ctx.validation_definitions.add(gx.ValidationDefinition(name="t", data=batch, suite=suite)).run()
        con.close()
        return {r.expectation_config.type: r for r in results.results}

    def raised(result) -> bool:
        info = result.exception_info or {}
        return bool(info.get("raised_exception")) or any(
            isinstance(v, dict) and v.get("raised_exception") for v in info.values())

    plain = validate(ConnectionWrapper)
    assert raised(plain["expect_column_values_to_not_be_null"]), (
        "GX now reads DuckDB results on a plain duckdb-engine connection (issues #10738/#11579 fixed?): "
        "drop _SharedConnection from expectations/gx_duckdb.py")
    ours = validate(gx_duckdb._SharedConnection)
    not_null, rows = ours["expect_column_values_to_not_be_null"], ours["unexpected_rows_expectation"]
    assert not raised(not_null) and not_null.result["unexpected_count"] == 10, "the GX/DuckDB adaptation broke"
    assert not raised(rows) and rows.result["observed_value"] == 10, "the GX/DuckDB adaptation broke"
    assert raised(ours["expect_column_values_to_match_regex"]), (
        "GX now supports regex on DuckDB: pattern checks could use plain regex expectations")
    assert raised(ours["expect_column_values_to_be_of_type"]), (
        "expect_column_values_to_be_of_type works on DuckDB now: type checks could use it")


def test_identifier_macros_agree_with_stdnum():
    """The SQL checks of HETU, Y-tunnus and reference numbers against python-stdnum (and the generator's 7-3-1)."""
    import random

    from stdnum.fi import hetu, ytunnus

    from expectations.run import MACROS
    from samplegen.identifiers import reference_check_digit, ytunnus_check_digit

    rng = random.Random(5)
    chars, signs = "0123456789ABCDEFHJKLMNPRSTUVWXY", "+-YXWVUABCDEF"
    hetus, ytunnukset, references = [], [], []
    for _ in range(20000):
        ddmmyy = f"{rng.randint(1, 31):02d}{rng.randint(1, 12):02d}{rng.randint(0, 99):02d}"
        nnn = f"{rng.choice([0, 1, rng.randint(2, 899), rng.randint(900, 999)]):03d}"
        check = chars[int(ddmmyy + nnn) % 31] if rng.random() < 0.7 else rng.choice(chars + "GZ")
        hetus.append(ddmmyy + rng.choice(signs + "*") + nnn + check)
        base = rng.randint(0, 9999999)
        digit = ytunnus_check_digit(base) if rng.random() < 0.7 else None
        ytunnukset.append(f"{base:07d}-{rng.randint(0, 9) if digit is None else digit}")
        ref = str(rng.randint(100, 10**18))
        references.append(ref + str((reference_check_digit(ref) + (rng.random() < 0.3)) % 10))
    con = connect()
    con.execute(MACROS)
    for values, macro, oracle in (
            (hetus, "q_hetu_valid", lambda v: hetu.is_valid(v, allow_temporary=True)),
            (ytunnukset, "q_ytunnus_valid", ytunnus.is_valid),
            (references, "q_reference_valid", lambda v: int(v[-1]) == reference_check_digit(v[:-1]))):
        got = dict(con.execute(f"select v, {macro}(v) from unnest(?::varchar[]) as t(v)", [values]).fetchall())
        disagree = [v for v in values if got[v] != oracle(v)]
        assert disagree == [], (macro, disagree[:5])
        assert 0.2 < sum(got.values()) / len(got) < 0.95  # both valid and invalid codes were tried
    con.close()


# --- suites on the analytics marts (database: analytics) ------------------------------------------------------

def _mart_suites():
    return [s for s in load_suites() if s.database == "analytics"]


def test_mart_suites_pass_on_the_sample_except_overdue_records(defective):
    home, _, run = defective
    marts = {s.name for s in _mart_suites()}
    assert {"marts_churn", "marts_core", "privacy_retention"} <= marts
    results = [r for r in run.results if r.suite in marts]
    assert len(results) == sum(len(s.checks) for s in _mart_suites())
    assert not any(r.skipped or r.raised for r in results)
    assert [(r.suite, r.expectation) for r in results if not r.success] == [OVERDUE]
    # The sample keeps overdue records on purpose: the check names them by their (pseudonymous) record keys.
    overdue = _result(run, *OVERDUE)
    con = connect(home / "analytics.duckdb", read_only=True)
    keys = {k for (k,) in con.execute("select record_key from privacy.retention_status where status = 'overdue'")
            .fetchall()}
    con.close()
    # a warning: the retention audit alerts on a backlog, which is not a data error (expectations/suites)
    assert overdue.severity == "warning" and overdue.unexpected_count == len(keys) > 0
    assert overdue.example_keys and set(overdue.example_keys) <= keys


def test_a_broken_mrr_bridge_is_caught(defective, tmp_path):
    home, _, _ = defective
    analytics = tmp_path / "analytics.duckdb"
    analytics.write_bytes((home / "analytics.duckdb").read_bytes())
    con = connect(analytics)
    month = con.execute("select max(month) from churn.monthly_movements where end_mrr > 0").fetchone()[0]
    con.execute("update churn.monthly_movements set end_mrr = end_mrr + 10 where month = ?", [month])
    con.close()
    suites = [s for s in _mart_suites() if s.name == "marts_churn"]
    run = check(home, analytics, history_db=tmp_path / "history.duckdb", suites=suites)
    bridge = _result(run, "marts_churn", "mrr_bridge_adds_up")
    assert not bridge.success and bridge.unexpected_count == 1 and bridge.example_keys == [month.isoformat()]
    assert not _result(run, "marts_churn", "bridge_matches_customer_months").success
    assert _result(run, "marts_churn", "customer_bridge_adds_up").success  # the customer counts were not touched
    assert run.has_errors


def test_mart_suites_are_skipped_without_an_analytics_database(defective, tmp_path):
    import io

    from rich.console import Console

    home, _, _ = defective
    bare = tmp_path / "home"  # a home without analytics.duckdb
    (bare / "keys").mkdir(parents=True)
    (bare / "vault.duckdb").write_bytes((home / "vault.duckdb").read_bytes())
    (bare / "keys" / "vault.key").write_bytes((home / "keys" / "vault.key").read_bytes())
    suites = [*_mart_suites(), *(s for s in load_suites() if s.name == "ingest_files")]
    run = run_checks(Settings.for_home(bare), secret_of(home), None, history_db=tmp_path / "history.duckdb",
                     suites=suites)
    skipped = [r for r in run.results if r.skipped]
    assert {r.suite for r in skipped} == {s.name for s in _mart_suites()}
    assert len(skipped) == run.summary()["skipped"] == sum(len(s.checks) for s in _mart_suites())
    assert all(r.success and r.unexpected_count is None for r in skipped)  # not failures: nothing alerts
    assert not any(r.skipped for r in run.results if r.suite == "ingest_files")
    assert run.summary()["passed"] == len(run.results) - len(run.failed) - len(skipped)
    con = connect(tmp_path / "history.duckdb", read_only=True)
    unknown = con.execute("select count(*) from quality.check_results where success is null").fetchone()[0]
    con.close()
    assert unknown == len(skipped)  # the history does not count a skipped check as passed
    out = io.StringIO()
    run.print_summary(Console(file=out, width=200))
    assert "skipped" in out.getvalue() and "marts_churn" in out.getvalue()
