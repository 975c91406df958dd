"""The ingest under faults (issue 16): unreadable files, schema drift, unrecognised files, decimals that would
round, symlinks out of the inbox, and rejected lines of erased records."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import cli
from exports import header, invoice_line, write
from vault import settings_of

from core.db import connect
from core.erasure import erase
from core.keys import create_key
from core.pseudonym import pseudonymous_key
from core.schema import ensure_vault_schema
from core.vault import open_vault
from ingest import load
from ingest.config import DEFAULT_CONFIG_DIR, ConfigError, load_entities, load_inbox
from warehouse.pipeline import erasure_map

ENTITIES = load_entities()
TABLES = erasure_map(settings_of(Path("unused")))
PRODUCTS_HEADER, INVOICE_LINES_HEADER = header("products"), header("invoice_lines")



def ingest_inbox(con, inbox: Path, entities, secret: bytes | None = None, **options) -> list:
    """The ingest on a plain test database, with the shipped configuration's erasure map and inbox list."""
    options = {"ignore": load_inbox(DEFAULT_CONFIG_DIR).ignore, **options}
    return load.ingest_inbox(con, inbox, entities, scratch=inbox.parent / "scratch", erasure=TABLES, secret=secret,
                             **options)


def ingest(con, inbox: Path, entities=None, **options):
    return {r.source_file: r for r in ingest_inbox(con, inbox, entities or ENTITIES, **options)}


def cli_ingest(home: Path, inbox: Path):
    outcome = cli(home, "ingest", "--inbox", str(inbox), "--json")
    return outcome, {r["source_file"]: r for r in map(json.loads, outcome.stdout.splitlines())}


# --- 1. a file that cannot be read is refused and named; the others load -------------------------------------
def test_a_50_mb_line_without_a_line_break_is_refused_and_the_good_file_after_it_loads(tmp_path):
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    huge = inbox / "billing/invoice_lines_20240201.csv"  # billing loads before services: the bad file comes first
    huge.parent.mkdir(parents=True)
    with huge.open("wb") as handle:
        for _ in range(50):
            handle.write(b"x" * (1 << 20))
    write(inbox / "services/products_20240105.csv", PRODUCTS_HEADER + "\nBB100;Kuitu 100;broadband;29,90;24\n")

    outcome, results = cli_ingest(home, inbox)
    assert outcome.exit_code == 3
    refused = results["billing/invoice_lines_20240201.csv"]
    assert refused["status"] == "refused"
    assert refused["reason"] == ("billing/invoice_lines_20240201.csv: line 1: the header is longer than 1 MiB: "
                                 "not a header of this export")
    assert results["services/products_20240105.csv"]["status"] == "loaded"
    assert "Refused" in outcome.output and "billing/invoice_lines_20240201.csv" in outcome.output

    def state():
        con = open_vault(settings_of(home), read_only=True)
        try:
            return (con.execute("select load_id, source_file, status, reason from ingest.files order by 1").fetchall(),
                    con.execute("select count(*) from raw_services.products").fetchone()[0])
        finally:
            con.close()

    before = state()
    assert [(f, s) for _, f, s, _ in before[0]] == [("billing/invoice_lines_20240201.csv", "refused"),
                                                     ("services/products_20240105.csv", "loaded")]
    again, results = cli_ingest(home, inbox)  # a re-run: the same answer, nothing written
    assert again.exit_code == 3
    assert results["billing/invoice_lines_20240201.csv"]["reason"] == refused["reason"]
    assert results["services/products_20240105.csv"]["status"] == "unchanged"
    assert state() == before


def test_a_header_field_past_the_csv_modules_limit_is_refused_not_raised(vault, tmp_path):
    inbox = tmp_path / "inbox"
    write(inbox / "services/products_20240105.csv", "product_code;" + "x" * 200_000 + "\nBB;1\n")
    write(inbox / "billing/invoice_lines_20240201.csv", INVOICE_LINES_HEADER + "\n" + invoice_line(1) + "\n")
    results = ingest(vault, inbox)
    refused = results["services/products_20240105.csv"]
    assert refused.status == "refused" and "line 1: the header is not readable as CSV" in refused.reason
    assert results["billing/invoice_lines_20240201.csv"].status == "loaded"


def test_a_file_the_system_cannot_read_is_refused_and_the_others_load(vault, tmp_path, monkeypatch):
    """An I/O error half-way through (a failing disk, a file truncated under us) refuses that file only."""
    inbox = tmp_path / "inbox"
    write(inbox / "billing/invoice_lines_20240201.csv", INVOICE_LINES_HEADER + "\n" + invoice_line(1) + "\n")
    write(inbox / "services/products_20240105.csv", PRODUCTS_HEADER + "\nBB100;Kuitu 100;broadband;29,90;24\n")
    real_scan = load.scan_file

    def failing_scan(path, *args, **kwargs):
        if path.name.startswith("invoice_lines"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_scan(path, *args, **kwargs)

    monkeypatch.setattr(load, "scan_file", failing_scan)
    results = ingest(vault, inbox)
    refused = results["billing/invoice_lines_20240201.csv"]
    assert (refused.status, refused.reason) == (
        "refused", "billing/invoice_lines_20240201.csv: cannot be read (Input/output error)")
    assert results["services/products_20240105.csv"].status == "loaded"
    assert vault.execute("select source_file, status from ingest.files order by load_id").fetchall() == [
        ("billing/invoice_lines_20240201.csv", "refused"), ("services/products_20240105.csv", "loaded")]


# --- 4. symbolic links out of the inbox are refused unread; links within it load ------------------------------
def test_symlinks_out_of_the_inbox_are_refused_and_links_within_it_load(vault, tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "elsewhere"
    products = PRODUCTS_HEADER + "\nBB100;Kuitu 100;broadband;29,90;24\n"
    write(outside / "products.csv", products)
    write(outside / "billing/invoice_lines_20240201.csv", INVOICE_LINES_HEADER + "\n" + invoice_line(1) + "\n")
    write(inbox / "archive/products.csv", products.replace("BB100", "BB200"))
    (inbox / "services").mkdir()
    (inbox / "services/products_20240105.csv").symlink_to(outside / "products.csv")       # a file out
    (inbox / "services/products_20240106.csv").symlink_to("../archive/products.csv")     # a file within
    (inbox / "services/products_20240107.csv").symlink_to("../archive/gone.csv")         # a link to nothing
    (inbox / "billing").symlink_to(outside / "billing", target_is_directory=True)       # a folder out

    results = {f: (r.status, r.reason) for f, r in ingest(vault, inbox, ignore=["archive/*"]).items()}
    out = "a symbolic link out of the inbox: only files inside the inbox are read"
    assert results == {
        "billing/invoice_lines_20240201.csv": ("refused", f"billing/invoice_lines_20240201.csv: {out}"),
        "services/products_20240105.csv": ("refused", f"services/products_20240105.csv: {out}"),
        "services/products_20240106.csv": ("loaded", None),
        "services/products_20240107.csv": (
            "refused", "services/products_20240107.csv: cannot be read (No such file or directory)"),
    }
    assert vault.execute("select product_code, _source_file from raw_services.products").fetchall() == [
        ("BB200", "services/products_20240106.csv")]
    assert vault.execute("select count(*) from raw_billing.invoice_lines").fetchone()[0] == 0
    # refused unread: no hash of what lies outside
    assert vault.execute("select count(*) from ingest.files where status = 'refused' and file_hash is not null"
                         ).fetchone()[0] == 0


# --- 3. a decimal with more decimals than its type is a reject, never a rounding ------------------------------
def test_a_csv_decimal_the_type_would_round_is_rejected_on_its_real_line(vault, tmp_path):
    inbox = tmp_path / "inbox"
    lines = [
        INVOICE_LINES_HEADER,
        invoice_line(0),                                  # 2
        invoice_line(1).replace(";1.1.2024;", ";31.2.2024;"),  # 3: the reader rejects it (impossible date)
        "",                                               # 4: blank
        invoice_line(3, price="0,005"),                         # 5: half a cent
        invoice_line(4, price="1,50000"),                       # 6: trailing zeros round nothing: loads
        invoice_line(5, price="-0,125"),                        # 7
        invoice_line(6, price="12,3456789"),                    # 8: past the 6 decimals the reader sees, still non-zero
        invoice_line(7),                                  # 9
    ]
    write(inbox / "billing/invoice_lines_20240201.csv", "\n".join(lines) + "\n", "iso-8859-15")
    result = ingest(vault, inbox)["billing/invoice_lines_20240201.csv"]

    assert (result.status, result.rows_loaded, result.rows_rejected, result.blank_lines) == ("loaded", 3, 4, 1)
    assert result.rows_read == result.rows_loaded + result.rows_rejected
    loaded = vault.execute("select service_id, _line, unit_price::varchar from raw_billing.invoice_lines "
                           "order by _line").fetchall()
    assert loaded == [("S00000000", 2, "29.90"), ("S00000004", 6, "1.50"), ("S00000007", 9, "29.90")]
    rejects = vault.execute("select line, column_name, error_type, reason, raw_text from ingest.rejects "
                            "order by line").fetchall()

    assert [r[:3] for r in rejects] == [(3, "period_start", "CAST"), (5, "unit_price", "TOO MANY DECIMALS"),
                                        (7, "unit_price", "TOO MANY DECIMALS"), (8, "unit_price", "TOO MANY DECIMALS")]
    assert rejects[1][3] == "more decimals than DECIMAL(14,2) allows"
    assert [r[4] for r in rejects[1:]] == [lines[4], lines[6], lines[7]]  # the lines as written
    assert vault.execute("select line, record_key from ingest.rejects where line = 5").fetchone() == (5, "I00000001|2")


def test_a_jsonl_decimal_the_type_would_round_is_rejected_on_its_real_line(vault, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    spec_path = config / "billing/payments.yml"
    spec = yaml.safe_load(spec_path.read_text())
    spec.update(format="jsonl", encoding="utf-8", pattern="billing/payments_*.jsonl")
    spec["columns"]["paid_on"] = "date"
    spec["columns"]["updated_at"] = "timestamptz"
    spec_path.write_text(yaml.safe_dump(spec))

    def payment(n: int, amount) -> str:
        return json.dumps({"payment_id": f"P{n}", "invoice_id": "I1", "paid_on": "2024-02-01", "amount": amount,
                           "method": "card", "updated_at": "2024-02-01T08:00:00+02:00"})

    lines = ["{not json", "", payment(3, 0.005), payment(4, "1.50000"), payment(5, 12.5), payment(6, -0.125)]
    inbox = tmp_path / "inbox"
    write(inbox / "billing/payments_20240201.jsonl", "\n".join(lines) + "\n")
    [result] = ingest_inbox(vault, inbox, load_entities(config))

    assert (result.status, result.rows_loaded, result.rows_rejected, result.blank_lines) == ("loaded", 2, 3, 1)
    assert vault.execute("select payment_id, _line, amount::varchar from raw_billing.payments order by _line"
                         ).fetchall() == [("P4", 4, "1.50"), ("P5", 5, "12.50")]
    assert vault.execute("select line, column_name, error_type, reason, raw_text from ingest.rejects order by line"
                         ).fetchall() == [
        (1, None, "INVALID JSON", "line is not a JSON object", "{not json"),
        (3, "amount", "TOO MANY DECIMALS", "more decimals than DECIMAL(14,2) allows", lines[2]),
        (6, "amount", "TOO MANY DECIMALS", "more decimals than DECIMAL(14,2) allows", lines[5])]


@pytest.mark.parametrize("seed", [3, 11])
def test_line_numbers_hold_with_reader_rejects_blanks_and_decimal_rejects_anywhere(vault, tmp_path, seed):
    inbox = tmp_path / "inbox"
    lines = [invoice_line(n) for n in range(4000)]
    draw = random.Random(seed).sample(range(4000), 900)
    bad, blank, decimals = set(draw[:300]), set(draw[300:600]) - {3999}, set(draw[600:])
    for n in bad:
        lines[n] = lines[n].replace(";29,90;29,90;", ";x;29,90;")
    for n in blank:
        lines[n] = ""
    for n in decimals:
        lines[n] = lines[n].replace(";29,90;29,90;", ";29,901;29,90;")
    write(inbox / "billing/invoice_lines_20240201.csv", INVOICE_LINES_HEADER + "\n" + "\n".join(lines) + "\n",
          "iso-8859-15")
    result = ingest(vault, inbox)["billing/invoice_lines_20240201.csv"]
    assert (result.rows_loaded, result.rows_rejected, result.blank_lines) == \
        (4000 - len(bad) - len(blank) - len(decimals), len(bad) + len(decimals), len(blank))
    # service_id S<n> was written on physical line n + 2: the stored line must say the same.
    assert vault.execute("select count(*) from raw_billing.invoice_lines "
                         "where _line <> substr(service_id, 2)::int + 2").fetchone()[0] == 0
    rejects = vault.execute("select line, error_type, raw_text from ingest.rejects").fetchall()
    assert sorted(line for line, kind, _ in rejects if kind == "TOO MANY DECIMALS") == sorted(n + 2 for n in decimals)
    assert sorted(line for line, kind, _ in rejects if kind == "CAST") == sorted(n + 2 for n in bad)
    assert [(line, kind, text) for line, kind, text in rejects if text != lines[line - 2]][:3] == []
    assert vault.execute("select count(*) from ingest.rejects where not regexp_full_match(record_key, 'I\\d{8}\\|[12]')"
                         ).fetchone()[0] == 0  # the key read from the raw text, after a blank line too


# --- 2. schema drift is reported, or refused where the configuration says so; unrecognised files are named ----
KEY_HANDOVERS_HEADER = header("key_handovers")


def test_a_key_handover_export_without_a_disclosed_field_is_refused_naming_it(vault, tmp_path):
    inbox = tmp_path / "inbox"
    columns = KEY_HANDOVERS_HEADER.split(";")
    values = ["H1", "C1", "ESP1", "K1", "Pekka", "Avain", "040 765 4321", "1.1.2024", "", "Securitas Oy", "1.1.2024"]
    row = dict(zip(columns, values, strict=True))
    kept = [c for c in columns if c != "holder_phone"]
    write(inbox / "services/key_handovers_20240105.csv", [";".join(kept), ";".join(row[c] for c in kept)])
    [result] = ingest_inbox(vault, inbox, ENTITIES)
    assert (result.status, result.reason) == (
        "refused", "services/key_handovers_20240105.csv: line 1: missing column(s) holder_phone "
                   "(schema_drift.missing_columns: refuse)")
    assert vault.execute("select count(*) from raw_services.key_handovers").fetchone()[0] == 0


def test_missing_and_unexpected_columns_load_with_a_warning_in_the_output_json_and_load_log(tmp_path):
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    write(inbox / "services/products_20240105.csv",
          ["product_code;product_name;category;monthly_list_price;notes", "BB100;Kuitu 100;broadband;29,90;Pekka"])
    write(inbox / "services/products_20240106.csv", [PRODUCTS_HEADER, "BB100;Kuitu 100;broadband;29,90;24"])
    warning = "missing column(s) vat_rate: loaded as empty; unexpected column(s) notes: not loaded"

    outcome, results = cli_ingest(home, inbox)
    assert outcome.exit_code == 0, outcome.output
    drifted = results["services/products_20240105.csv"]
    assert (drifted["status"], drifted["warnings"]) == (
        "loaded", ["missing column(s) vat_rate: loaded as empty", "unexpected column(s) notes: not loaded"])
    assert results["services/products_20240106.csv"]["warnings"] == []
    assert f"Warning services/products_20240105.csv: {warning}" in " ".join(outcome.output.split())
    assert "Pekka" not in outcome.output  # names of columns, never values

    con = open_vault(settings_of(home), read_only=True)
    try:
        assert con.execute("select source_file, warnings from ingest.files order by load_id").fetchall() == [
            ("services/products_20240105.csv", drifted["warnings"]), ("services/products_20240106.csv", None)]
    finally:
        con.close()
    plain = cli(tmp_path / "home2", "ingest", "--inbox", str(inbox))
    assert plain.exit_code == 0
    assert f"Warning services/products_20240105.csv: {warning}" in " ".join(plain.output.split())
    assert warning in (tmp_path / "home2/logs/warehouse.log").read_text()


def test_the_entity_configuration_can_refuse_unexpected_columns(vault, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    spec_path = config / "services/products.yml"
    spec_path.write_text(spec_path.read_text() + "schema_drift:\n  unexpected_columns: refuse\n")
    inbox = tmp_path / "inbox"
    write(inbox / "services/products_20240105.csv", [PRODUCTS_HEADER + ";notes", "BB100;Kuitu;broadband;29,90;24;x"])
    [result] = ingest_inbox(vault, inbox, load_entities(config))
    assert (result.status, result.reason) == (
        "refused", "services/products_20240105.csv: line 1: unexpected column(s) notes "
                   "(schema_drift.unexpected_columns: refuse)")


def test_files_no_entity_claims_are_named_as_unrecognised_without_failing_the_ingest(tmp_path):
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    write(inbox / "services/products_20240105.csv", [PRODUCTS_HEADER, "BB100;Kuitu 100;broadband;29,90;24"])
    write(inbox / "manifest.json", "{}")                                   # the generator's: ignored by inbox.yml
    write(inbox / "crm/customers_20240105.csv.part", "customer_id\n")      # an upload not finished
    write(inbox / "billing/laskut_20240105.csv", "x\n")                    # an export nobody configured
    outcome, results = cli_ingest(home, inbox)
    assert outcome.exit_code == 0, outcome.output
    assert {f: r["status"] for f, r in results.items()} == {
        "services/products_20240105.csv": "loaded", "crm/customers_20240105.csv.part": "unrecognised",
        "billing/laskut_20240105.csv": "unrecognised"}
    assert results["billing/laskut_20240105.csv"]["entity"] is None
    text = " ".join(outcome.output.split())
    assert "Unrecognised billing/laskut_20240105.csv: matches no entity's file pattern: not loaded" in text
    assert "Unrecognised crm/customers_20240105.csv.part" in text and "manifest.json" not in text
    assert "unrecognised billing/laskut_20240105.csv" in (home / "logs/warehouse.log").read_text()


def test_a_vault_from_before_schema_drift_gets_the_warnings_column(tmp_path):
    con = connect(tmp_path / "vault.duckdb")
    con.execute("""create schema ingest; create table ingest.files (
        load_id bigint primary key, system varchar, entity varchar, source_file varchar,
        file_hash varchar, file_bytes bigint, file_mtime_ns bigint, export_date date, mode varchar,
        status varchar, rows_read bigint, rows_loaded bigint, rows_rejected bigint, blank_lines bigint,
        reason varchar, loaded_at timestamp default current_timestamp, rows_erased bigint)""")
    inbox = tmp_path / "inbox"
    write(inbox / "services/products_20240105.csv", ["product_code;product_name;category;monthly_list_price",
                                                     "BB100;Kuitu 100;broadband;29,90"])
    [result] = ingest_inbox(con, inbox, ENTITIES)
    assert result.status == "loaded"
    assert con.execute("select warnings from ingest.files").fetchall() == [
        (["missing column(s) vat_rate: loaded as empty"],)]
    con.close()


@pytest.mark.parametrize(("file", "edit", "problem"), [
    ("services/products.yml", lambda t: t + "schema_drift:\n  missing_columns: ignore\n",
     r"schema_drift\.missing_columns must be one of \('warn', 'refuse'\), not 'ignore'"),
    ("services/products.yml", lambda t: t + "schema_drift:\n  missing_column: warn\n", "missing or unknown key"),
    ("services/products.yml", lambda t: t.replace("decimal(5,2)", "decimal(38,2)"),
     r"vat_rate: DECIMAL\(38,2\) must have a scale <= precision <= 37"),
    ("inbox.yml", lambda t: "ignore: manifest.json\n", "ignore must be a list of file patterns"),
    ("inbox.yml", lambda t: "ignored: [manifest.json]\n", "only the key 'ignore' is known"),
])
def test_drift_inbox_and_decimal_settings_are_checked_when_the_configuration_loads(tmp_path, file, edit, problem):
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    path = config / file
    path.write_text(edit(path.read_text()))
    with pytest.raises(ConfigError, match=problem):
        load_entities(config)
    assert load_inbox(DEFAULT_CONFIG_DIR).ignore == ("manifest.json",)


# --- 5. a rejected line of an erased record keeps its place in the accounting, not its text -------------------
CUSTOMERS_HEADER = header("customers")


def customer(customer_id: str, first: str, hetu: str, created: str = "1.1.2020 8:00:00") -> str:
    values = {"customer_id": customer_id, "customer_type": "person", "first_name": first, "last_name": "Virtanen",
              "hetu": hetu, "email": f"{first.lower()}@example.fi", "phone": "040 123 4567",
              "country_code": "FI", "language": "fi", "marketing_consent": "0", "created_at": created,
              "updated_at": "1.1.2024 8:00:00"}
    return ";".join(values.get(c, "") for c in CUSTOMERS_HEADER.split(";"))


def erasure_inbox(inbox: Path) -> None:
    """A rejected line for erased records of four types (and one for a record that is not erased)."""
    write(inbox / "crm/customers_20240105.csv", [
        CUSTOMERS_HEADER,
        customer("C0000001", "Aino", "010180-123A", created="31.2.2020 8:00:00"),  # erased, rejected
        customer("C0000002", "Matti", "290284-9876", created="31.2.2020 8:00:00"),  # kept, rejected
        customer("C0000003", "Liisa", "150375-456B")])
    write(inbox / "billing/invoice_lines_20240201.csv",
          [INVOICE_LINES_HEADER, invoice_line(2, price="x"), invoice_line(3)], "iso-8859-15")  # I00000001/1 rejected
    write(inbox / "crm/tickets_20240105.jsonl", ['{"ticket_id": "T00000061", "customer_id": "C0000006", "subj'])
    write(inbox / "services/key_handovers_20240105.csv", [
        KEY_HANDOVERS_HEADER,
        "H00000061;C0000006;ESP1;K1;Pekka;Avain;040 765 4321;1.1.2019;1.13.2023;Securitas Oy;1.1.2019",
        "H00000062;C0000006;ESP1;K2;Pekka;Avain;040 765 4321;1.1.2019;;Securitas Oy;1.1.2019"])


def with_ledger(con, secret: bytes, erased: list[tuple[str, str, str]]) -> None:
    ensure_vault_schema(con)
    con.executemany("insert into retention.erasure_ledger (record_key, record_type, category, rule_id, action, "
                    "erased_on) values (?, ?, 'test', 'test', ?, current_date)",
                    [(pseudonymous_key(secret, record_id), record_type, action)
                     for record_type, record_id, action in erased])


ERASED = [("customer", "C0000001", "anonymise"), ("invoice_line", "I00000001/1", "delete"),
          ("ticket", "T00000061", "delete"), ("key_handover", "H00000061", "delete")]


def test_the_ingest_keeps_no_raw_text_of_a_rejected_line_of_an_erased_record(vault, tmp_path):
    secret = create_key(tmp_path / "pseudonym.key")
    with_ledger(vault, secret, ERASED)
    inbox = tmp_path / "inbox"
    erasure_inbox(inbox)
    results = ingest(vault, inbox, secret=secret)

    assert all(r.status == "loaded" and r.rows_read == r.rows_loaded + r.rows_rejected for r in results.values())
    assert {f: r.rejects_erased for f, r in results.items()} == {
        "crm/customers_20240105.csv": 1, "billing/invoice_lines_20240201.csv": 1, "crm/tickets_20240105.jsonl": 1,
        "services/key_handovers_20240105.csv": 1}
    rejects = {(r[0], r[1]): r[2:] for r in vault.execute(
        "select source_file, line, column_name, reason, raw_text, record_key from ingest.rejects").fetchall()}
    customers = "crm/customers_20240105.csv"
    assert rejects[(customers, 2)] == (
        "created_at", "Error when converting column \"created_at\". Could not convert string \"…\" to 'TIMESTAMP'",
        None, "C0000001")  # anonymised: the customer number stays, as in raw
    assert "290284-9876" in rejects[(customers, 3)][2]  # not erased: kept whole
    assert rejects[("billing/invoice_lines_20240201.csv", 2)][2:] == (None, None)  # deleted: the key goes too
    assert rejects[("crm/tickets_20240105.jsonl", 1)][2:] == (None, None)
    assert rejects[("services/key_handovers_20240105.csv", 2)][2:] == (None, None)
    text = repr(vault.execute("from ingest.rejects").fetchall())
    assert not [v for v in ("Aino", "010180-123A", "T00000061", "H00000061", "Pekka", "1.13.2023") if v in text]


def test_erase_over_the_vault_clears_older_rejects_of_records_erased_since(vault, tmp_path):
    secret = create_key(tmp_path / "pseudonym.key")
    inbox = tmp_path / "inbox"
    erasure_inbox(inbox)
    ingest(vault, inbox, secret=secret)  # the ledger is empty: every reject keeps its text
    assert vault.execute("select count(*) from ingest.rejects where raw_text is null").fetchone()[0] == 0
    accounting = vault.execute("select load_id, source_file, line, column_name from ingest.rejects order by all"
                               ).fetchall()

    with_ledger(vault, secret, ERASED)
    vault.begin()
    touched = erase(vault, TABLES)
    vault.commit()
    assert touched["ingest.rejects"] == 4
    assert vault.execute("select source_file, line from ingest.rejects where raw_text is not null").fetchall() == [
        ("crm/customers_20240105.csv", 3)]
    assert vault.execute("select load_id, source_file, line, column_name from ingest.rejects order by all"
                         ).fetchall() == accounting
    assert erase(vault, TABLES)["ingest.rejects"] == 0  # a second run: nothing left to erase
