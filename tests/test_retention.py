"""Retention: hand-computed expiry dates through the real ingest and dbt models, legal holds, the audit.

One small inbox in the export contract's format, run once with `warehouse run` (module fixture):
- `overdue_home`: the shipped policy; records past their period (old tickets, returned keys, ended
  relationships, an old invoice), a leap day, a reactivated customer, a final payment, an open collection case,
  customers without services whose relationship a key still out or a ticket still open keeps going, or whose
  relationship ended with a key's return or a ticket's closing, and a customer known only by a ticket and a key;
- `variant_home`: a copy whose retention models are rebuilt under a policy with `financial_year_end: 06-30`
  and disputes for every customer with an overdue record: nothing is overdue;
- `terminated_home`: a copy whose retention models are rebuilt under a policy where the customer-relationship
  data's clock is each service's own end (`service_terminated`).
Export dates are today (the source-freshness check passes), so the audit date is today: records with fixed
dates are asserted on their expiry date, and their status is derived from it.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from conftest import cli
from vault import secret_of, settings_of, vault_rows

from core.db import connect
from core.home import Home
from core.pseudonym import macro_sql, pseudonymous_key
from core.settings import Settings
from core.vault import open_vault
from retention.audit import AuditResult, run_audit
from retention.enforce import plan
from retention.policy import DEFAULT_POLICY, Period, PolicyError, load_policy, parse_policy
from warehouse.build import publish
from warehouse.dbt import run_dbt
from warehouse.pipeline import erasure_map

TODAY = date.today()
STAMP = TODAY.strftime("%Y%m%d")
CONTROLLER = "Esimerkki Oy"  # the pipeline passes privacy/register.yml's controller
CUSTOMERS_HEADER = "customer_id;customer_type;first_name;last_name;hetu;email;phone;created_at;updated_at"
# Personal data in the inbox that must never reach the audit report.
PEOPLE = {
    "C0000001": ("Aino", "Virtanen", "010180-123A"),
    "C0000002": ("Matti", "Korhonen", "290284-9876"),
    "C0000003": ("Liisa", "Nieminen", "150375-456B"),
    "C0000004": ("Juhani", "Mäkinen", "311290-1234"),
    "C0000005": ("Helmi", "Hämäläinen", "050565-321C"),
    "C0000006": ("Eero", "Laine", "121212-2468"),
    "C0000007": ("Sanni", "Heikkinen", "070707A7777"),
    # no services: a data-centre key still out / a ticket still open / a key returned / a ticket closed
    "C0000008": ("Ville", "Salminen", "080888-8888"),
    "C0000009": ("Kaisa", "Lehtonen", "090999-9999"),
    "C0000010": ("Onni", "Koskinen", "101070-1010"),
    "C0000011": ("Elina", "Järvinen", "111171-1111"),
    # services ended long ago, a key still out
    "C0000012": ("Tapio", "Rantanen", "121272-1212"),
    # no services: the relationship ended when a ticket closed, whose own (shorter) period ran out before it
    "C0000014": ("Aada", "Turunen", "141280-1414"),
}
# A customer the CRM export does not list, known only by a ticket and a key handover (both still open).
ORPHAN = "C0000013"


def fi(day: date) -> str:
    return f"{day.day}.{day.month}.{day.year}"


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))


def ticket(ticket_id: str, customer_id: str, closed_at: str | None) -> str:
    return json.dumps({"ticket_id": ticket_id, "customer_id": customer_id, "opened_at": "2019-01-02T09:00:00Z",
                       "closed_at": closed_at, "channel": "email", "subject": "Laskutus",
                       "messages": [{"sent_at": "2019-01-02T09:00:00Z", "direction": "in", "body": "Hei"}],
                       "updated_at": closed_at or "2019-01-02T09:00:00Z"})


def write_customers(inbox: Path, stamp: str, customers: list[str], emails: dict[str, str] | None = None) -> None:
    """A customers snapshot; `emails`: customers whose email that day is not the current one."""
    emails = emails or {}
    write(inbox / f"crm/customers_{stamp}.csv", [CUSTOMERS_HEADER] + [
        f"{c};person;{PEOPLE[c][0]};{PEOPLE[c][1]};{PEOPLE[c][2]};"
        f"{emails.get(c, PEOPLE[c][0].lower() + '@example.fi')};"
        f"040 123 45{n:02d};1.1.2018 8:00:00;1.1.2018 8:00:00" for n, c in enumerate(customers)])


def write_services(inbox: Path, stamp: str, services: list[tuple], usernames: dict[str, str] | None = None) -> None:
    usernames = usernames or {}
    write(inbox / f"services/services_{stamp}.csv",
          ["service_id;customer_id;product_code;monthly_fee;opened_on;terminated_on;username;updated_at"]
          + [f"{s};{c};BB100;29,90;{fi(o)};{fi(t) if t else ''};{usernames.get(s, 'user' + s[-3:])};"
             "1.1.2018 8:00:00" for s, c, o, t in services])


def write_keys(inbox: Path, stamp: str, keys: list[tuple], phones: dict[str, str] | None = None) -> None:
    phones = phones or {}
    write(inbox / f"services/key_handovers_{stamp}.csv",
          ["handover_id;customer_id;site;key_id;holder_first_name;holder_last_name;holder_phone;signed_out_on;"
           "returned_on;disclosed_to;disclosed_on"]
          + [f"{h};{c};ESP1;K{h[-3:]};Pekka;Avainhenkilö;{phones.get(h, '040 765 4321')};1.1.2019;"
             f"{fi(r) if r else ''};Kulunvalvonta Oy;1.1.2019" for h, c, r in keys])


def write_inbox(inbox: Path, customers: list[str], services: list[tuple], invoices: list[tuple],
                lines: list[tuple], payments: list[tuple], cases: list[tuple], tickets: list[str],
                keys: list[tuple]) -> None:
    """Every entity of the contract (freshness checks all nine), export date today."""
    write_customers(inbox, STAMP, customers)
    write(inbox / f"crm/tickets_{STAMP}.jsonl", tickets)
    write(inbox / f"services/products_{STAMP}.csv",
          ["product_code;product_name;category;monthly_list_price;vat_rate", "BB100;Kuitu 100;broadband;29,90;25,5",
           "COLO;Räkki;colocation;500,00;25,5"])
    write_services(inbox, STAMP, services)
    write_keys(inbox, STAMP, keys)
    billing = "iso-8859-15"
    write(inbox / f"billing/invoices_{STAMP}.csv",
          ["invoice_id;customer_id;invoice_date;due_date;total_amount;status;updated_at"]
          + [f"{i};{c};{fi(d)};{fi(d + timedelta(days=14))};37,52;{s};{fi(d)} 8:00:00" for i, c, d, s in invoices],
          billing)
    write(inbox / f"billing/invoice_lines_{STAMP}.csv",
          ["invoice_id;line_no;service_id;description;amount_excl_vat;updated_at"]
          + [f"{i};{n};{s};Kuitu 100;29,90;1.1.2019 8:00:00" for i, n, s in lines], billing)
    write(inbox / f"billing/payments_{STAMP}.csv",
          ["payment_id;invoice_id;paid_on;amount;updated_at"]
          + [f"{p};{i};{fi(d)};37,52;{fi(d)} 8:00:00" for p, i, d in payments], billing)
    write(inbox / f"billing/collection_cases_{STAMP}.csv",
          ["case_id;customer_id;invoice_id;agency_name;handed_over_on;amount;status;closed_on;updated_at"]
          + [f"{k};{c};{i};Perintä Oy;1.6.2020;37,52;{s};{fi(d) if d else ''};1.1.2024 8:00:00"
             for k, c, i, s, d in cases], billing)


# A ticket closed 2 years (+10 days) before today, in Helsinki: due within 30 days.
DUE_SOON_CLOSED = date(TODAY.year - 2, TODAY.month, min(TODAY.day, 28)) + timedelta(days=10)
# C0000014's only ticket: its 2 years are over (the ticket is erased), the 3 years of her identity are not
ERASED_EVENT_CLOSED = TODAY - timedelta(days=800)
# A termination already agreed, effective after the audit date: the service is still active.
TERMINATES_LATER = TODAY + timedelta(days=60)


# Earlier values (the rule of superseded values, 12 months from the day a later snapshot superseded them): older
# snapshots of customers, services and key handovers, the same as today's but for these fields. Changed on
# 1.3.2024 (overdue from 2.3.2025 on), or recently (CHANGED_RECENTLY: kept).
FIRST_SNAPSHOT, CHANGED_LONG_AGO = date(2024, 1, 15), date(2024, 3, 1)
CHANGED_RECENTLY = TODAY - timedelta(days=40)
OLD_EMAILS = {"C0000006": "eero.laine@vanha.example.fi",  # active customer: the old email is overdue
              "C0000004": "juhani@vanha.example.fi",      # open collection case: on hold
              "C0000007": "sanni@vanha.example.fi"}       # changed recently: kept
OLD_USERNAMES = {"S00000006": "eero-vanha"}
OLD_PHONES = {"H00000063": "040 999 8888"}  # the key holder's earlier phone


def overdue_inbox(inbox: Path) -> None:
    services = [
            ("S00000001", "C0000001", date(2018, 1, 1), date(2022, 5, 10)),   # ended 10.5.2022
            ("S00000002", "C0000002", date(2018, 1, 1), date(2024, 2, 29)),   # ended on a leap day
            ("S00000031", "C0000003", date(2018, 1, 1), date(2020, 1, 31)),   # ended, then...
            ("S00000032", "C0000003", date(2025, 6, 1), None),                # ...reactivated
            ("S00000004", "C0000004", date(2018, 1, 1), date(2020, 3, 1)),    # open collection case
            ("S00000005", "C0000005", date(2018, 1, 1), date(2021, 6, 30)),   # final invoice paid later
            ("S00000006", "C0000006", date(2023, 1, 1), None),
            ("S00000007", "C0000007", date(2023, 1, 1), None),
            ("S00000009", "C0000007", date(2023, 1, 1), TERMINATES_LATER),   # ends after the audit date
            ("S00000121", "C0000012", date(2018, 1, 1), date(2020, 1, 31)),  # ended, but a key is still out
    ]
    keys = [("H00000061", "C0000006", date(2023, 2, 28)), ("H00000062", "C0000006", date(2024, 2, 29)),
            ("H00000063", "C0000006", None),
            ("H00000081", "C0000008", None),               # still out: the relationship goes on
            ("H00000101", "C0000010", date(2022, 3, 15)),  # returned: the relationship ended that day
            ("H00000121", "C0000012", None),
            ("H00000131", ORPHAN, None)]
    write_inbox(
        inbox,
        customers=list(PEOPLE),
        services=services,
        invoices=[
            ("I00000001", "C0000006", date(2019, 3, 15), "paid"),
            ("I00000002", "C0000006", date(2024, 12, 31), "paid"),
            ("I00000003", "C0000006", date(2025, 1, 1), "paid"),
            ("I00000004", "C0000004", date(2020, 2, 1), "in_collection"),
            ("I00000005", "C0000005", date(2021, 7, 5), "paid"),
            ("I00000007", "C0000007", date(2022, 1, 5), "paid"),
            # the financial-year edges, for the calendar year and for a year ending 30.6
            ("I00000091", "C0000006", date(2024, 6, 30), "paid"),
            ("I00000092", "C0000006", date(2024, 7, 1), "paid"),
            ("I00000093", "C0000006", date(2025, 12, 31), "paid"),
        ],
        lines=[("I00000001", 1, "S00000006"), ("I00000002", 1, "S00000006"), ("I00000091", 1, "S00000006")],
        payments=[("P00000001", "I00000002", date(2025, 1, 10)), ("P00000005", "I00000005", date(2023, 9, 15)),
                  ("P00000007", "I00000007", date(2022, 1, 20)), ("P00000092", "I00000092", date(2025, 7, 10))],
        cases=[("K00000004", "C0000004", "I00000004", "open", None),
               ("K00000007", "C0000007", "I00000007", "paid", date(2022, 12, 31))],
        tickets=[
            ticket("T00000061", "C0000006", "2020-12-31T22:30:00Z"),  # 1.1.2021 00:30 in Helsinki
            ticket("T00000062", "C0000006", None),                    # still open
            ticket("T00000063", "C0000006", f"{DUE_SOON_CLOSED.isoformat()}T10:00:00Z"),
            ticket("T00000041", "C0000004", "2019-05-02T10:00:00Z"),  # on hold: open collection case
            ticket("T00000091", "C0000009", None),                    # still open: the relationship goes on
            ticket("T00000111", "C0000011", "2022-08-31T21:30:00Z"),  # 1.9.2022 00:30 in Helsinki (EEST)
            ticket("T00000131", ORPHAN, None),
            ticket("T00000141", "C0000014", f"{ERASED_EVENT_CLOSED.isoformat()}T10:00:00Z"),
        ],
        keys=keys,
    )
    first, long_ago, recently = (day.strftime("%Y%m%d") for day in (FIRST_SNAPSHOT, CHANGED_LONG_AGO,
                                                                     CHANGED_RECENTLY))
    write_customers(inbox, first, list(PEOPLE), OLD_EMAILS)
    write_customers(inbox, long_ago, list(PEOPLE), {"C0000007": OLD_EMAILS["C0000007"]})
    write_customers(inbox, recently, list(PEOPLE))
    write_services(inbox, first, services, OLD_USERNAMES)
    write_services(inbox, long_ago, services)
    write_keys(inbox, first, keys, OLD_PHONES)
    write_keys(inbox, long_ago, keys)


def build_overdue_home(root: Path) -> Home:
    inbox = root / "inbox"
    overdue_inbox(inbox)
    result = cli(root / "home", "run", "--inbox", str(inbox))
    # The job exits 1 here by design (overdue records); what matters is that it built and published.
    assert "Published" in result.output and "Build failed" not in result.output, result.output
    return Home((root / "home").resolve())


def rebuild_with_policy(source: Home, root: Path, policy_path: Path) -> Home:
    """A copy of a built home, its retention models rebuilt under another policy (only those: it is quicker)."""
    settings = Settings.for_home(root, retention_policy=policy_path)
    settings.home.create()
    shutil.copy2(source.vault, settings.home.vault)
    shutil.copytree(source.keys, settings.home.keys, dirs_exist_ok=True)
    outcome = run_dbt(settings, "build", "--select", "int_retention__rules+", "int_retention__legal_holds+")
    assert outcome.success, outcome.failures
    publish(settings, [])
    return settings.home


def planned(home: Home) -> list:
    """The enforcement's plan for a test home (retention/enforce.py), read-only."""
    settings = settings_of(home)
    con = open_vault(settings, read_only=True)
    try:
        con.execute(macro_sql(secret_of(home)))
        return plan(con, secret_of(home), erasure_map(settings))
    finally:
        con.close()


# Disputes for every customer with an overdue record: with those on hold, nothing is overdue. The orphan's
# dispute holds its ticket and key although the CRM export does not list the customer.
DISPUTED = ["C0000001", "C0000002", "C0000005", "C0000006", "C0000007", "C0000010", "C0000011", "C0000014", ORPHAN]


@pytest.fixture(scope="module")
def variant_policy(tmp_path_factory) -> Path:
    document = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    document["version"] = "test-fy-0630"
    document["financial_year_end"] = "06-30"
    document["legal_holds"]["disputes"] = [{"customer_id": c, "reason": "FINE case", "since": "2026-01-01"}
                                           for c in DISPUTED]
    path = tmp_path_factory.mktemp("policy") / "policy.yml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def variant_home(overdue_home, variant_policy, tmp_path_factory) -> Home:
    return rebuild_with_policy(overdue_home, tmp_path_factory.mktemp("variant") / "home", variant_policy)


@pytest.fixture(scope="module")
def terminated_home(overdue_home, tmp_path_factory) -> Home:
    document = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    document["version"] = "test-service-terminated"
    next(r for r in document["rules"] if r["category"] == "customer_relationship")["clock_starts"] = (
        "service_terminated")
    path = tmp_path_factory.mktemp("policy") / "policy.yml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return rebuild_with_policy(overdue_home, tmp_path_factory.mktemp("terminated") / "home", path)


def statuses(home: Home) -> dict[str, tuple]:
    """(record_type, record_key) of the ids we expect -> (category, clock_started_on, expires_on, status, hold)."""
    secret = secret_of(home)
    con = connect(home.analytics, read_only=True)
    try:
        rows = con.execute("""select record_type, record_key, category, clock_started_on, expires_on, status,
                                     hold_reason, as_of_date from privacy.retention_status""").fetchall()
    finally:
        con.close()
    by_key = {(r[0], r[1]): r[2:] for r in rows}
    ids = [f"C{n:07d}" for n in range(1, 14)] + [
        f"{p}{n:08d}" for p in "SIPKTH"
        for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 32, 41, 61, 62, 63, 81, 91, 92, 93, 101, 111, 121, 131)]
    ids += [f"I{n:08d}/1" for n in (1, 2, 91)]
    types = {"C": "customer", "S": "service", "I": "invoice", "P": "payment", "K": "collection_case",
             "T": "ticket", "H": "key_handover"}
    found = {}
    for record_id in ids:
        record_type = "invoice_line" if "/" in record_id else types[record_id[0]]
        row = by_key.get((record_type, pseudonymous_key(secret, record_id)))
        if row:
            found[record_id] = row
    found["_as_of"] = rows[0][-1]
    return found


def expected_status(expires_on: date | None, as_of: date, due_soon_days: int = 30) -> str:
    if expires_on is None:
        return "kept"
    if as_of > expires_on:
        return "overdue"
    return "due_soon" if (expires_on - as_of).days <= due_soon_days else "kept"


# --- the policy file --------------------------------------------------------------------------------------
def test_the_shipped_policy_has_one_rule_per_category_with_its_basis():
    policy = load_policy(DEFAULT_POLICY)
    assert {r.category for r in policy.rules} == {
        "identity_and_contact", "customer_relationship", "accounting_vouchers", "debt_collection",
        "customer_service_communication", "key_handovers", "superseded_values"}
    assert {r.category: str(r.period) for r in policy.rules} == {
        "identity_and_contact": "P3Y", "customer_relationship": "P3Y", "accounting_vouchers": "P6Y",
        "debt_collection": "P3Y", "customer_service_communication": "P2Y", "key_handovers": "P1Y",
        "superseded_values": "P12M"}
    superseded = policy.rule("superseded_values")
    assert superseded.clock_starts == "superseded" and "6(1)(f)" in superseded.legal_basis
    assert {c.table for c in superseded.covers} == {"staging.stg_crm__customers", "staging.stg_services__services",
                                                    "staging.stg_services__key_handovers"}
    assert "1336/1997" in policy.rule("accounting_vouchers").legal_basis
    assert "728/2003" in policy.rule("identity_and_contact").legal_basis
    assert any("hetu" in c.columns for c in policy.rule("identity_and_contact").covers)
    assert policy.financial_year_end == (12, 31) and policy.version and policy.effective_from


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["rules"].pop(0), "no rule for the data category identity_and_contact"),
    (lambda d: d["rules"][0].update(period="3 years"), "not an ISO 8601 duration"),
    (lambda d: d["rules"][3].update(clock_starts="ticket_closed"), "can start at case_closed"),
    (lambda d: d["rules"][1].update(category="identity_and_contact"), "two rules have the category"),
    (lambda d: d.update(financial_year_end="6/30"), "financial_year_end must be MM-DD"),
    (lambda d: d["legal_holds"].update(disputes=["Matti Korhonen"]), r"customer_id must be C \+ 7 digits"),
    (lambda d: d["rules"][2].update(legal_basis=""), "legal_basis is required"),
])
def test_an_invalid_policy_is_refused_with_the_reason(change, message):
    document = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    change(document)
    with pytest.raises(PolicyError, match=message):
        parse_policy(document)


def test_calendar_arithmetic_clamps_to_the_end_of_the_month():
    assert Period.parse("P3Y").add_to(date(2024, 2, 29)) == date(2027, 2, 28)
    assert Period.parse("P4Y").add_to(date(2024, 2, 29)) == date(2028, 2, 29)
    assert Period.parse("P1M").add_to(date(2025, 1, 31)) == date(2025, 2, 28)
    assert Period.parse("P1Y6M10D").add_to(date(2024, 8, 31)) == date(2026, 3, 10)
    policy = parse_policy({**yaml.safe_load(DEFAULT_POLICY.read_text()), "financial_year_end": "06-30"})
    assert policy.expires_on("accounting_vouchers", date(2024, 6, 30)) == date(2030, 12, 31)
    assert policy.expires_on("accounting_vouchers", date(2024, 7, 1)) == date(2031, 12, 31)


# --- the models, on the default policy ----------------------------------------------------------------------
HAND_COMPUTED = {
    # id: (category, clock started, expires on)
    "C0000001": ("identity_and_contact", date(2022, 5, 10), date(2025, 5, 10)),
    "S00000001": ("customer_relationship", date(2022, 5, 10), date(2025, 5, 10)),
    # leap day: 29.2.2024 + 3 years = 28.2.2027 (the month's last day; Act 150/1930 § 4)
    "C0000002": ("identity_and_contact", date(2024, 2, 29), date(2027, 2, 28)),
    # reactivated: a new active service stops the clock of the customer and of the old service
    "C0000003": ("identity_and_contact", None, None),
    "S00000031": ("customer_relationship", None, None),
    # the final invoice was paid 15.9.2023, after the service ended 30.6.2021: the debt was open till then
    "C0000005": ("identity_and_contact", date(2023, 9, 15), date(2026, 9, 15)),
    # vouchers: 6 years from the end of the (calendar) year the financial year ended
    "I00000001": ("accounting_vouchers", date(2019, 12, 31), date(2025, 12, 31)),
    "I00000001/1": ("accounting_vouchers", date(2019, 12, 31), date(2025, 12, 31)),
    "I00000002": ("accounting_vouchers", date(2024, 12, 31), date(2030, 12, 31)),
    "I00000003": ("accounting_vouchers", date(2025, 12, 31), date(2031, 12, 31)),
    "P00000001": ("accounting_vouchers", date(2025, 12, 31), date(2031, 12, 31)),  # paid 10.1.2025
    "I00000091": ("accounting_vouchers", date(2024, 12, 31), date(2030, 12, 31)),
    "I00000091/1": ("accounting_vouchers", date(2024, 12, 31), date(2030, 12, 31)),
    "I00000092": ("accounting_vouchers", date(2024, 12, 31), date(2030, 12, 31)),
    "I00000093": ("accounting_vouchers", date(2025, 12, 31), date(2031, 12, 31)),
    "P00000092": ("accounting_vouchers", date(2025, 12, 31), date(2031, 12, 31)),
    "K00000007": ("debt_collection", date(2022, 12, 31), date(2025, 12, 31)),
    # closed 31.12.2020 22:30 UTC = 1.1.2021 00:30 in Helsinki
    "T00000061": ("customer_service_communication", date(2021, 1, 1), date(2023, 1, 1)),
    "T00000062": ("customer_service_communication", None, None),
    "H00000061": ("key_handovers", date(2023, 2, 28), date(2024, 2, 28)),
    "H00000062": ("key_handovers", date(2024, 2, 29), date(2025, 2, 28)),
    "H00000063": ("key_handovers", None, None),
}


def test_expiry_dates_match_the_hand_computed_ones(overdue_home):
    found = statuses(overdue_home)
    as_of = found["_as_of"]
    assert as_of == TODAY  # the data cut-off: the newest export date loaded
    for record_id, (category, started, expires) in HAND_COMPUTED.items():
        assert record_id in found, record_id
        got_category, got_started, got_expires, status, hold = found[record_id][:5]
        assert (got_category, got_started, got_expires) == (category, started, expires), record_id
        assert hold is None and status == expected_status(expires, as_of), record_id


# --- superseded values: a version a later snapshot superseded is a record of its own ---------------------------
def version_records(home: Home) -> dict[tuple[str, str], tuple]:
    """The superseded versions of the vault's retention records, by (record type, id): (category, clock started,
    expires on, status, hold reason); the mart must hold the same under their pseudonymous keys."""
    rows = vault_rows(home, """
        select record_type, record_id, category, clock_started_on, expires_on, status, hold_reason
        from intermediate.int_retention__records where category = 'superseded_values'""", keyed=True)
    found = {(t, i): tuple(rest) for t, i, *rest in rows}
    secret = secret_of(home)
    con = connect(home.analytics, read_only=True)
    try:
        mart = {(r[0], r[1]): r[2:] for r in con.execute("""
            select record_type, record_key, category, clock_started_on, expires_on, status, hold_reason
            from privacy.retention_status where category = 'superseded_values'""").fetchall()}
    finally:
        con.close()
    assert mart == {(t, pseudonymous_key(secret, i)): v for (t, i), v in found.items()}
    return found


def test_a_superseded_version_expires_twelve_months_after_the_day_it_was_superseded(overdue_home):
    found = version_records(overdue_home)
    recently_expires = date(CHANGED_RECENTLY.year + 1, CHANGED_RECENTLY.month, CHANGED_RECENTLY.day) \
        if (CHANGED_RECENTLY.month, CHANGED_RECENTLY.day) != (2, 29) else date(CHANGED_RECENTLY.year + 1, 2, 28)
    superseded = ("superseded_values", CHANGED_LONG_AGO, date(2025, 3, 1))  # 1.3.2024 + 12 months
    assert found == {
        # the email changed on 1.3.2024, twelve months and more ago
        ("customer_version", "C0000006@2024-01-15"): (*superseded, "overdue", None),
        # the same change, but the customer's open collection case holds every record of theirs
        ("customer_version", "C0000004@2024-01-15"): (*superseded, "on_hold", "open_collection_case"),
        # changed 40 days ago: kept
        ("customer_version", "C0000007@2024-01-15"): ("superseded_values", CHANGED_RECENTLY, recently_expires,
                                                     "kept", None),
        # a service's earlier user name, a key holder's earlier phone
        ("service_version", "S00000006@2024-01-15"): (*superseded, "overdue", None),
        ("key_handover_version", "H00000063@2024-01-15"): (*superseded, "overdue", None),
    }  # the current versions are no records of their own: they are the customer's, service's and key's
    assert load_policy().expires_on("superseded_values", CHANGED_LONG_AGO) == date(2025, 3, 1)
    assert load_policy().expires_on("superseded_values", CHANGED_RECENTLY) == recently_expires
    # a superseded version is not an event of the relationship: the customer's own clock is unchanged
    assert statuses(overdue_home)["C0000006"][:3] == ("identity_and_contact", None, None)


def test_every_record_type_of_superseded_versions_is_one_the_erasure_map_derives(overdue_home):
    derived = {t.record_type: t for t in erasure_map(settings_of(overdue_home)) if t.versions_of}
    assert set(derived) == {"customer_version", "service_version", "key_handover_version"}
    assert {t for t, _ in version_records(overdue_home)} == set(derived)
    assert {t.table for t in derived.values()} == {"raw_crm.customers", "raw_services.services",
                                                   "raw_services.key_handovers"}
    assert all(t.action == "delete" for t in derived.values())


def test_a_legal_hold_keeps_superseded_versions(variant_home):
    found = version_records(variant_home)
    for record in (("customer_version", "C0000006@2024-01-15"), ("service_version", "S00000006@2024-01-15"),
                   ("key_handover_version", "H00000063@2024-01-15"), ("customer_version", "C0000007@2024-01-15")):
        assert found[record][3:] == ("on_hold", "dispute"), record
    assert found[("customer_version", "C0000004@2024-01-15")][3:] == ("on_hold", "open_collection_case")


def test_records_past_their_period_are_overdue_and_the_kept_are_kept(overdue_home):
    found = statuses(overdue_home)
    for record_id in ("C0000001", "S00000001", "I00000001", "I00000001/1", "K00000007", "T00000061",
                      "H00000061", "H00000062"):
        assert found[record_id][3] == "overdue", record_id
    for record_id in ("C0000003", "S00000031", "S00000032", "C0000006", "I00000002", "T00000062", "H00000063"):
        assert found[record_id][3] == "kept", record_id
    due = found["T00000063"]
    assert due[2] == load_policy().expires_on("customer_service_communication", DUE_SOON_CLOSED)
    assert due[3] == "due_soon"


def test_an_open_collection_case_puts_every_record_of_the_customer_on_hold(overdue_home):
    found = statuses(overdue_home)
    held = ["C0000004", "S00000004", "I00000004", "K00000004", "T00000041"]
    assert {record_id: found[record_id][3:5] for record_id in held} == {
        record_id: ("on_hold", "open_collection_case") for record_id in held}
    # the ticket's own clock had run out long ago (2.5.2019 + 2 years): the hold is what keeps it
    assert found["T00000041"][2] == date(2021, 5, 2)
    # while the debt is open, the relationship has not ended
    assert found["C0000004"][1] is None


# --- what keeps a relationship going: a key still out, a ticket still open ------------------------------------
def test_a_key_still_out_keeps_the_relationship_going(overdue_home):
    found = statuses(overdue_home)
    # C0000008 never had a service; C0000012's ended 31.1.2020: both still hold a data-centre key
    for record_id, category in [("C0000008", "identity_and_contact"), ("C0000012", "identity_and_contact"),
                                ("S00000121", "customer_relationship"), ("H00000081", "key_handovers"),
                                ("H00000121", "key_handovers")]:
        assert found[record_id][:5] == (category, None, None, "kept", None), record_id
    # not overdue, so the enforcement leaves them alone
    assert not [a for a in planned(overdue_home) if a.customer_id in ("C0000008", "C0000012")]


def test_an_open_ticket_keeps_the_relationship_going(overdue_home):
    found = statuses(overdue_home)
    # C0000009 never had a service (created 1.1.2018) but has a ticket open with customer service
    assert found["C0000009"][:5] == ("identity_and_contact", None, None, "kept", None)
    assert found["T00000091"][:5] == ("customer_service_communication", None, None, "kept", None)
    assert not [a for a in planned(overdue_home) if a.customer_id == "C0000009"]


def test_the_relationship_ends_on_the_key_return_or_the_ticket_closing(overdue_home):
    found = statuses(overdue_home)
    as_of = found["_as_of"]
    expected = {
        # no service: the key returned 15.3.2022 ended the relationship; + 3 years (Act 728/2003 § 4)
        "C0000010": ("identity_and_contact", date(2022, 3, 15), date(2025, 3, 15)),
        "H00000101": ("key_handovers", date(2022, 3, 15), date(2023, 3, 15)),
        # no service: the ticket closed 31.8.2022 21:30 UTC = 1.9.2022 00:30 in Helsinki ended it
        "C0000011": ("identity_and_contact", date(2022, 9, 1), date(2025, 9, 1)),
        "T00000111": ("customer_service_communication", date(2022, 9, 1), date(2024, 9, 1)),
    }
    for record_id, (category, started, expires) in expected.items():
        assert found[record_id][:3] == (category, started, expires), record_id
        assert found[record_id][3:5] == (expected_status(expires, as_of), None), record_id
    policy = load_policy()
    assert policy.expires_on("identity_and_contact", date(2022, 3, 15)) == date(2025, 3, 15)
    assert policy.expires_on("identity_and_contact", date(2022, 9, 1)) == date(2025, 9, 1)


def test_a_customer_known_only_by_a_ticket_or_a_key_is_held_by_its_dispute(variant_home):
    # the CRM export does not list the orphan; its dispute still holds its open ticket and the key it holds
    found = statuses(variant_home)
    assert ORPHAN not in found
    for record_id in ("T00000131", "H00000131"):
        assert found[record_id][1:5] == (None, None, "on_hold", "dispute"), record_id


# --- the customer-relationship data on each service's own clock -----------------------------------------------
def test_a_service_clock_starts_when_the_service_has_ended(terminated_home):
    found = statuses(terminated_home)
    as_of = found["_as_of"]
    expected = {
        "S00000001": (date(2022, 5, 10), date(2025, 5, 10)),
        # its own end, though the customer came back with another service
        "S00000031": (date(2020, 1, 31), date(2023, 1, 31)),
        "S00000121": (date(2020, 1, 31), date(2023, 1, 31)),
        "S00000032": (None, None),
        # terminated with effect 60 days after the audit date: still active, no clock yet
        "S00000009": (None, None),
    }
    for record_id, (started, expires) in expected.items():
        assert found[record_id][:3] == ("customer_relationship", started, expires), record_id
        assert found[record_id][3:5] == (expected_status(expires, as_of), None), record_id
    assert found["S00000004"][3:5] == ("on_hold", "open_collection_case")
    # the identity data stays on the relationship's clock
    assert found["C0000003"][1] is None and found["C0000001"][1] == date(2022, 5, 10)


def test_the_mart_carries_no_personal_data(overdue_home):
    con = connect(overdue_home.analytics, read_only=True)
    try:
        columns = [r[0] for r in con.execute("describe privacy.retention_status").fetchall()]
        text = " ".join(str(v) for row in con.execute("select * from privacy.retention_status").fetchall()
                        for v in row)
    finally:
        con.close()
    assert "customer_id" not in columns and "record_id" not in columns
    for needle in ["C0000001", "T00000061", "I00000001", "Virtanen", "010180-123A"]:
        assert needle not in text


# --- a financial year that is not the calendar year, and a dispute --------------------------------------------
def test_a_financial_year_ending_in_june(variant_home):
    found = statuses(variant_home)
    # 30.6.2024 closes FY 1.7.2023-30.6.2024, which ended in 2024: 31.12.2024 + 6 years
    assert found["I00000091"][:3] == ("accounting_vouchers", date(2024, 12, 31), date(2030, 12, 31))
    assert found["I00000091/1"][:3] == ("accounting_vouchers", date(2024, 12, 31), date(2030, 12, 31))
    # 1.7.2024 opens FY 1.7.2024-30.6.2025, which ended in 2025 (a calendar year: 2030)
    assert found["I00000092"][:3] == ("accounting_vouchers", date(2025, 12, 31), date(2031, 12, 31))
    # 31.12.2024 is in the same FY (a calendar year: 2030); 15.3.2019 in FY 2018-19, ended in 2019
    assert found["I00000002"][:3] == ("accounting_vouchers", date(2025, 12, 31), date(2031, 12, 31))
    assert found["I00000001"][:3] == ("accounting_vouchers", date(2019, 12, 31), date(2025, 12, 31))
    # paid 10.7.2025 and invoiced 31.12.2025: FY 1.7.2025-30.6.2026 ends in 2026
    assert found["P00000092"][:3] == ("accounting_vouchers", date(2026, 12, 31), date(2032, 12, 31))
    assert found["I00000093"][:3] == ("accounting_vouchers", date(2026, 12, 31), date(2032, 12, 31))


def test_a_dispute_in_the_policy_stops_every_clock_of_the_customer(variant_home):
    found = statuses(variant_home)
    # C0000006's 2019 ticket and returned keys are past their periods; the dispute holds them
    for record_id in ("C0000006", "T00000061", "H00000061", "I00000001", "I00000001/1", "S00000006"):
        assert found[record_id][3:5] == ("on_hold", "dispute"), record_id
    assert found["T00000061"][2] == date(2023, 1, 1)  # the expiry date is still reported
    assert found["K00000004"][3:5] == ("on_hold", "open_collection_case")
    # a customer in no dispute keeps its own status
    assert found["S00000032"][3:5] == ("kept", None)


# --- the audit --------------------------------------------------------------------------------------------
def history_size(home: Home) -> int:
    con = open_vault(settings_of(home), read_only=True)
    try:
        return con.execute("select count(distinct run_id) from retention.audits").fetchone()[0]
    finally:
        con.close()


def test_the_audit_exits_zero_when_nothing_is_overdue(variant_home, variant_policy, tmp_path):
    result = run_audit(settings_of(variant_home).with_(retention_policy=variant_policy), tmp_path,
                       controller=CONTROLLER)
    assert (result.overdue_count, result.exit_code) == (0, 0)
    assert result.on_hold_count > 0 and result.held_count > result.on_hold_count
    report = json.loads(result.json_path.read_text())
    assert report["overdue_records"] == [] and report["totals"]["overdue"] == 0
    assert report["policy_version"] == "test-fy-0630"


def test_the_audit_on_overdue_data_exits_non_zero_and_lists_them_by_key(overdue_home, tmp_path):
    result: AuditResult = run_audit(settings_of(overdue_home), tmp_path, controller=CONTROLLER,
                                    now=datetime(2026, 11, 25, 4, 0).astimezone())
    assert result.exit_code == 1
    by_category = {c.category: c for c in result.categories}
    assert by_category["key_handovers"].overdue == 3  # H00000061, H00000062, H00000101
    assert by_category["key_handovers"].oldest_overdue_on == date(2023, 3, 15)
    assert by_category["customer_service_communication"].due_soon == 1
    report = json.loads(result.json_path.read_text())
    assert result.overdue_count == sum(c.overdue for c in result.categories) == len(report["overdue_records"])
    assert report["overdue_records"][0].keys() == result.listed_records[0].keys()  # the HTML's rows, all of them
    secret = secret_of(overdue_home)
    listed = {(r["record_type"], r["record_key"]) for r in report["overdue_records"]}
    assert ("ticket", pseudonymous_key(secret, "T00000061")) in listed
    assert ("ticket", pseudonymous_key(secret, "T00000062")) not in listed
    assert result.html_path.name == "audit-2026-11-25.html" and result.json_path.name == "audit-2026-11-25.json"
    assert pseudonymous_key(secret, "H00000061") in result.html_path.read_text()


def test_each_audit_adds_one_run_to_the_history_and_reports_the_trend(overdue_home, tmp_path):
    before = history_size(overdue_home) if (overdue_home.vault.exists()) else 0
    first = run_audit(settings_of(overdue_home), tmp_path / "a", controller=CONTROLLER)
    assert history_size(overdue_home) == before + 1
    second = run_audit(settings_of(overdue_home), tmp_path / "b", controller=CONTROLLER)
    assert history_size(overdue_home) == before + 2
    assert second.run_id == first.run_id + 1
    assert [h["run_id"] for h in second.history][-2:] == [first.run_id, second.run_id]
    assert all(c.change is not None and c.change["overdue"] == 0 for c in second.categories)
    con = open_vault(settings_of(overdue_home), read_only=True)
    try:
        rows = con.execute("select category, overdue from retention.audits where run_id = ?",
                           [second.run_id]).fetchall()
    finally:
        con.close()
    assert len(rows) == 7 and sum(r[1] for r in rows) == second.overdue_count


def test_the_report_holds_no_personal_data_and_no_external_urls(overdue_home, tmp_path):
    result = run_audit(settings_of(overdue_home), tmp_path, controller=CONTROLLER)
    html, text = result.html_path.read_text(), result.json_path.read_text()
    con = open_vault(settings_of(overdue_home), read_only=True)
    try:
        people = con.execute("""select first_name, last_name, hetu, email, phone, customer_id
                                from staging.stg_crm__customers""").fetchall()
        ids = [r[0] for r in con.execute("select ticket_id from staging.stg_crm__tickets union all "
                                         "select invoice_id from staging.stg_billing__invoices").fetchall()]
    finally:
        con.close()
    assert len(people) == len(PEOPLE)
    for value in [v for person in people for v in person if v] + ids + ["Avainhenkilö", "Pekka",
                                                                         *OLD_EMAILS.values(), "eero-vanha"]:
        assert value not in html and value not in text, value
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "<h1>Retention audit" in html and "Overdue records" in html
    # the controller passed in, and the time in Helsinki, saying so
    assert json.loads(text)["controller"] == CONTROLLER
    assert f"<span>{CONTROLLER}</span>" in html and f" {CONTROLLER} customer register</title>" in html
    assert re.search(r"audit #\d+, \d{1,2} \w+ \d{4} \d\d:\d\d \(Europe/Helsinki\)</span>", html)
