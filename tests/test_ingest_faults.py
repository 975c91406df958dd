"""The ingest under faults (issue 16): unreadable files, schema drift, unrecognised files, decimals that would
round, symlinks out of the inbox, and rejected lines of erased records."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from exports import header, write

from ingest import load
from ingest.config import load_entities
from ingest.load import ingest_inbox
from warehouse.cli import main
from warehouse.db import connect
from warehouse.vault import open_vault

ENTITIES = load_entities()
PRODUCTS_HEADER, INVOICE_LINES_HEADER = header("products"), header("invoice_lines")


def invoice_line(n: int, price: str = "29,90") -> str:
    return (f"I{n // 2:08d};{n % 2 + 1};S{n:08d};Kuitu 100 M;1.1.2024;31.1.2024;1;{price};29,90;24;"
            "1.2.2024 8:00:00")


@pytest.fixture
def vault(tmp_path):
    con = connect(tmp_path / "vault.duckdb")
    yield con
    con.close()


def ingest(con, inbox: Path, entities=None, **options):
    return {r.source_file: r for r in ingest_inbox(con, inbox, entities or ENTITIES, **options)}


def cli_ingest(home: Path, inbox: Path):
    outcome = CliRunner().invoke(main, ["--home", str(home), "ingest", "--inbox", str(inbox), "--json"])
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
    assert outcome.exit_code == 1
    refused = results["billing/invoice_lines_20240201.csv"]
    assert refused["status"] == "refused"
    assert refused["reason"] == ("billing/invoice_lines_20240201.csv: line 1: the header is longer than 1 MiB: "
                                 "not a header of this export")
    assert results["services/products_20240105.csv"]["status"] == "loaded"
    assert "Refused" in outcome.output and "billing/invoice_lines_20240201.csv" in outcome.output

    def state():
        con = open_vault(home / "vault.duckdb", read_only=True)
        try:
            return (con.execute("select load_id, source_file, status, reason from ingest.files order by 1").fetchall(),
                    con.execute("select count(*) from raw_services.products").fetchone()[0])
        finally:
            con.close()

    before = state()
    assert [(f, s) for _, f, s, _ in before[0]] == [("billing/invoice_lines_20240201.csv", "refused"),
                                                     ("services/products_20240105.csv", "loaded")]
    again, results = cli_ingest(home, inbox)  # a re-run: the same answer, nothing written
    assert again.exit_code == 1
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

    results = {f: (r.status, r.reason) for f, r in ingest(vault, inbox).items()}
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
