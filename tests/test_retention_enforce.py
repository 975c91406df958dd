"""Retention enforcement on a copy of the small overdue home of tests/test_retention.py, through the real CLI.

One home (module fixture), steps in order: dry run, apply, re-ingest of the same export under a new export
date, second apply. The overdue records are read from the vault before enforcement; the fixed ones below
are overdue on any day after 31.12.2025 (their expiry dates are asserted in tests/test_retention.py).
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import cli, copy_home
from test_retention import (
    CHANGED_LONG_AGO,
    CHANGED_RECENTLY,
    ERASED_EVENT_CLOSED,
    FIRST_SNAPSHOT,
    OLD_EMAILS,
    PEOPLE,
    STAMP,
    TODAY,
    planned,
    write_customers,
)
from vault import analytics_rows, secret_of, settings_of, vault_rows

from core.home import Home
from core.pseudonym import pseudonymous_key
from core.vault import open_vault
from privacy.rectify import rectify

# What anonymising a customer nulls (the data map's identifying columns of the CRM export)
CUSTOMER_FIELDS = ("first_name", "last_name", "hetu", "email", "phone", "street_address", "postal_code", "city",
                   "billing_street_address", "billing_postal_code", "billing_city", "einvoice_address")

# (record_type, id) overdue whatever the day the tests run (after 2025)
SURELY_OVERDUE = {("customer", "C0000001"), ("service", "S00000001"), ("ticket", "T00000061"),
                  ("key_handover", "H00000061"), ("key_handover", "H00000062"), ("invoice", "I00000001"),
                  ("invoice_line", "I00000001/1"), ("collection_case", "K00000007"),
                  # versions superseded on 1.3.2024 (tests/test_retention.py)
                  ("customer_version", "C0000006@2024-01-15"), ("service_version", "S00000006@2024-01-15"),
                  ("key_handover_version", "H00000063@2024-01-15")}
VERSION_ID = "{} || '@' || strftime(_valid_from, '%Y-%m-%d')"
RAW_IDS = {  # record_type -> (raw table, id expression)
    "ticket": ("raw_crm.tickets", "ticket_id"), "key_handover": ("raw_services.key_handovers", "handover_id"),
    "invoice": ("raw_billing.invoices", "invoice_id"), "payment": ("raw_billing.payments", "payment_id"),
    "invoice_line": ("raw_billing.invoice_lines", "invoice_id || '/' || line_no"),
    "collection_case": ("raw_billing.collection_cases", "case_id"),
    "customer_version": ("raw_crm.customers", VERSION_ID.format("customer_id")),
    "service_version": ("raw_services.services", VERSION_ID.format("service_id")),
    "key_handover_version": ("raw_services.key_handovers", VERSION_ID.format("handover_id"))}


def version_history(home: Home, table: str, key: str, record_id: str, column: str) -> list[tuple]:
    """A record's versions in raw: (valid from, valid to, latest, the column's value)."""
    return vault_query(home, f"""select _valid_from, _valid_to, _is_latest, {column} from {table}
                                 where {key} = '{record_id}' order by _valid_from""")


def vault_query(home: Home, sql: str) -> list[tuple]:
    return vault_rows(home, sql, keyed=True)


def analytics_query(home: Home, sql: str) -> list[tuple]:
    return analytics_rows(home, sql)


def records(home: Home) -> dict[tuple[str, str], str]:
    return {(t, i): s for t, i, s in vault_query(
        home, "select record_type, record_id, status from intermediate.int_retention__records")}


def enforce(home: Home, *args: str) -> str:
    result = cli(home, "retention", "enforce", *args)
    assert result.exit_code == 0, result.output
    return result.output


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def present(home: Home, overdue: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The deleted-kind overdue records still found in raw (any version)."""
    found = set()
    for record_type, record_id in overdue:
        if record_type in RAW_IDS:
            table, expr = RAW_IDS[record_type]
            if vault_query(home, f"select count(*) from {table} where {expr} = '{record_id}'")[0][0]:
                found.add((record_type, record_id))
    return found


@pytest.fixture(scope="module")
def steps(overdue_home, tmp_path_factory) -> dict:
    """Run every step once; each test asserts on what the step left behind."""
    root = tmp_path_factory.mktemp("enforce")
    home = copy_home(overdue_home, root / "home")
    shutil.copytree(overdue_home.root.parent / "inbox", root / "inbox")
    state: dict = {"home": home, "inbox": root / "inbox"}
    # A correction recorded for a customer whose retention has run out: its values go with the customer.
    rectify(settings_of(home), secret_of(home), "C0000001", "last_name", "Korjattu", request_ref="REQ-1",
            recorded_by="test")
    # Access packages made before: one of a person whose data is about to be erased, one of a person who stays
    state["packages"] = {customer: _package(home, customer) for customer in ("C0000001", "C0000006")}
    state["records"] = records(home)
    state["overdue"] = {r for r, s in state["records"].items() if s == "overdue"}
    state["kept_key"] = vault_query(home, "select record_key from intermediate.int_retention__records "
                                          "where status = 'kept' and record_type = 'invoice' limit 1")[0][0]
    state["vault_before"] = digest(home.vault)
    state["dry_output"] = enforce(home, "--dry-run")
    state["vault_after_dry"] = digest(home.vault)
    state["reports_after_dry"] = sorted(p.name for p in (home.reports / "retention").glob("erasure-requests-*"))
    state["apply_output"] = enforce(home, "--apply")
    return state


def _package(home: Home, customer_id: str) -> Path:
    result = cli(home, "subject-access", "--customer-id", customer_id, "--verified-by", "test")
    assert result.exit_code == 0, result.output
    return max(home.access.glob("SAR-*"), key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def reingested(steps) -> dict:
    """The same export again, under tomorrow's export date: new file versions carrying the erased records."""
    home, inbox = steps["home"], steps["inbox"]
    tomorrow = (TODAY + timedelta(days=1)).strftime("%Y%m%d")
    for path in sorted(inbox.rglob(f"*_{STAMP}.*")):
        shutil.copy2(path, path.with_name(path.name.replace(STAMP, tomorrow)))
    result = cli(home, "ingest", "--inbox", str(inbox))
    assert result.exit_code == 0, result.output
    return {"tomorrow": tomorrow}


def test_dry_run_changes_nothing(steps):
    assert steps["overdue"] >= SURELY_OVERDUE
    assert steps["vault_after_dry"] == steps["vault_before"]
    assert steps["reports_after_dry"] == []
    assert "dry run" in steps["dry_output"] and "identity_and_contact" in steps["dry_output"]
    assert "anonymise" in steps["dry_output"] and "delete" in steps["dry_output"]


def test_apply_erases_exactly_the_overdue_records_in_raw(steps):
    home, overdue = steps["home"], steps["overdue"]
    assert present(home, overdue) == set()
    # records that are not overdue stay, every version of them
    kept = {r for r, s in steps["records"].items() if s != "overdue" and r[0] in RAW_IDS}
    assert kept and present(home, kept) == kept
    customers = sorted(i for t, i in overdue if t == "customer")
    rows = vault_query(home, f"""
        select customer_id, customer_type, created_at, {', '.join(CUSTOMER_FIELDS)} from raw_crm.customers
        where customer_id in ({', '.join(f"'{c}'" for c in customers)})""")
    assert rows and {r[0] for r in rows} == set(customers)
    assert all(r[1] == "person" and r[2] is not None for r in rows)  # type and dates stay
    assert all(value is None for r in rows for value in r[3:])
    # a customer who is not overdue keeps their data
    assert vault_query(home, "select hetu from raw_crm.customers where customer_id = 'C0000006'") == [
        (PEOPLE["C0000006"][2],)]
    services = vault_query(home, "select service_id, username from raw_services.services")
    anonymised = {i for t, i in overdue if t == "service"}
    assert anonymised and all((u is None) == (s in anonymised) for s, u in services)


def test_apply_deletes_the_overdue_superseded_versions_and_keeps_the_current_ones(steps):
    home, overdue = steps["home"], steps["overdue"]
    assert {r for r in overdue if r[0].endswith("_version")} == {r for r in SURELY_OVERDUE
                                                                   if r[0].endswith("_version")}
    # the version superseded on 1.3.2024 is gone, the current one (valid from that day) stays, unchanged
    current = PEOPLE["C0000006"][0].lower() + "@example.fi"
    assert version_history(home, "raw_crm.customers", "customer_id", "C0000006", "email") == [
        (CHANGED_LONG_AGO, None, True, current)]
    assert version_history(home, "raw_services.services", "service_id", "S00000006", "username") == [
        (CHANGED_LONG_AGO, None, True, "user006")]
    assert version_history(home, "raw_services.key_handovers", "handover_id", "H00000063", "holder_phone") == [
        (CHANGED_LONG_AGO, None, True, "040 765 4321")]
    # superseded recently: kept; superseded long ago, but the customer's open collection case holds it
    assert version_history(home, "raw_crm.customers", "customer_id", "C0000007", "email") == [
        (FIRST_SNAPSHOT, CHANGED_RECENTLY, False, OLD_EMAILS["C0000007"]),
        (CHANGED_RECENTLY, None, True, "sanni@example.fi")]
    assert version_history(home, "raw_crm.customers", "customer_id", "C0000004", "email") == [
        (FIRST_SNAPSHOT, CHANGED_LONG_AGO, False, OLD_EMAILS["C0000004"]),
        (CHANGED_LONG_AGO, None, True, "juhani@example.fi")]
    assert steps["records"][("customer_version", "C0000004@2024-01-15")] == "on_hold"
    # the ledger keeps which record each was a version of and the day it was superseded, by key
    secret = secret_of(home)
    ledger = vault_query(home, """select record_type, record_key, version_of, event_on, customer_key
                                  from retention.erasure_ledger where version_of is not null order by 1""")
    assert ledger == sorted(
        (t, pseudonymous_key(secret, i), pseudonymous_key(secret, i.split("@")[0]), CHANGED_LONG_AGO,
         pseudonymous_key(secret, "C0000006")) for t, i in SURELY_OVERDUE if t.endswith("_version"))
    # the superseded versions' day is not the relationship's: C0000006's relationship still goes on
    assert steps["records"][("customer", "C0000006")] == records(home)[("customer", "C0000006")] == "kept"


def test_apply_keeps_the_invoices_of_an_anonymised_customer(steps):
    home, recs = steps["home"], steps["records"]
    customers = {i for (t, i), s in recs.items() if t == "customer" and s == "overdue"}
    kept_invoices = vault_query(home, f"""
        select distinct invoice_id from raw_billing.invoices
        where customer_id in ({', '.join(f"'{c}'" for c in customers)})""")
    assert kept_invoices  # C0000005's invoice of 2021 outlives her contact data
    assert all(recs[("invoice", i)] != "overdue" for (i,) in kept_invoices)
    secret = secret_of(home)
    keys = analytics_query(home, "select invoice_key from core.invoices")
    assert {pseudonymous_key(secret, i) for (i,) in kept_invoices} <= {k for (k,) in keys}


def test_apply_reaches_staging_and_marts(steps):
    home = steps["home"]
    secret = secret_of(home)
    assert vault_query(home, "select count(*) from staging.stg_crm__tickets where ticket_id = 'T00000061'") == [(0,)]
    assert vault_query(home, "select first_name, hetu, email, phone from staging.stg_crm__customers "
                             "where customer_id = 'C0000001'") == [(None, None, None, None)]
    assert vault_query(home, "select count(*) from staging.stg_services__key_handovers "
                             "where customer_id = 'C0000006' and holder_first_name is not null") == [(1,)]
    assert vault_query(home, "select count(*) from intermediate.int_retention__records "
                             "where status = 'overdue'") == [(0,)]
    assert analytics_query(home, "select count(*) from privacy.retention_status where status = 'overdue'") == [(0,)]
    invoice_keys = {k for (k,) in analytics_query(home, "select invoice_key from core.invoices")}
    assert pseudonymous_key(secret, "I00000001") not in invoice_keys
    assert pseudonymous_key(secret, "I00000002") in invoice_keys
    age = analytics_query(home, "select age_band, postal_area from core.customers where customer_key = "
                                f"'{pseudonymous_key(secret, 'C0000001')}'")
    assert age == [(None, None)]


def test_ledger_holds_keys_only_and_request_lists_the_ids(steps):
    home, overdue = steps["home"], steps["overdue"]
    secret = secret_of(home)
    ledger = vault_query(home, "select record_key, record_type, category, rule_id, action, erased_on "
                               "from retention.erasure_ledger")
    assert {(t, k) for k, t, *_ in ledger} == {(t, pseudonymous_key(secret, i)) for t, i in overdue}
    text = repr(ledger)
    clear = {i for _, i in overdue} | {v for person in PEOPLE.values() for v in person}
    assert not [value for value in clear if value in text]
    assert {a for *_, a, _ in ledger} == {"anonymise", "delete"}
    files = sorted((home.reports / "retention").glob("erasure-requests-*.csv"))
    assert [f.name.split("-")[2] for f in files] == ["billing", "crm", "services"]
    listed = set()
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with path.open(newline="", encoding="utf-8") as handle:
            listed |= {(row["record_type"], row["record_id"]) for row in csv.DictReader(handle)}
    assert listed == overdue
    log = (home.logs / "warehouse.log").read_text(encoding="utf-8")
    assert "retention enforcement" in log
    assert not [value for value in clear if value in log]


def test_reingest_leaves_the_erased_data_absent(steps, reingested):
    home, overdue = steps["home"], steps["overdue"]
    files = vault_query(home, f"""
        select entity, rows_read, rows_loaded, rows_rejected, rows_erased from ingest.files
        where export_date = strptime('{reingested['tomorrow']}', '%Y%m%d')""")
    assert len(files) == 9
    assert all(read == loaded + rejected for _, read, loaded, rejected, _ in files)
    erased = {entity: n for entity, *_, n in files}
    assert erased["customers"] >= 1 and erased["tickets"] >= 1 and erased["key_handovers"] >= 2
    assert present(home, overdue) == set()
    assert vault_query(home, "select count(*) from raw_crm.customers where customer_id = 'C0000001' "
                             "and (hetu is not null or first_name is not null)") == [(0,)]
    # staging views read raw: the new export's versions show nothing erased either
    assert vault_query(home, "select count(*) from staging.stg_crm__tickets where ticket_id = 'T00000061'") == [(0,)]
    assert vault_query(home, "select hetu from staging.stg_crm__customers where customer_id = 'C0000001'") == [
        (None,)]
    assert vault_query(home, "select hetu from staging.stg_crm__customers where customer_id = 'C0000006'") == [
        (PEOPLE["C0000006"][2],)]


def test_second_apply_is_a_no_op(steps, reingested):
    home = steps["home"]
    before = vault_query(home, "select count(*) from retention.erasure_ledger")
    assert planned(home) == []
    output = enforce(home, "--apply")
    assert "Nothing is overdue" in output
    assert vault_query(home, "select count(*) from retention.erasure_ledger") == before


def test_apply_erases_the_corrected_values_of_an_anonymised_customer(steps):
    assert ("customer", "C0000001") in steps["overdue"]
    trail = vault_query(steps["home"], """select request_ref, column_name, source_value, old_value, new_value
                                          from privacy.rectifications where customer_id = 'C0000001'""")
    assert trail == [("REQ-1", "last_name", None, None, None)]  # the audit trail stays, the values do not


def test_the_build_after_an_erasure_writes_a_fresh_file_that_holds_no_erased_key(steps):
    """A copy of the published file would keep the deleted records' keys in its free blocks."""
    home, secret = steps["home"], secret_of(steps["home"])
    published = home.analytics.read_bytes()
    deleted = [pseudonymous_key(secret, i) for t, i in steps["overdue"] if t in RAW_IDS]
    assert deleted and not [key for key in deleted if key.encode() in published]
    assert steps["kept_key"].encode() in published  # the probe finds a key that is there


def test_access_packages_go_with_their_person_and_after_their_period(steps):
    erased, kept = steps["packages"]["C0000001"], steps["packages"]["C0000006"]
    assert not erased.exists() and kept.exists()
    # a package older than the policy's period for answers (three months) goes at the next apply
    home = steps["home"]
    con = open_vault(settings_of(home))
    try:
        con.execute("update privacy.access_requests set requested_at = requested_at - interval 4 month "
                    "where request_id = ?", [kept.name])
    finally:
        con.close()
    output = enforce(home, "--apply")
    assert not kept.exists() and "Removed 1 access package" in output
    assert vault_query(home, f"select count(*) from privacy.access_requests where request_id = '{kept.name}'") == [
        (1,)]  # the request stays logged


def test_an_older_snapshot_loaded_later_brings_no_erased_version_back(steps, reingested):
    """The ingest replays a snapshot of an old day over the days after it: a file of a day inside an erased
    version's period, loaded after the erasure, would make that version again. Corrected (the same name, new
    content) and late (a day never loaded): the erased version's record's row is dropped as the file loads."""
    home, inbox = steps["home"], steps["inbox"]
    first = FIRST_SNAPSHOT.strftime("%Y%m%d")
    late = (FIRST_SNAPSHOT + timedelta(days=20)).strftime("%Y%m%d")
    versions_sql = ("select * exclude (_load_id, _line, _ended_load_id) from raw_crm.customers order by all")
    before = vault_query(home, versions_sql)
    loads = vault_query(home, "select count(*) from ingest.files")
    # the same inbox again: every file is known by its content, nothing is loaded
    assert cli(home, "ingest", "--inbox", str(inbox)).exit_code == 0
    assert vault_query(home, "select count(*) from ingest.files") == loads
    original = (inbox / f"crm/customers_{first}.csv").read_bytes()
    write_customers(inbox, first, list(PEOPLE), {**OLD_EMAILS, "C0000006": "eero.korjattu@vanha.example.fi"})
    write_customers(inbox, late, list(PEOPLE), OLD_EMAILS)
    try:
        result = cli(home, "ingest", "--inbox", str(inbox))
    finally:
        (inbox / f"crm/customers_{first}.csv").write_bytes(original)
        (inbox / f"crm/customers_{late}.csv").unlink()
    assert result.exit_code == 0, result.output
    current = PEOPLE["C0000006"][0].lower() + "@example.fi"
    assert version_history(home, "raw_crm.customers", "customer_id", "C0000006", "email") == [
        (CHANGED_LONG_AGO, None, True, current)]
    assert vault_query(home, "select count(*) from raw_crm.customers where email like 'eero%vanha%'") == [(0,)]
    anonymised = vault_query(home, "select count(*) from retention.erasure_ledger where record_type = 'customer'")
    loaded = vault_query(home, """select source_file, rows_erased from ingest.files where load_id > (
                                       select max(load_id) - 2 from ingest.files) order by load_id""")
    # each file: the anonymised customers' rows, and C0000006's, dropped (its version of that day was erased)
    assert loaded == [(f"crm/customers_{first}.csv", anonymised[0][0] + 1),
                      (f"crm/customers_{late}.csv", anonymised[0][0] + 1)]
    # the other customers' versions are as they were: the files said nothing new about them
    assert vault_query(home, versions_sql) == before
    assert present(home, steps["overdue"]) == set()
    assert vault_query(home, f"""select {VERSION_ID.format('customer_id')} from raw_crm.customers
                                 where not _is_latest order by 1""") == [
        ("C0000004@2024-01-15",), ("C0000007@2024-01-15",)]  # on hold, and superseded recently


def test_a_relationship_does_not_end_earlier_once_the_record_that_ended_it_is_erased(steps):
    """C0000014's relationship ended when her only ticket closed; the ticket's 2 years are over and it is
    erased, her identity's 3 years are not: the ledger keeps the ticket's day, so her clock stays on it."""
    home = steps["home"]
    assert steps["records"][("ticket", "T00000141")] == "overdue"
    assert steps["records"][("customer", "C0000014")] == "kept"
    assert present(home, {("ticket", "T00000141")}) == set()  # erased
    assert vault_query(home, """select clock_started_on, status from intermediate.int_retention__records
                                where record_type = 'customer' and record_id = 'C0000014'""") == [
        (ERASED_EVENT_CLOSED, "kept")]
