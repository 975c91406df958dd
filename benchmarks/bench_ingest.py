"""Ingest throughput against the physical limit: plain DuckDB `read_csv` of the same file into a typed table.

    python benchmarks/bench_ingest.py [--lines 1000000] [--repeat 3]

Writes an invoice-lines export of `--lines` rows (the largest entity) twice, in ISO-8859-15 as the billing
system sends it and in UTF-8, then times on fresh databases, best of `--repeat`:
- the warehouse's ingest (hash + line count, transcoding, typed read, lineage, rejects, accounting, one
  transaction) of each;
- `create table as select * from read_csv(...)` with the same types and dialect: for the ISO-8859-15 file
  through duckdb-extension-encodings (plain DuckDB's only way to read it), for the UTF-8 file directly.
Prints rows per second and the ratios plain / ingest (target at least 0.8).
"""

from __future__ import annotations

import argparse
import codecs
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import duckdb_extension_encodings

from core.db import connect, extension_file
from core.settings import Settings
from core.vault import open_vault
from ingest.config import Entity, load_entities
from ingest.load import ingest_inbox, scan_file

ENTITY = next(e for e in load_entities() if e.entity == "invoice_lines")
DUCKDB_ENCODING = {"iso8859-15": "ISO_8859_15", "utf-8": "utf-8"}  # by codecs.lookup(...).name


def write_invoice_lines(path: Path, utf8: Path, lines: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    utf8.parent.mkdir(parents=True, exist_ok=True)
    con = connect()
    con.execute(f"""
        copy (
            select 'I' || lpad((i // 3)::varchar, 9, '0') as invoice_id, i % 3 + 1 as line_no,
                'S' || lpad((i % 977777)::varchar, 8, '0') as service_id,
                ['Kuitu 100 M / kk', 'Räkkipaikka ESP1 / kk', 'Asennusmaksu 50 € (kertaluonteinen)'][i % 3 + 1]
                    as description,
                strftime(date '2019-01-01' + (i % 2800)::int, '%-d.%-m.%Y') as period_start,
                strftime(date '2019-01-31' + (i % 2800)::int, '%-d.%-m.%Y') as period_end,
                '1' as quantity,
                replace(((i % 50000) / 100)::decimal(12, 2)::varchar, '.', ',') as unit_price,
                replace(((i % 50000) / 100)::decimal(12, 2)::varchar, '.', ',') as amount_excl_vat,
                case when i % 2 = 0 then '24' else '25,5' end as vat_rate,
                strftime(timestamp '2019-01-01 06:00:00' + to_seconds(i * 17), '%-d.%-m.%Y %-H:%M:%S')
                    as updated_at
            from range({lines}) as t(i)
        ) to '{utf8}' (delimiter ';', header)""")
    con.close()
    with utf8.open(encoding="utf-8") as source, path.open("w", encoding="iso-8859-15", newline="") as target:
        while chunk := source.read(8 << 20):
            target.write(chunk)


def time_ingest(inbox: Path, entity: Entity, work: Path) -> float:
    settings = Settings.from_environment(home=work)
    settings.home.vault.unlink(missing_ok=True)
    con = open_vault(settings)
    start = time.perf_counter()
    results = ingest_inbox(con, inbox, [entity], scratch=settings.home.scratch, erasure=[])
    elapsed = time.perf_counter() - start
    con.close()
    assert [r.status for r in results] == ["loaded"], results
    return elapsed


def plain_select(path: Path, entity: Entity, *, ignore_errors: bool = False) -> str:
    """Plain DuckDB: `select *` from `read_csv` (or `read_json` for JSONL) with the entity's types and dialect.

    No lineage, rejects, accounting or transaction of our own; a file in another encoding is read through
    duckdb-extension-encodings (load it on the connection first). `ignore_errors` skips rows the reader cannot
    parse, which a generated inbox carries on purpose (the warehouse keeps them as rejects).
    """
    columns = "{" + ", ".join(f"'{entity.source_names[c]}': '{t}'" for c, t in entity.columns.items()) + "}"
    quoted = str(path).replace("'", "''")
    skip = ", ignore_errors=true" if ignore_errors else ""
    if entity.format == "jsonl":
        return f"select * from read_json('{quoted}', format='newline_delimited', columns={columns}{skip})"
    d = entity.dialect
    encoding = DUCKDB_ENCODING[codecs.lookup(entity.encoding).name]
    return f"""select * from read_csv('{quoted}', columns={columns}, header=true,
            delim='{d.delimiter}', quote='{d.quote}', escape='{d.escape}', decimal_separator='{d.decimal_separator}',
            dateformat='{d.date_format}', timestampformat='{d.timestamp_format}',
            encoding='{encoding}', auto_detect=false{skip})"""


def plain_connection(database: Path) -> duckdb.DuckDBPyConnection:
    """A fresh, unencrypted DuckDB file with the warehouse's threads and memory limit, able to read ISO-8859-15."""
    database.unlink(missing_ok=True)
    con = connect(database)
    con.execute(f"load '{extension_file(duckdb_extension_encodings)}'")
    return con


def time_plain(path: Path, encoding: str, work: Path) -> float:
    con = plain_connection(work / "plain.duckdb")
    start = time.perf_counter()
    con.execute(f"create table invoice_lines as {plain_select(path, replace(ENTITY, encoding=encoding))}")
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    name = "billing/invoice_lines_20261120.csv"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        latin, utf8 = work / "latin9" / name, work / "utf8" / name
        write_invoice_lines(latin, utf8, args.lines)
        start = time.perf_counter()
        scan_file(latin)
        scan = time.perf_counter() - start
        runs = {
            "iso-8859-15": (latin, ENTITY, work / "latin9"),
            "utf-8": (utf8, replace(ENTITY, encoding="utf-8"), work / "utf8"),
        }
        figures = {}
        for encoding, (path, entity, inbox) in runs.items():
            plain, ours = [], []
            for _ in range(args.repeat):  # alternate, so neither side always gets the warm cache
                plain.append(time_plain(path, encoding, work))
                ours.append(time_ingest(inbox, entity, work))
            figures[encoding] = (min(plain), min(ours), path.stat().st_size / 1e6)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"duckdb {duckdb.__version__}")
    print(f"file: {args.lines:,} invoice lines; hash + line count of the ISO-8859-15 file: {scan:.2f} s")
    for encoding, (plain, ours, size_mb) in figures.items():
        print(f"{encoding:>11} ({size_mb:.0f} MB): plain read_csv {plain:6.2f} s {args.lines / plain:11,.0f} rows/s"
              f" | warehouse ingest {ours:6.2f} s {args.lines / ours:11,.0f} rows/s"
              f" | ratio {plain / ours:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
