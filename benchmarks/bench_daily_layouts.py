"""What one day's changes cost a large customer-partitioned table under three layouts, in DuckDB alone.

    python benchmarks/bench_daily_layouts.py [--customers 100000] [--rows-per-customer 96] [--changed 0.1]
        [--memory-limit 2.5GB] [--threads 2] [--work DIR]

The incremental models recompute the rows of the day's changed customers (about 10 % of them: every customer
with an invoice issued, paid or falling due) and must replace their old rows. A table like
privacy.retention_status (customers x records, each customer's rows scattered over the table as a full build
writes them) takes one day's rows three ways, each on its own copy of the same database file:
- copy (forget_changes over its delete budget, the daily build at a million today): the kept rows into a new
  table, then the day's rows;
- delete (forget_changes within its budget): delete the changed customers' rows, insert the day's; then,
  reopened under --small-limit, a plain scan, as every later read of the table: DuckDB 1.5 pins 16 KiB of
  delete markers per 2,048-row vector the delete touched, and they stay in the file;
- versions (append-only; not built in the models yet): append the day's rows under a new build number and
  rewrite the small customer -> current build map; readers see the current rows through a view (the rows semi
  joined to the map). Also timed: a full read through that view against one of the plain table, and the
  compaction (a copy of the current rows) the layout needs once superseded rows pile up.
The day's rows are computed before the clock starts: recomputing them costs every layout the same.
Prints seconds per step and each layout's peak RSS (its own process).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from core.db import connect
from core.settings import Limits

LAYOUTS = ("copy", "delete", "versions")
READ = "select count(*), count(distinct customer_id), max(expires_on) from {table}"
# a later reader's scan: light enough for a small memory limit, unless the table's delete markers are pinned
SCAN = "select count(*), max(expires_on) from {table}"
# what every layout must end the day with: the same current rows
DIGEST = "select count(*), sum(hash(customer_id, record_id, record_key, record_type, expires_on)) from {table}"


def build_base(path: Path, customers: int, rows_per_customer: int, changed: float) -> None:
    """records (row i belongs to customer i % customers: scattered, as a build's unions write them), the
    changed customers, and their recomputed rows (every old row with a later expiry, and one new record)."""
    con = connect(path)
    try:
        con.execute(f"""
            create table records as
            select
                'C' || (i % {customers}) as customer_id,
                'R' || i as record_id,
                md5(cast(i as varchar)) as record_key,
                ['invoice', 'invoice_line', 'payment', 'service', 'ticket'][1 + i % 5] as record_type,
                date '2020-01-01' + cast(i % 3000 as integer) as expires_on,
                0 as build
            from range({customers * rows_per_customer}) as t(i);
            create table changed as
            select distinct customer_id from records where hash(customer_id) % 1000 < {int(changed * 1000)};
            create table day_rows as
            select * replace (expires_on + 1 as expires_on, 1 as build)
            from records semi join changed using (customer_id)
            union all
            select customer_id, 'N' || customer_id, md5('N' || customer_id), 'invoice', date '2030-01-01', 1
            from changed;
            create table current_builds as select distinct customer_id, 0 as build from records;
        """)
    finally:
        con.close()


def timed(con, sql: str) -> float:
    started = time.perf_counter()
    con.execute(sql)
    return time.perf_counter() - started


def run_layout(layout: str, path: Path, memory_limit: str, threads: int, small_limit: str) -> dict:
    """One layout's day on its own copy of the base (this process: its peak RSS is the layout's)."""
    steps: dict[str, float | str] = {}
    con = connect(path, limits=Limits(threads, memory_limit))
    try:
        if layout == "copy":
            steps["copy kept rows"] = timed(con, """
                create table kept as select * from records anti join changed using (customer_id)""")
            steps["insert day"] = timed(con, "insert into kept select * from day_rows")
            steps["replace"] = timed(con, "drop table records; alter table kept rename to records")
        elif layout == "delete":
            steps["delete"] = timed(con, "delete from records where customer_id in (select customer_id from changed)")
            steps["insert day"] = timed(con, "insert into records select * from day_rows")
        else:
            steps["append day"] = timed(con, "insert into records select * from day_rows")
            steps["rewrite map"] = timed(con, """
                create or replace table current_builds as
                select * from current_builds anti join changed using (customer_id)
                union all
                select customer_id, 1 from changed""")
            con.execute("""create view current_records as
                           select records.* from records semi join current_builds using (customer_id, build)""")
        steps["checkpoint"] = timed(con, "checkpoint")
        steps["the day, in all"] = sum(steps.values())
        table = "current_records" if layout == "versions" else "records"
        steps["read"] = timed(con, READ.format(table=table))
        digest = str(con.execute(DIGEST.format(table=table)).fetchone())
        if layout == "versions":
            steps["read plain table"] = timed(con, READ.format(table="records"))
            steps["compact"] = timed(con, """
                create table compacted as select * from current_records;
                drop view current_records; drop table records; alter table compacted rename to records""")
    finally:
        con.close()
    # a later reader under a small limit: what the layout leaves in the file for every read
    con = connect(path, limits=Limits(threads, small_limit), read_only=True)
    try:
        steps[f"reopened scan at {small_limit}"] = timed(con, SCAN.format(table="records"))
    except duckdb.Error as exc:  # running out of memory is the finding: say so, and go on
        steps[f"reopened scan at {small_limit}"] = f"failed: {type(exc).__name__}"
    finally:
        con.close()
    return {"layout": layout, "steps": steps, "digest": digest,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rows-per-customer", type=int, default=96)
    parser.add_argument("--changed", type=float, default=0.1, help="share of customers the day changes")
    parser.add_argument("--memory-limit", default="2.5GB")
    parser.add_argument("--small-limit", default="100MB", help="memory limit of the reader after the day")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, help="folder for the database files (default: a temp folder)")
    parser.add_argument("--layout", choices=LAYOUTS, help=argparse.SUPPRESS)  # a child process's one layout
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.layout:
        print(json.dumps(run_layout(args.layout, args.db, args.memory_limit, args.threads, args.small_limit)))
        return
    work = Path(tempfile.mkdtemp(prefix="layouts-", dir=args.work))
    try:
        base = work / "base.duckdb"
        started = time.perf_counter()
        build_base(base, args.customers, args.rows_per_customer, args.changed)
        console = Console()
        console.print(f"{args.customers:,} customers x {args.rows_per_customer} rows, {args.changed:.0%} changed: "
                      f"base built in {time.perf_counter() - started:.1f} s")
        table = Table("layout", "step", "s", "peak RSS MiB")
        digests = set()
        for layout in LAYOUTS:
            copy = work / f"{layout}.duckdb"
            shutil.copyfile(base, copy)
            child = subprocess.run(
                [sys.executable, __file__, "--layout", layout, "--db", str(copy), "--memory-limit",
                 args.memory_limit, "--threads", str(args.threads), "--small-limit", args.small_limit],
                capture_output=True, text=True, check=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            for i, (step, value) in enumerate(result["steps"].items()):
                shown = f"{value:.1f}" if isinstance(value, float) else value
                table.add_row(layout if i == 0 else "", step, shown,
                              f"{result['peak_rss_mib']:,.0f}" if i == 0 else "")
            copy.unlink()
            digests.add(result["digest"])
        console.print(table)
        if len(digests) != 1:
            sys.exit(f"the layouts ended the day with different rows: {sorted(digests)}")
        console.print("Every layout ended the day with the same current rows.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
