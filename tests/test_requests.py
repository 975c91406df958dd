"""Erasure on request (GDPR art. 17) and objection to direct marketing (art. 21), through the real CLI, on a copy
of the demo home (one module home; the steps run in order: dry run, apply, the objection)."""

from __future__ import annotations

import json
import stat

import pytest
from conftest import cli, copy_home
from vault import analytics_rows, secret_of, vault_rows

from core.pseudonym import pseudonymous_key

REQUEST = ("--request-ref", "HD-2026-42", "--verified-by", "Test Clerk")
IDENTIFYING = ("first_name", "last_name", "hetu", "email", "phone", "street_address")


@pytest.fixture(scope="module")
def home(demo, tmp_path_factory):
    return copy_home(demo.home, tmp_path_factory.mktemp("requests") / "home")


@pytest.fixture(scope="module")
def former(home) -> str:
    """A former customer (relationship ended, identity not yet due) with invoices, the accounting keeps."""
    [(customer_id,)] = vault_rows(home, """
        select r.customer_id from intermediate.int_retention__records as r
        where r.record_type = 'customer' and r.status in ('kept', 'due_soon') and r.clock_started_on is not null
            and r.customer_id in (select customer_id from staging.stg_billing__invoices)
            and r.customer_id in (select customer_id from staging.stg_crm__customers where hetu is not null)
        order by r.customer_id limit 1""", keyed=True)
    return customer_id


@pytest.fixture(scope="module")
def current(home) -> str:
    [(customer_id,)] = vault_rows(home, """
        select customer_id from intermediate.int_retention__records
        where record_type = 'customer' and clock_started_on is null and status = 'kept'
        order by customer_id limit 1""", keyed=True)
    return customer_id


def erasure(home, customer_id: str, *args: str):
    result = cli(home, "erase", "--customer-id", customer_id, *REQUEST, *args)
    folder = max((home.access).glob("ERA-*"), key=lambda p: p.stat().st_mtime, default=None)
    return result, json.loads((folder / "erasure.json").read_text()) if folder else None


def requests_log(home) -> list[tuple]:
    return vault_rows(home, "select request_id, identifier_type, verified_by, request_ref, subject_key, outcome, "
                            "rows from privacy.access_requests order by requested_at")


def test_a_dry_run_says_what_would_go_and_what_stays_and_erases_nothing(home, former):
    before = vault_rows(home, f"select {', '.join(IDENTIFYING)} from staging.stg_crm__customers "
                              "where customer_id = ?", [former])
    result, answer = erasure(home, former, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "would be anonymised" in result.output
    assert answer["erased"]["identity_and_contact"] == {"anonymise": 1}
    kept = {k["category"]: k for k in answer["kept"]}
    assert kept["accounting_vouchers"]["reason"] == "legal_obligation" and kept["accounting_vouchers"]["until"]
    assert "Accounting Act" in kept["accounting_vouchers"]["explanation"]["en"]
    assert vault_rows(home, f"select {', '.join(IDENTIFYING)} from staging.stg_crm__customers "
                            "where customer_id = ?", [former]) == before
    assert requests_log(home)[-1][5] == "dry_run"


def test_a_current_customer_keeps_the_identity_the_contract_needs(home, current):
    result, answer = erasure(home, current, "--dry-run")
    assert result.exit_code == 0, result.output
    kept = {(k["category"], k["reason"]) for k in answer["kept"]}
    assert ("identity_and_contact", "ongoing") in kept
    assert "identity_and_contact" not in answer["erased"]


def test_an_unknown_customer_is_a_finding_and_still_logged(home):
    before = len(requests_log(home))
    result = cli(home, "erase", "--customer-id", "C9999999", *REQUEST)
    assert result.exit_code == 1 and "no customer has that customer id" in result.output
    log = requests_log(home)
    assert len(log) == before + 1 and log[-1][4] is None and log[-1][5] == "not_found"


def test_apply_erases_what_need_not_be_kept_and_keeps_the_vouchers(home, former):
    secret = secret_of(home)
    invoices = vault_rows(home, "select count(*) from raw_billing.invoices where customer_id = ?", [former])
    result, answer = erasure(home, former, "--apply")
    assert result.exit_code == 0, result.output
    assert answer["erased"]["identity_and_contact"] == {"anonymise": 1}
    # raw: every version of the customer's identifying fields nulled; the vouchers stay
    rows = vault_rows(home, f"select {', '.join(IDENTIFYING)} from raw_crm.customers where customer_id = ?",
                      [former])
    assert rows and all(value is None for row in rows for value in row)
    assert vault_rows(home, "select count(*) from raw_billing.invoices where customer_id = ?", [former]) == invoices
    assert vault_rows(home, "select count(*) from raw_crm.tickets where customer_id = ?", [former]) == [(0,)]
    # the ledger keeps keys only, the request is logged with the erasure, and the answer is owner-only
    key = pseudonymous_key(secret, former)
    assert vault_rows(home, "select rule_id, action from retention.erasure_ledger where record_type = 'customer' "
                            "and record_key = ?", [key]) == [("erasure_request", "anonymise")]
    assert requests_log(home)[-1][2:6] == ("Test Clerk", "HD-2026-42", key, "erased")
    answer_file = next(home.access.glob(f"{answer['request_id']}/erasure.json"))
    assert stat.S_IMODE(answer_file.stat().st_mode) == 0o600 and former not in answer_file.read_text()
    # analytics was rebuilt from scratch without the person, and the source systems are asked to erase too
    assert vault_rows(home, "select count(*) from retention.erasure_runs where reason = 'request' "
                            "and published_at is not null and requests_written_at is not null") == [(1,)]
    assert analytics_rows(home, "select age_band, postal_area from core.customers where customer_key = ?",
                          [key]) == [(None, None)]
    assert list((home.reports / "retention").glob("erasure-requests-crm-*"))
    # a second request finds nothing more to erase
    again, second = erasure(home, former, "--apply")
    assert again.exit_code == 0 and second["erased"] == {}


def test_an_objection_wins_over_the_crm_and_shows_in_the_access_package(home, current):
    result = cli(home, "object", "--customer-id", current, *REQUEST)
    assert result.exit_code == 0, result.output
    assert vault_rows(home, "select has_marketing_consent, objected_to_marketing_on is not null "
                            "from staging.stg_crm__customers where customer_id = ?", [current]) == [(False, True)]
    key = pseudonymous_key(secret_of(home), current)
    assert analytics_rows(home, "select has_marketing_consent from core.customers where customer_key = ?",
                          [key]) == [(False,)]
    assert requests_log(home)[-1][5] == "recorded"
    again = cli(home, "object", "--customer-id", current, *REQUEST, "--no-rebuild")
    assert again.exit_code == 0 and "objected already" in again.output
    access = cli(home, "subject-access", "--customer-id", current, "--verified-by", "Test Clerk")
    assert access.exit_code == 0, access.output
    package = json.loads(max(home.access.glob("SAR-*/access.json"), key=lambda p: p.stat().st_mtime).read_text())
    objections = next(d for d in package["datasets"] if d["table"] == "privacy.objections")
    assert objections["rows_count"] == 1


def test_a_key_on_the_audit_page_leads_back_to_its_record_for_those_allowed(home):
    record_type, key = analytics_rows(home, "select record_type, record_key from privacy.retention_status "
                                            "where record_type = 'invoice' order by record_key limit 1")[0]
    [(record_id, customer_id)] = vault_rows(home, "select record_id, customer_id from "
                                                  "intermediate.int_retention__records where record_key = ?", [key],
                                            keyed=True)
    found = cli(home, "lookup", "--key", key, "--verified-by", "Billing Clerk", "--request-ref", "CASE-7")
    assert found.exit_code == 0, found.output
    assert record_id in found.output and customer_id in found.output and record_type in found.output
    logged = vault_rows(home, "select identifier_type, verified_by, request_ref, subject_key, outcome, rows "
                              "from privacy.access_requests order by requested_at desc limit 1")
    assert logged == [("pseudonymous_key", "Billing Clerk", "CASE-7", pseudonymous_key(secret_of(home), customer_id),
                       "found", 1)]
    assert cli(home, "lookup", "--key", "0" * 32, "--verified-by", "x").exit_code == 1
    assert cli(home, "lookup", "--key", "C0100001", "--verified-by", "x").exit_code == 3  # not a key at all
