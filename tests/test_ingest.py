"""The ingest's promises on files it has never seen: accounting, refusals, versions, encodings, crashes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import cli
from exports import header, invoice_line, write
from vault import settings_of

from core.vault import open_vault
from ingest.config import DEFAULT_CONFIG_DIR, ConfigError, load_entities
from ingest.load import ingest_inbox, scan_file

ENTITIES = {e.name: e for e in load_entities()}
PRODUCTS_HEADER, INVOICE_LINES_HEADER = header("products"), header("invoice_lines")



def load(con, inbox: Path, entities=None) -> list:
    """ingest_inbox on a plain test database: no erasure ledger to apply, scratch beside the inbox."""
    entities = list(ENTITIES.values()) if entities is None else entities
    return ingest_inbox(con, inbox, entities, scratch=inbox.parent / "scratch", erasure=[])


def ingest(con, inbox: Path):
    return {r.source_file: r for r in load(con, inbox)}


def test_every_line_is_loaded_or_rejected_with_its_line_column_and_text(vault, tmp_path):
    inbox = tmp_path / "inbox"
    write(inbox / "services/products_20240105.csv", "\n".join([
        PRODUCTS_HEADER,
        "BB100;Kuitu 100;broadband;29,90;24",
        "BB1000;Kuitu 1000;broadband;4O,00;24",         # letter O in money
        "COLO;Räkki;colocation;500,00;24;surplus",      # one field too many
        "",                                             # blank line: skipped, still numbered
        ";Nameless;vps;1,00;24",                        # no key
        "VPS;Virtuaalipalvelin;vps;10,00;24",
    ]) + "\n")
    result = ingest(vault, inbox)["services/products_20240105.csv"]

    assert (result.status, result.rows_loaded, result.rows_rejected, result.blank_lines) == ("loaded", 2, 3, 1)
    assert result.rows_read == result.rows_loaded + result.rows_rejected
    loaded = vault.execute("select product_code, _line, monthly_list_price::varchar from raw_services.products "
                           "order by _line").fetchall()
    assert loaded == [("BB100", 2, "29.90"), ("VPS", 7, "10.00")]
    rejects = vault.execute("select source_file, line, column_name, error_type, raw_text from ingest.rejects "
                            "order by line").fetchall()
    assert [(r[1], r[2], r[3]) for r in rejects] == [
        (3, "monthly_list_price", "CAST"), (4, None, "TOO MANY COLUMNS"), (6, "product_code", "MISSING KEY")]
    assert all(r[0] == "services/products_20240105.csv" for r in rejects)
    assert rejects[0][4] == "BB1000;Kuitu 1000;broadband;4O,00;24"


@pytest.mark.parametrize("seed", [None, 7])
def test_line_numbers_survive_rejects_and_blank_lines_anywhere_in_a_large_file(vault, tmp_path, seed):
    inbox = tmp_path / "inbox"
    lines = [invoice_line(n) for n in range(5000)]
    bad, blank = {17, 18, 19, 2500, 4999}, {20, 21, 3000}  # consecutive, next to each other, middle and last
    if seed is not None:  # hundreds of runs of rows between skipped lines
        draw = random.Random(seed).sample(range(5000), 600)
        bad, blank = set(draw[:450]), set(draw[450:]) - {4999}
    for n in bad:
        lines[n] = lines[n].replace(";29,90;29,90;", ";x;29,90;")
    for n in blank:
        lines[n] = ""
    write(inbox / "billing/invoice_lines_20240201.csv", INVOICE_LINES_HEADER + "\n" + "\n".join(lines) + "\n",
          "iso-8859-15")
    result = ingest(vault, inbox)["billing/invoice_lines_20240201.csv"]
    assert (result.rows_loaded, result.rows_rejected, result.blank_lines) == \
        (5000 - len(bad) - len(blank), len(bad), len(blank))
    # service_id S<n> was written on physical line n + 2: the stored line must say the same.
    wrong = vault.execute("select count(*) from raw_billing.invoice_lines "
                          "where _line <> substr(service_id, 2)::int + 2").fetchone()[0]
    assert wrong == 0
    assert sorted(r[0] for r in vault.execute("select line from ingest.rejects").fetchall()) == \
        sorted(n + 2 for n in bad)


def test_the_same_file_twice_changes_nothing_and_a_corrected_file_is_a_new_version(vault, tmp_path):
    inbox = tmp_path / "inbox"
    path = write(inbox / "services/products_20240105.csv", PRODUCTS_HEADER + "\nBB100;Kuitu 100;broadband;29,90;24\n")
    first = ingest(vault, inbox)["services/products_20240105.csv"]
    again = ingest(vault, inbox)["services/products_20240105.csv"]
    assert (first.status, again.status) == ("loaded", "unchanged")
    assert vault.execute("select count(*) from raw_services.products").fetchone()[0] == 1

    write(path, PRODUCTS_HEADER + "\nBB100;Kuitu 100;broadband;31,90;24\n")
    corrected = ingest(vault, inbox)["services/products_20240105.csv"]
    assert corrected.status == "loaded" and corrected.load_id != first.load_id
    versions = vault.execute("select load_id, file_hash from ingest.files where status = 'loaded' "
                             "order by load_id").fetchall()
    assert [v[0] for v in versions] == [first.load_id, corrected.load_id]
    assert versions[0][1] != versions[1][1]


def test_iso_8859_15_euro_sign_is_read_as_euro(vault, tmp_path):
    inbox = tmp_path / "inbox"
    path = write(inbox / "billing/invoice_lines_20240201.csv",
                 INVOICE_LINES_HEADER + "\n" + invoice_line(1, "Asennusmaksu 50 € (kertaluonteinen)")
                 + "\n", "iso-8859-15")
    assert b"\xa4" in path.read_bytes()  # the euro sign's byte in ISO-8859-15 (Latin-1 reads it as ¤)
    ingest(vault, inbox)
    assert vault.execute("select description from raw_billing.invoice_lines").fetchone()[0] == \
        "Asennusmaksu 50 € (kertaluonteinen)"


def test_one_pass_hashes_every_byte_and_writes_the_utf8_copy_or_says_where_it_stopped(tmp_path):
    """The file is read once: its hash, its lines and its UTF-8 copy come from the same pass."""
    text = "rivi 1 €\nrivi 2 Räkki\nrivi 3\n"
    good = tmp_path / "good.csv"
    good.write_bytes(text.encode("iso-8859-15"))
    scan = scan_file(good, "iso-8859-15", tmp_path / "good.utf8")
    assert (tmp_path / "good.utf8").read_text(encoding="utf-8") == text
    assert (scan.sha256, scan.lines, scan.undecodable) == (hashlib.sha256(good.read_bytes()).hexdigest(), 3, None)

    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"rivi 1\nrivi 2\nrivi \x81 3\nrivi 4\n")  # 0x81: no character in cp1252
    scan = scan_file(bad, "cp1252", tmp_path / "bad.utf8")
    assert scan.undecodable == "line 3: bytes that are not valid cp1252: wrong encoding?"
    assert (scan.sha256, scan.lines) == (hashlib.sha256(bad.read_bytes()).hexdigest(), 4)


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("missing column", PRODUCTS_HEADER.replace("product_name;", "") + "\nBB;broadband;1,00;24\n",
     "missing required column(s) product_name"),
    ("undecodable bytes", None, "not valid utf-8"),
    ("empty file", "", "empty file"),
    ("wrong delimiter", PRODUCTS_HEADER.replace(";", ",") + "\nBB,Kuitu,broadband,1.00,24\n", "wrong delimiter"),
    ("unterminated quote", PRODUCTS_HEADER + '\nA;"Kuitu;broadband;1,00;24\nB;Kuitu;broadband;1,00;24\n'
     "C;Kuitu;broadband;1,00;24\n", "unterminated quote at line 2"),
])
def test_unreadable_files_are_refused_whole_and_the_others_still_load(tmp_path, name, content, problem):
    inbox = tmp_path / "inbox"
    bad = inbox / "services/products_20240105.csv"
    if content is None:  # Latin-1 bytes in a UTF-8 export
        write(bad, PRODUCTS_HEADER + "\nBB;Kuitu;broadband;1,00;24\nCO;R\xe4kki;colocation;1,00;24\n", "latin-1")
    else:
        write(bad, content)
    write(inbox / "billing/invoice_lines_20240201.csv", INVOICE_LINES_HEADER + "\n" + invoice_line(1) + "\n")

    outcome = cli(tmp_path / "home", "ingest", "--inbox", str(inbox), "--json")
    assert outcome.exit_code == 3, name
    results = {r["source_file"]: r for r in map(json.loads, outcome.stdout.splitlines())}
    refused = results["services/products_20240105.csv"]
    assert refused["status"] == "refused"
    assert refused["reason"].startswith("services/products_20240105.csv: ") and problem in refused["reason"]
    assert results["billing/invoice_lines_20240201.csv"]["status"] == "loaded"

    con = open_vault(settings_of(tmp_path / "home"), read_only=True)
    assert con.execute("select count(*) from raw_services.products").fetchone()[0] == 0
    assert con.execute("select count(*) from ingest.rejects").fetchone()[0] == 0
    assert con.execute("select status from ingest.files where source_file like 'services/%'").fetchall() == \
        [("refused",)]
    con.close()


def test_jsonl_lines_that_are_not_objects_or_carry_bad_values_are_rejected(vault, tmp_path):
    inbox = tmp_path / "inbox"
    good = {"ticket_id": "T1", "customer_id": "C0000001", "opened_at": "2024-01-05T07:05:09+02:00",
            "closed_at": None, "channel": "email", "subject": "Katko",
            "messages": [{"sent_at": "2024-01-05T07:05:09+02:00", "direction": "in", "body": 'a;b "c"'}],
            "updated_at": "2024-01-05T07:05:09+02:00"}
    write(inbox / "crm/tickets_20240105.jsonl", "\n".join([
        json.dumps(good), "{not json", json.dumps({**good, "ticket_id": "T2", "opened_at": "eilen"})]) + "\n")
    result = ingest(vault, inbox)["crm/tickets_20240105.jsonl"]
    assert (result.rows_loaded, result.rows_rejected) == (1, 2)
    body = vault.execute("select messages->>'$[0].body', _line from raw_crm.tickets").fetchone()
    assert body == ('a;b "c"', 1)
    assert vault.execute("select line, column_name, error_type from ingest.rejects order by line").fetchall() == [
        (2, None, "INVALID JSON"), (3, "opened_at", "CAST")]


def test_another_companys_layout_is_mapped_by_configuration_alone(vault, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    spec = yaml.safe_load((config / "services/products.yml").read_text())
    spec.update(pattern="services/tuotteet_*.txt", encoding="iso-8859-15",
                export_date_pattern=r"_(\d{8})\.txt$")
    spec["columns"]["product_code"] = {"type": "varchar", "source": "tuotekoodi"}
    spec["dialect"] = {"delimiter": "|"}
    (config / "services/products.yml").write_text(yaml.safe_dump(spec))
    inbox = tmp_path / "inbox"
    write(inbox / "services/tuotteet_20240105.txt",
          "category|tuotekoodi|product_name|monthly_list_price|vat_rate|unused\n"
          "broadband|BB100|Kuitu 100 €|29,90|24|x\n", "iso-8859-15")
    results = load(vault, inbox, load_entities(config))
    assert [r.status for r in results] == ["loaded"]
    assert vault.execute("select product_code, product_name, category from raw_services.products").fetchall() == \
        [("BB100", "Kuitu 100 €", "broadband")]


def test_an_export_not_in_its_configured_encoding_is_refused_at_its_line_and_a_bad_name_at_config(vault, tmp_path):
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    spec_path = config / "services/products.yml"
    spec = yaml.safe_load(spec_path.read_text())
    spec_path.write_text(yaml.safe_dump({**spec, "encoding": "cp1252"}))
    inbox = tmp_path / "inbox"
    path = write(inbox / "services/products_20240105.csv", PRODUCTS_HEADER + "\nBB100;Kuitu;broadband;29,90;24\n")
    path.write_bytes(path.read_bytes() + b"CO1;R\x81kki;colocation;1,00;24\n")  # 0x81: no character in cp1252
    [result] = load(vault, inbox, load_entities(config))
    assert result.status == "refused" and "line 3: bytes that are not valid cp1252" in result.reason
    assert vault.execute("select count(*) from raw_services.products").fetchone()[0] == 0

    spec_path.write_text(yaml.safe_dump({**spec, "encoding": "latin-99"}))
    with pytest.raises(ConfigError, match=r"products\.yml: unknown encoding 'latin-99'"):
        load_entities(config)


def test_a_killed_ingest_leaves_no_partial_file_and_the_next_run_completes_it(tmp_path):
    """Killed (SIGKILL, at the kill point before its commit) while loading the second file of the inbox."""
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    write(inbox / "billing/collection_cases_20240201.csv",  # loads first
          "case_id;customer_id;invoice_id;agency_name;agency_country;handed_over_on;amount;status;closed_on;"
          "updated_at\nK1;C1;I1;Perintä Oy;FI;1.2.2024;10,00;open;;1.2.2024 8:00:00\n", "iso-8859-15")
    write(inbox / "billing/invoice_lines_20240201.csv",
          [INVOICE_LINES_HEADER, *(invoice_line(n) for n in range(2000))])
    command = [sys.executable, "-m", "warehouse.cli", "--home", str(home), "ingest", "--inbox", str(inbox), "--json"]
    killed = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "WAREHOUSE_CRASH_AT": "ingest.before_commit@2"})
    assert killed.returncode == -signal.SIGKILL
    assert [json.loads(line)["status"] for line in killed.stdout.splitlines()] == ["loaded"]

    con = open_vault(settings_of(home), read_only=True)
    assert con.execute("select count(*) from raw_billing.invoice_lines").fetchone()[0] == 0  # none of the file
    assert con.execute("select count(*) from ingest.files").fetchone()[0] == 1
    con.close()
    scratch = home / "tmp" / "scratch"  # the killed run's clear-text UTF-8 copy of the ISO-8859-15 export
    assert [p.name for p in scratch.rglob("*") if p.is_file()] == ["utf8"]
    rerun = subprocess.run(command, capture_output=True, text=True, check=True)
    assert list(scratch.iterdir()) == []  # the next run removed it
    statuses = {r["source_file"]: r["status"] for r in map(json.loads, rerun.stdout.splitlines())}
    assert statuses == {"billing/collection_cases_20240201.csv": "unchanged",
                        "billing/invoice_lines_20240201.csv": "loaded"}
    con = open_vault(settings_of(home), read_only=True)
    assert con.execute("select count(*), count(distinct _line) from raw_billing.invoice_lines").fetchone() == \
        (2000, 2000)
    con.close()


def test_a_row_rejected_from_a_later_snapshot_is_not_deleted_at_the_source(tmp_path):
    """Unreadable is not deleted: staging keeps the last readable version of a key its snapshot still lists."""
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    write(inbox / "services/products_20240105.csv",
          PRODUCTS_HEADER + "\nBB;Kuitu;broadband;29,90;24\nVPS;VPS;vps;10,00;24\nOLD;ADSL;broadband;9,90;24\n")
    write(inbox / "services/products_20240106.csv",
          PRODUCTS_HEADER + "\nBB;Kuitu;broadband;29,9O;24\nVPS;VPS;vps;10,00;24\n")  # BB unreadable, OLD gone
    outcome = cli(home, "run", "--inbox", str(inbox))
    assert "Published" in outcome.output, outcome.output
    con = open_vault(settings_of(home), read_only=True)
    rows = con.execute("""select product_code, is_deleted_at_source, deleted_at_source_on::varchar, monthly_list_price
                          from staging.stg_services__products order by product_code""").fetchall()
    con.close()
    assert [r[:3] for r in rows] == [("BB", False, None), ("OLD", True, "2024-01-06"), ("VPS", False, None)]
