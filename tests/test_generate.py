"""Tests of the sample-export generator (samplegen): layout, validity, defects, determinism."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from stdnum.fi import hetu as stdnum_hetu
from stdnum.fi import ytunnus as stdnum_ytunnus

from samplegen import defects, generate_exports
from samplegen.days import to_day
from samplegen.people import Issued, make_customers
from samplegen.pools import build_pools

# Typed from shared/contracts/exports.md on purpose (not imported from the generator).
CONTRACT = {
    "crm/customers": "customer_id customer_type first_name last_name company_name business_id hetu email "
                     "phone street_address postal_code city country_code billing_street_address "
                     "billing_postal_code billing_city billing_country_code einvoice_address language "
                     "marketing_consent created_at updated_at",
    "crm/tickets": "ticket_id customer_id opened_at closed_at channel subject messages updated_at",
    "services/products": "product_code product_name category monthly_list_price vat_rate",
    "services/services": "service_id customer_id product_code monthly_fee opened_on terminated_on "
                         "termination_reason site username identifier updated_at",
    "services/key_handovers": "handover_id customer_id site key_id holder_first_name holder_last_name "
                              "holder_phone signed_out_on returned_on disclosed_to disclosed_on",
    "billing/invoices": "invoice_id customer_id invoice_date due_date reference_number amount_excl_vat "
                        "vat_amount total_amount currency status updated_at",
    "billing/invoice_lines": "invoice_id line_no service_id description period_start period_end quantity "
                             "unit_price amount_excl_vat vat_rate updated_at",
    "billing/payments": "payment_id invoice_id paid_on amount method reference_number updated_at",
    "billing/collection_cases": "case_id customer_id invoice_id agency_name agency_country handed_over_on "
                                "amount status closed_on updated_at",
}
DELTAS = {"crm/tickets", "billing/invoices", "billing/invoice_lines", "billing/payments",
          "billing/collection_cases"}
SIGNS = "+-YXWVUABCDEF"
HETU_RE = re.compile(r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b")
MONEY_RE = re.compile(r"^-?\d+,\d{2}$")
START, END = date(2022, 1, 1), date(2024, 11, 20)


def _run(out: Path, **kw) -> dict:
    args = {"customers": 2000, "seed": 7, "start": START, "end": END, "days": 3, "defect_rate": 0.02}
    args.update(kw)
    return generate_exports(out, **args)


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("inbox")
    return out, _run(out)


@pytest.fixture(scope="module")
def blocked(tmp_path_factory) -> tuple[Path, dict]:
    """The run of `gen` made in three blocks of customers (700 + 700 + 600)."""
    out = tmp_path_factory.mktemp("blocked")
    return out, _run(out, block_size=700)


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> tuple[Path, dict]:
    """Twenty days across the VAT change, customer records changing ten times as often as in life (so that a
    small sample shows every kind of change), without defects (so that every change shows as made)."""
    out = tmp_path_factory.mktemp("days")
    return out, _run(out, customers=400, seed=19, end=date(2024, 9, 10), days=20, change_rate=10, defect_rate=0)


# Tests of the files' structure run on both: one block, and blocks appended to the same files.
RUNS = ["gen", "blocked"]


def encoding_of(rel: str) -> str:
    return "iso-8859-15" if rel.startswith("billing/") else "utf-8-sig"


def read_csv(path: Path, rel: str) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding=encoding_of(rel), newline="") as f:
        rows = list(csv.reader(f, delimiter=";", quotechar='"'))
    return rows[0], rows[1:]


def records(out: Path, rel: str) -> list[dict]:
    header, rows = read_csv(out / rel, rel)
    return [dict(zip(header, r, strict=False)) for r in rows]


def files_of(manifest: dict, entity: str) -> list[str]:
    return sorted(f["path"] for f in manifest["files"] if f["path"].rsplit("_", 1)[0] == entity)


def parse_date(text: str) -> date:
    d, m, y = (int(x) for x in text.split("."))
    return date(y, m, d)


def cents(text: str) -> int:
    assert MONEY_RE.match(text), text
    return int(text.replace(",", ""))


def reference_ok(ref: str) -> bool:
    """Finnish reference number: 4-20 digits, the last one a 7-3-1 check digit (computed independently)."""
    if not ref.isdigit() or not 4 <= len(ref) <= 20:
        return False
    body = ref[:-1]
    total = sum(int(ch) * (7, 3, 1)[i % 3] for i, ch in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(ref[-1])


def defect_keys(manifest: dict, kind: str) -> set[str]:
    return {d["key"] for d in manifest["defects"] if d["kind"] == kind}


# --- layout --------------------------------------------------------------------------------------

@pytest.mark.parametrize("run", RUNS)
def test_every_file_with_contract_columns(run, request):
    out, manifest = request.getfixturevalue(run)
    dates = manifest["export_dates"]
    assert dates == ["2024-11-18", "2024-11-19", "2024-11-20"]
    expected = {f"{entity}_{d.replace('-', '')}.{'jsonl' if entity == 'crm/tickets' else 'csv'}"
                for entity in CONTRACT for d in dates}
    assert {f["path"] for f in manifest["files"]} == expected
    for f in manifest["files"]:
        rel = f["path"]
        raw = (out / rel).read_bytes()
        assert b"\r" not in raw, rel
        assert raw.startswith(b"\xef\xbb\xbf") == rel.startswith("crm/customers"), rel
        lines = raw.count(b"\n")
        entity = rel.rsplit("_", 1)[0]
        if entity == "crm/tickets":
            assert f["rows"] == lines > 0  # an empty file would look like a failed transfer
            for line in raw.decode("utf-8").splitlines():
                assert list(json.loads(line)) == CONTRACT[entity].split(), rel
        else:
            assert f["rows"] == lines - 1
            header, rows = read_csv(out / rel, rel)
            assert header == CONTRACT[entity].split(), rel
            assert header not in rows, rel  # the header once, not again where a later block begins
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert not (out / ".generate-tmp").exists()


def test_billing_is_iso_8859_15_with_euro_sign(gen):
    out, manifest = gen
    for rel in files_of(manifest, "billing/invoice_lines"):
        raw = (out / rel).read_bytes()
        assert b"\xa4" in raw  # the euro sign in ISO-8859-15
        assert "€".encode() not in raw  # no UTF-8 euro sign
        text = raw.decode("iso-8859-15")
        assert "€" in text and "ä" in text
    for entity in ("billing/invoices", "billing/payments", "billing/collection_cases"):
        for rel in files_of(manifest, entity):
            (out / rel).read_bytes().decode("iso-8859-15")  # raises if not encodable
    assert "ä".encode("iso-8859-15") in (out / files_of(manifest, "billing/collection_cases")[0]).read_bytes()


@pytest.mark.parametrize("run", RUNS)
def test_csv_rows_have_header_width_except_listed_malformed(run, request):
    out, manifest = request.getfixturevalue(run)
    malformed = {(o["file"], o["line"]) for d in manifest["defects"] if d["kind"] == "malformed_row"
                 for o in d["occurrences"]}
    assert malformed
    for f in manifest["files"]:
        rel = f["path"]
        if rel.endswith(".jsonl"):
            continue
        header, rows = read_csv(out / rel, rel)
        for line, row in enumerate(rows, start=2):
            expected = len(header) + 1 if (rel, line) in malformed else len(header)
            assert len(row) == expected, (rel, line)


# --- identifiers ---------------------------------------------------------------------------------

def test_stdnum_accepts_new_century_signs():
    # python-stdnum 2.2 knows the signs added in 2023 (Y-U and B-F), so it validates all HETUs here.
    for sign in SIGNS:
        body = "010190" if sign in "-YXWVU" else "010105" if sign in "ABCDEF" else "010199"
        check = "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(body + "123") % 31]
        assert stdnum_hetu.is_valid(f"{body}{sign}123{check}"), sign


@pytest.mark.parametrize("run", RUNS)
def test_hetu_and_ytunnus_valid_unless_listed(run, request):
    out, manifest = request.getfixturevalue(run)
    bad_hetu = defect_keys(manifest, "invalid_hetu_check")
    bad_ytunnus = defect_keys(manifest, "invalid_ytunnus_check")
    assert bad_hetu and bad_ytunnus
    for rel in files_of(manifest, "crm/customers"):
        seen_persons = 0
        for r in records(out, rel):
            if r["customer_type"] == "person":
                seen_persons += 1
                assert not r["business_id"] and not r["company_name"]
                assert stdnum_hetu.is_valid(r["hetu"]) == (r["customer_id"] not in bad_hetu), r["customer_id"]
                assert HETU_RE.fullmatch(r["hetu"])
            else:
                assert r["customer_type"] == "business" and not r["hetu"] and r["company_name"]
                assert re.fullmatch(r"\d{7}-\d", r["business_id"])
                ok = stdnum_ytunnus.is_valid(r["business_id"])
                assert ok == (r["customer_id"] not in bad_ytunnus), r["customer_id"]
                if r["einvoice_address"]:
                    assert r["einvoice_address"] == "0037" + r["business_id"].replace("-", "") or not ok
        assert seen_persons > 1000


def test_every_century_sign_appears(gen):
    out, manifest = gen
    signs = {r["hetu"][6] for r in records(out, files_of(manifest, "crm/customers")[0]) if r["hetu"]}
    assert signs == set(SIGNS)


def test_reference_numbers_valid(gen):
    out, manifest = gen
    checked = 0
    for entity in ("billing/invoices", "billing/payments"):
        for rel in files_of(manifest, entity):
            for r in records(out, rel):
                assert reference_ok(r["reference_number"]), (rel, r["reference_number"])
                checked += 1
    assert checked > 10000
    assert not reference_ok("10000017") and reference_ok("10000016")


# --- defects -------------------------------------------------------------------------------------

def _line(out: Path, rel: str, n: int) -> str:
    enc = "iso-8859-15" if rel.startswith("billing/") else "utf-8"
    with open(out / rel, encoding=enc, newline="") as f:
        for i, line in enumerate(f, start=1):
            if i == n:
                return line.rstrip("\n").lstrip("\ufeff")
    raise AssertionError(f"{rel} has no line {n}")


def _all_keys(out: Path, manifest: dict, entity: str, column: str) -> set[str]:
    return {r[column] for rel in files_of(manifest, entity) for r in records(out, rel)}


@pytest.mark.parametrize("run", RUNS)
def test_each_defect_is_at_its_line(run, request):
    out, manifest = request.getfixturevalue(run)
    kinds = {d["kind"] for d in manifest["defects"]}
    assert kinds == {"missing_contact", "invalid_hetu_check", "invalid_ytunnus_check", "duplicate_person",
                     "orphan_invoice_line", "unknown_customer_service", "malformed_row", "impossible_date",
                     "non_numeric_amount", "termination_before_opening", "total_mismatch", "hetu_in_ticket"}
    invoices = _all_keys(out, manifest, "billing/invoices", "invoice_id")
    customers = _all_keys(out, manifest, "crm/customers", "customer_id")
    for d in manifest["defects"]:
        assert (d["file"], d["line"]) == (d["occurrences"][0]["file"], d["occurrences"][0]["line"])
        for occ in d["occurrences"]:
            rel, text = occ["file"], _line(out, occ["file"], occ["line"])
            if rel.endswith(".jsonl"):
                obj = json.loads(text)
                assert obj["ticket_id"] == d["key"] and d["kind"] == "hetu_in_ticket"
                found = [h for m in obj["messages"] for h in HETU_RE.findall(m["body"])]
                assert found and all(stdnum_hetu.is_valid(h) for h in found)
                continue
            header = CONTRACT[rel.rsplit("_", 1)[0]].split()
            row = next(csv.reader([text], delimiter=";", quotechar='"'))
            key = f"{row[0]}/{row[1]}" if header[1] == "line_no" else row[0]
            assert key == d["key"], (d, text)
            r = dict(zip(header, row, strict=False))
            value = r.get(d["column"]) if d["column"] else None
            kind = d["kind"]
            if kind == "missing_contact":
                assert value == "" and r["customer_type"] == "person"
            elif kind == "invalid_hetu_check":
                assert HETU_RE.fullmatch(value) and not stdnum_hetu.is_valid(value)
            elif kind == "invalid_ytunnus_check":
                assert re.fullmatch(r"\d{7}-\d", value) and not stdnum_ytunnus.is_valid(value)
            elif kind == "duplicate_person":
                other = d["note"].rsplit(" ", 1)[1]
                twin = next(x for x in records(out, rel) if x["customer_id"] == other)
                assert (twin["hetu"], twin["first_name"], twin["last_name"]) == (
                    value, r["first_name"], r["last_name"])
                assert (twin["street_address"], twin["phone"]) != (r["street_address"], r["phone"])
            elif kind == "orphan_invoice_line":
                assert value not in invoices
            elif kind == "unknown_customer_service":
                assert value not in customers
            elif kind == "malformed_row":
                assert len(row) == len(header) + 1
            elif kind == "impossible_date":
                assert re.fullmatch(r"3[01]\.2\.\d{4}", value)
                with pytest.raises(ValueError):
                    parse_date(value)
            elif kind == "non_numeric_amount":
                assert not MONEY_RE.match(value) and "O" in value
            elif kind == "termination_before_opening":
                assert parse_date(value) < parse_date(r["opened_on"])
            elif kind == "total_mismatch":
                assert cents(value) != cents(r["amount_excl_vat"]) + cents(r["vat_amount"])
            else:
                raise AssertionError(kind)


def test_zero_defect_rate_gives_clean_files(tmp_path):
    manifest = _run(tmp_path, customers=300, defect_rate=0.0, start=date(2024, 1, 1))
    assert manifest["defects"] == []
    customers = _all_keys(tmp_path, manifest, "crm/customers", "customer_id")
    invoices = _all_keys(tmp_path, manifest, "billing/invoices", "invoice_id")
    for f in manifest["files"]:
        rel = f["path"]
        if rel.endswith(".jsonl"):
            continue
        header, rows = read_csv(tmp_path / rel, rel)
        for row in rows:
            assert len(row) == len(header), rel
            r = dict(zip(header, row, strict=True))
            if "customer_id" in r and rel.startswith("services/"):
                assert r["customer_id"] in customers
            if rel.startswith("billing/invoice_lines"):
                assert r["invoice_id"] in invoices
            if r.get("hetu"):
                assert stdnum_hetu.is_valid(r["hetu"])
            if r.get("email") == "" and r.get("customer_type") == "person":
                raise AssertionError("missing email without defects")


# --- consistency ---------------------------------------------------------------------------------

def test_invoice_amounts_and_vat(gen):
    out, manifest = gen
    skip = defect_keys(manifest, "total_mismatch") | defect_keys(manifest, "non_numeric_amount")
    skip |= {k.split("/")[0] for k in defect_keys(manifest, "non_numeric_amount")
             | defect_keys(manifest, "orphan_invoice_line") | defect_keys(manifest, "malformed_row")}
    rel = files_of(manifest, "billing/invoices")[0]
    lines_rel = files_of(manifest, "billing/invoice_lines")[0]
    line_sum: dict[str, int] = {}
    rates: dict[str, str] = {}
    for r in records(out, lines_rel):
        if r["invoice_id"] in skip:
            continue
        line_sum[r["invoice_id"]] = line_sum.get(r["invoice_id"], 0) + cents(r["amount_excl_vat"])
        rates.setdefault(r["invoice_id"], r["vat_rate"])
    both = {"24": 0, "25,5": 0}
    for r in records(out, rel):
        if r["invoice_id"] in skip:
            continue
        net, vat, total = cents(r["amount_excl_vat"]), cents(r["vat_amount"]), cents(r["total_amount"])
        assert total == net + vat
        assert line_sum[r["invoice_id"]] == net
        rate = "24" if parse_date(r["invoice_date"]) < date(2024, 9, 1) else "25,5"
        assert rates[r["invoice_id"]] == rate
        both[rate] += 1
        permille = 240 if rate == "24" else 255
        assert vat == (net * permille + 500) // 1000
        assert r["status"] in {"open", "paid", "credited", "in_collection", "written_off"}
        assert r["currency"] == "EUR"
        if not defect_keys(manifest, "impossible_date") & {r["invoice_id"]}:
            assert (parse_date(r["due_date"]) - parse_date(r["invoice_date"])).days == 14
    assert both["24"] > 0 and both["25,5"] > 0
    for rel in files_of(manifest, "services/products"):
        vat = {r["vat_rate"] for r in records(out, rel)}
        assert vat == {"25,5"}


def test_paid_invoices_have_payments_and_collections_cut_services(gen):
    out, manifest = gen
    last = manifest["export_dates"][-1].replace("-", "")
    paid = {r["invoice_id"] for rel in files_of(manifest, "billing/invoices") for r in records(out, rel)
            if r["status"] == "paid"}
    payments = _all_keys(out, manifest, "billing/payments", "invoice_id")
    assert paid and paid <= payments
    cases = [r for rel in files_of(manifest, "billing/collection_cases") for r in records(out, rel)]
    assert cases and {c["agency_country"] for c in cases} == {"FI"}
    handed = {(c["customer_id"], parse_date(c["handed_over_on"])) for c in cases}
    skip = defect_keys(manifest, "termination_before_opening")
    cut = [r for r in records(out, f"services/services_{last}.csv")
           if r["termination_reason"] == "non_payment" and r["service_id"] not in skip]
    assert cut
    for r in cut:
        assert (r["customer_id"], parse_date(r["terminated_on"])) in handed


def test_deltas_carry_only_that_days_changes(gen):
    out, manifest = gen
    first, *later = manifest["export_dates"]
    for entity in DELTAS - {"crm/tickets"}:
        for rel in files_of(manifest, entity):
            day = date.fromisoformat(f"{rel[-12:-8]}-{rel[-8:-6]}-{rel[-6:-4]}")
            for r in records(out, rel):
                updated = datetime.strptime(r["updated_at"], "%d.%m.%Y %H:%M:%S").date()
                if day.isoformat() == first:
                    assert updated <= day
                else:
                    assert updated == day, (rel, r)
    # An invoice can come again later with a newer state (e.g. open -> paid).
    seen: dict[str, str] = {}
    again = 0
    for rel in files_of(manifest, "billing/invoices"):
        for r in records(out, rel):
            if r["invoice_id"] in seen:
                again += 1
            seen[r["invoice_id"]] = r["status"]
    assert again > 0
    assert later


def test_tickets_json_shape_and_offsets(gen):
    out, manifest = gen
    helsinki = ZoneInfo("Europe/Helsinki")
    n = 0
    for rel in files_of(manifest, "crm/tickets"):
        for line in (out / rel).read_text(encoding="utf-8").splitlines():
            t = json.loads(line)
            n += 1
            assert t["ticket_id"].startswith("T") and t["customer_id"].startswith("C")
            assert t["channel"] in {"email", "phone", "chat", "web"}
            assert 1 <= len(t["messages"]) <= 4
            stamps = [t["opened_at"], t["updated_at"]] + [m["sent_at"] for m in t["messages"]]
            if t["closed_at"] is not None:
                stamps.append(t["closed_at"])
            for s in stamps:
                ts = datetime.fromisoformat(s)
                assert ts.utcoffset() == ts.replace(tzinfo=None).replace(tzinfo=helsinki).utcoffset(), s
            assert [m["direction"] for m in t["messages"]] == ["in", "out", "in", "out"][: len(t["messages"])]
    assert n > 100


@pytest.mark.parametrize("run", [*RUNS, "days"])
def test_deletions_vanish_from_later_snapshots(run, request):
    out, manifest = request.getfixturevalue(run)
    assert manifest["deletions"]
    dates = [d.replace("-", "") for d in manifest["export_dates"]]
    column = {"customers": "customer_id", "services": "service_id", "key_handovers": "handover_id"}
    for d in manifest["deletions"]:
        rel = d["first_absent_in"]
        stamp = rel[-12:-4]
        before = rel.replace(stamp, dates[dates.index(stamp) - 1])
        assert d["key"] in {r[column[d["entity"]]] for r in records(out, before)}
        for later in dates[dates.index(stamp):]:
            assert d["key"] not in {r[column[d["entity"]]] for r in records(out, rel.replace(stamp, later))}


def test_realistic_mix(gen):
    out, manifest = gen
    last = manifest["export_dates"][-1].replace("-", "")
    cust = records(out, f"crm/customers_{last}.csv")
    persons = sum(r["customer_type"] == "person" for r in cust)
    assert 0.7 < persons / len(cust) < 0.9
    assert {r["language"] for r in cust} == {"fi", "sv", "en"}
    assert any(r["billing_street_address"] for r in cust)
    assert any(r["email"] != r["email"].lower() for r in cust)
    svc = records(out, f"services/services_{last}.csv")
    products = {r["product_code"]: r["category"] for r in records(out, f"services/products_{last}.csv")}
    assert 12 <= len(products) <= 20
    assert {products.get(r["product_code"]) for r in svc} >= {"broadband", "colocation", "ip_transit", "vps",
                                                               "email", "domain"}
    assert {r["termination_reason"] for r in svc} == {"", "customer_request", "moved", "price", "competitor",
                                                       "other", "non_payment"}
    for r in svc:
        if "/" in r["identifier"]:  # IP prefixes only from the documentation ranges
            assert r["identifier"].startswith(("192.0.2.", "198.51.100.", "203.0.113."))
    keys = records(out, f"services/key_handovers_{last}.csv")
    assert keys and all(k["disclosed_on"] == k["signed_out_on"] and k["disclosed_to"] for k in keys)
    assert any(k["returned_on"] == "" for k in keys)


# --- days ----------------------------------------------------------------------------------------

SNAPSHOT_FILES = {"customers": "crm/customers", "services": "services/services",
                  "key_handovers": "services/key_handovers", "products": "services/products"}


def _snapshot_lines(out: Path, rel: str) -> dict[str, str]:
    """The rows of a snapshot as written, by key (the first field), header left out."""
    text = (out / rel).read_bytes().decode(encoding_of(rel))
    assert text.endswith("\n")
    lines = text.split("\n")[1:-1]
    found = {line.split(";", 1)[0]: line for line in lines}
    assert len(found) == len(lines), rel
    return found


def _day_pairs(manifest: dict, entity: str) -> list[tuple[str, str, dict]]:
    """(yesterday's file, today's file, the manifest's changes of today) for each day after the first."""
    files = files_of(manifest, SNAPSHOT_FILES[entity])
    assert len(files) == len(manifest["export_dates"])
    return [(a, b, c[entity]) for a, b, c in zip(files[:-1], files[1:], manifest["changes"], strict=True)]


def _diff(old: dict[str, str], new: dict[str, str]) -> tuple[set, set, set]:
    added, removed = new.keys() - old.keys(), old.keys() - new.keys()
    return added, {k for k in new.keys() & old.keys() if new[k] != old[k]}, removed


@pytest.mark.parametrize("run", [*RUNS, "days"])
def test_snapshots_differ_by_exactly_the_listed_changes(run, request):
    """Each day's snapshot adds, changes and removes the rows the manifest counts; every other row is the
    same, byte for byte, as the day before."""
    out, manifest = request.getfixturevalue(run)
    assert [c["date"] for c in manifest["changes"]] == manifest["export_dates"][1:]
    for entity in SNAPSHOT_FILES:
        for a, b, listed in _day_pairs(manifest, entity):
            old, new = _snapshot_lines(out, a), _snapshot_lines(out, b)
            added, changed, removed = _diff(old, new)
            assert (len(added), len(changed), len(removed)) == (
                listed["added"], listed["changed"], listed["removed"]), (b, listed)
            same = len(old.keys() & new.keys()) - len(changed)
            if entity != "products":
                assert same >= 0.9 * len(old), b  # a day changes a few rows, not the snapshot


def test_changes_follow_the_daily_rates(days):
    """Over the days the customer records change as often as the rates say (here ten times the rates of
    life), services end at a churn rate, and every kind of change happens."""
    out, manifest = days
    rates = {k: v / (365.25 / 12) for k, v in manifest["rates"].items()}  # per customer and day
    expected = {"moved": 0.0, "phone_changed": 0.0, "email_changed": 0.0, "consent_changed": 0.0}
    totals: dict[str, int] = {}
    active_days = 0
    for a, _, listed in _day_pairs(manifest, "customers"):
        types = [r["customer_type"] for r in records(out, a)]
        persons, firms = types.count("person"), types.count("business")
        expected["moved"] += persons * rates["move_person"] + firms * rates["move_business"]
        for kind, rate in (("phone_changed", "phone"), ("email_changed", "email"), ("consent_changed", "consent")):
            expected[kind] += (persons + firms) * rates[rate]
        for kind, n in listed.items():
            totals[kind] = totals.get(kind, 0) + n
    for a, _, listed in _day_pairs(manifest, "services"):
        active_days += sum(r["terminated_on"] == "" for r in records(out, a))
        totals["terminated"] = totals.get("terminated", 0) + listed["terminated"]
        totals["opened"] = totals.get("opened", 0) + listed["opened"]
    for kind, mean in expected.items():
        assert abs(totals[kind] - mean) <= 3 * mean ** 0.5 + 2, (kind, totals[kind], mean)
    monthly_churn = totals["terminated"] / active_days * 365.25 / 12
    assert 0.003 < monthly_churn < 0.05, monthly_churn
    assert totals["added"] > 0 and totals["opened"] > 0
    assert sum(c["customers"]["removed"] for c in manifest["changes"]) == len(
        {d["key"] for d in manifest["deletions"] if d["entity"] == "customers"}) > 0
    vat = [c["date"] for c in manifest["changes"] if c["products"]["vat_changed"]]
    assert vat == ["2024-09-01"]


def test_changed_contacts_show_in_the_snapshot(days):
    """A move changes the address, a new phone or e-mail the phone or e-mail, a consent change the consent;
    nothing else about the customer changes, and updated_at becomes that day."""
    out, manifest = days
    columns = {"moved": {"street_address", "postal_code", "city"}, "phone_changed": {"phone"},
               "email_changed": {"email"}, "consent_changed": {"marketing_consent"}}
    allowed = set().union(*columns.values()) | {"updated_at", "billing_postal_code", "billing_city"}
    for a, b, listed in _day_pairs(manifest, "customers"):
        old = {r["customer_id"]: r for r in records(out, a)}
        new = {r["customer_id"]: r for r in records(out, b)}
        seen = dict.fromkeys(columns, 0)
        for key in old.keys() & new.keys():
            if old[key] == new[key]:
                continue
            differ = {c for c in old[key] if old[key][c] != new[key][c]}
            assert differ <= allowed, (b, key, differ)
            day = date.fromisoformat(f"{b[-12:-8]}-{b[-8:-6]}-{b[-6:-4]}")
            assert datetime.strptime(new[key]["updated_at"], "%d.%m.%Y %H:%M:%S").date() == day
            for kind, cols in columns.items():
                seen[kind] += bool(differ & cols)
        assert seen == {kind: listed[kind] for kind in columns}, b
    total = {kind: sum(c["customers"][kind] for c in manifest["changes"]) for kind in columns}
    assert min(total.values()) > 0, total


def test_a_service_ends_in_the_snapshots_from_its_day_on(days):
    """A service terminated on day d shows its termination in the snapshot of d and every later one, and is
    not billed for a period that starts after it ended."""
    out, manifest = days
    pairs = _day_pairs(manifest, "services")
    ended: dict[str, tuple[str, str]] = {}  # service -> (first snapshot showing the end, its row)
    opened = 0
    for a, b, _ in pairs:
        old = {r["service_id"]: r for r in records(out, a)}
        day = f"{int(b[-6:-4])}.{int(b[-8:-6])}.{b[-12:-8]}"
        for r in records(out, b):
            was = old.get(r["service_id"])
            if was is None:
                assert r["opened_on"] == day, r
                opened += 1
            elif r["terminated_on"] and not was["terminated_on"]:
                assert r["terminated_on"] == day and r["termination_reason"], r
                ended[r["service_id"]] = (b, ";".join(r.values()))
    assert len(ended) >= 3 and opened >= 3
    later = [b for _, b, _ in pairs]
    for service, (first, row) in ended.items():
        for rel in later[later.index(first):]:
            rows = {r["service_id"]: ";".join(r.values()) for r in records(out, rel)}
            assert rows[service] == row, (service, rel)
    for rel in files_of(manifest, "billing/invoice_lines"):
        for r in records(out, rel):
            if r["service_id"] in ended:
                end = ended[r["service_id"]][1].split(";")[5]
                assert parse_date(r["period_start"]) <= parse_date(end), r


def test_manifest_lists_every_file_with_its_rows(days):
    out, manifest = days
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*_*.*")}
    assert on_disk == {f["path"] for f in manifest["files"]}
    assert len(on_disk) == 9 * 20
    for f in manifest["files"]:
        raw = (out / f["path"]).read_bytes()
        assert f["rows"] == raw.count(b"\n") - (0 if f["path"].endswith(".jsonl") else 1), f["path"]


def test_static_days_repeat_the_first_snapshot(tmp_path):
    manifest = _run(tmp_path, customers=300, seed=4, days=6, static_days=True)
    dates = [d.replace("-", "") for d in manifest["export_dates"]]
    assert len(dates) == 6
    for entity in SNAPSHOT_FILES.values():
        first = (tmp_path / f"{entity}_{dates[0]}.csv").read_bytes()
        assert first.count(b"\n") > 1
        for day in dates[1:]:
            assert (tmp_path / f"{entity}_{day}.csv").read_bytes() == first, (entity, day)
    for entity in DELTAS:
        for day in dates[1:]:
            rel = f"{entity}_{day}.{'jsonl' if entity == 'crm/tickets' else 'csv'}"
            raw = (tmp_path / rel).read_bytes()
            assert raw == b"" if entity == "crm/tickets" else raw.count(b"\n") == 1, rel
    assert all(n == 0 for c in manifest["changes"] for e, kinds in c.items() if e != "date"
               for n in kinds.values())
    assert manifest["deletions"] == []
    rows = {f["path"]: f["rows"] for f in manifest["files"]}
    assert all(rows[f"{e}_{d}.csv"] == rows[f"{e}_{dates[0]}.csv"] > 0 for e in SNAPSHOT_FILES.values()
               for d in dates)
    # A defect of the first snapshot is in every copy of it, at the same line.
    copied = [d for d in manifest["defects"] if d["file"].startswith("services/services_")]
    assert copied
    for d in copied:
        assert [o["file"][-12:-4] for o in d["occurrences"]] == dates
        assert {o["line"] for o in d["occurrences"]} == {d["line"]}



# --- determinism ---------------------------------------------------------------------------------

def _digest(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    args = {"customers": 300, "start": date(2023, 6, 1), "end": date(2024, 10, 5), "days": 8, "change_rate": 5}
    a = _digest_run(tmp_path / "a", seed=11, **args)
    b = _digest_run(tmp_path / "b", seed=11, **args)
    c = _digest_run(tmp_path / "c", seed=12, **args)
    assert a == b
    assert a.keys() == c.keys()
    assert a["crm/customers_20241005.csv"] != c["crm/customers_20241005.csv"]
    assert a["billing/invoices_20241003.csv"] != c["billing/invoices_20241003.csv"]


def _digest_run(out: Path, **kw) -> dict[str, str]:
    _run(out, **kw)
    return _digest(out)


def test_block_size_of_the_whole_run_changes_nothing(tmp_path):
    args = {"customers": 300, "seed": 3, "start": date(2023, 6, 1), "end": date(2024, 10, 5)}
    default = _digest_run(tmp_path / "default", **args)
    assert _digest_run(tmp_path / "same", block_size=300, **args) == default
    assert _digest_run(tmp_path / "larger", block_size=5000, **args) == default
    # One customer more than a block makes a second block (of one customer): other files.
    assert _digest_run(tmp_path / "two", block_size=299, **args) != default


# --- blocks ----------------------------------------------------------------------------------------

# Columns that never change for a key: rows of two different records under one key would differ in them.
IDENTITY = {
    "crm/customers": ["created_at", "first_name", "last_name", "hetu", "business_id"],
    "services/services": ["customer_id", "product_code", "opened_on", "identifier"],
    "services/key_handovers": ["customer_id", "key_id", "signed_out_on"],
    "billing/invoices": ["customer_id", "invoice_date", "reference_number"],
    "billing/invoice_lines": ["service_id", "description"],
    "billing/payments": ["invoice_id", "reference_number"],
    "billing/collection_cases": ["customer_id", "invoice_id", "handed_over_on"],
    "crm/tickets": ["customer_id", "opened_at"],
    "services/products": ["product_name", "category"],
}
SNAPSHOTS = {"crm/customers", "services/services", "services/key_handovers", "services/products"}


def _rows(out: Path, rel: str) -> list[dict]:
    if rel.endswith(".jsonl"):
        return [json.loads(line) for line in (out / rel).read_text(encoding="utf-8").splitlines()]
    return records(out, rel)


def test_blocks_give_unique_keys_in_key_ordered_snapshots(blocked, gen):
    out, manifest = blocked
    # Three blocks really were made: the files differ from the run made in one block.
    assert (out / "crm/customers_20241120.csv").read_bytes() != (gen[0] / "crm/customers_20241120.csv").read_bytes()
    for entity, columns in IDENTITY.items():
        seen: dict[str, tuple] = {}
        for rel in files_of(manifest, entity):
            keys = []
            for r in _rows(out, rel):
                key = next(iter(r.values()))
                key = f"{key}/{r['line_no']}" if entity == "billing/invoice_lines" else key
                identity = tuple(r[c] for c in columns)
                assert seen.setdefault(key, identity) == identity, (rel, key)
                keys.append(key)
            assert len(set(keys)) == len(keys), rel
            if entity in SNAPSHOTS:
                assert keys == sorted(keys), rel
        assert len(seen) > 10, entity


@pytest.mark.parametrize("run", RUNS)
def test_foreign_keys_resolve(run, request):
    out, manifest = request.getfixturevalue(run)
    rows = {entity: [r for rel in files_of(manifest, entity) for r in _rows(out, rel)] for entity in IDENTITY}
    customers = {r["customer_id"] for r in rows["crm/customers"]}
    invoices = {r["invoice_id"] for r in rows["billing/invoices"]}
    unknown = defect_keys(manifest, "unknown_customer_service")
    orphans = {k.split("/")[0] for k in defect_keys(manifest, "orphan_invoice_line")}
    assert unknown and orphans
    for entity, column, targets, allowed in [
        ("billing/invoices", "customer_id", customers, set()),
        ("billing/invoice_lines", "invoice_id", invoices, orphans),
        ("billing/payments", "invoice_id", invoices, set()),
        ("billing/collection_cases", "invoice_id", invoices, set()),
        ("billing/collection_cases", "customer_id", customers, set()),
        ("services/key_handovers", "customer_id", customers, set()),
        ("crm/tickets", "customer_id", customers, set()),
    ]:
        assert {r[column] for r in rows[entity]} - allowed <= targets, (entity, column)
    services = rows["services/services"]
    assert {r["customer_id"] for r in services if r["service_id"] not in unknown} <= customers
    assert not {r["customer_id"] for r in services if r["service_id"] in unknown} & customers
    services_ids = {r["service_id"] for r in services}
    assert {r["service_id"] for r in rows["billing/invoice_lines"] if r["service_id"]} <= services_ids


def test_blocks_share_the_defect_counts_of_the_run(blocked, gen):
    """Counts that depend only on size and rate are those of the one-block run, not "at least one" per block."""
    kinds = ["duplicate_person", "unknown_customer_service", "orphan_invoice_line", "malformed_row",
             "impossible_date", "non_numeric_amount", "total_mismatch"]

    def per_kind(manifest: dict) -> dict[str, int]:
        return {k: sum(d["kind"] == k for d in manifest["defects"]) for k in kinds}

    one_block = per_kind(gen[1])
    assert per_kind(blocked[1]) == one_block
    assert min(one_block.values()) < 3  # fewer than the blocks: one defect per block would be too many


@pytest.mark.parametrize(("rate", "weight"), [(0.02, 0.05), (0.02, 1.0), (0.001, 0.1), (0.01, 0.37), (0.0, 1.0)])
def test_counts_of_blocks_add_up_to_the_count_of_the_run(rate, weight):
    populations = [700, 700, 600, 0, 1, 49]
    counts = defects.Counts(rate)
    parts = [counts.count("kind", n, weight) for n in populations]
    assert parts[0] == defects.count(rate, populations[0], weight)
    assert sum(parts) == defects.count(rate, sum(populations), weight)
    for part, n in zip(parts, populations, strict=True):
        exact = rate * n * weight
        assert 0 <= part <= exact + 1
    assert counts.count("other kind", 700, weight) == parts[0]  # each kind counts on its own


def test_later_blocks_give_out_other_hetus_and_business_ids():
    pools = build_pools(1, np.random.default_rng(1))
    issued = Issued()
    start, end = to_day(START), to_day(END)
    # The same generator state twice: only `issued` keeps the second block from repeating the first's codes.
    a, b = (make_customers(np.random.default_rng(5), pools, 3000, 0, start, end, end - 2, 100001, issued)
            for _ in range(2))

    def codes(c: dict) -> tuple[set, set]:
        person = ~c["business"]
        return (set(zip(c["birth_day"][person], c["hetu_nnn"][person], strict=True)),
                set(c["ytunnus_base"][~person]))

    (hetu_a, ytunnus_a), (hetu_b, ytunnus_b) = codes(a), codes(b)
    assert len(hetu_a) > 2000 and len(ytunnus_a) > 400
    assert not hetu_a & hetu_b and not ytunnus_a & ytunnus_b
    assert len(issued.hetu) == len(hetu_a) + len(hetu_b)
