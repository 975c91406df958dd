"""`warehouse check` (run_checks: GX on DuckDB) against the same checks written as plain DuckDB SQL.

    python benchmarks/bench_check.py [--customers 100000] [--home DIR]

Generates sample exports and runs the daily job on them (`warehouse generate` and `warehouse run`, in child
processes so their memory does not count), unless `--home` already holds a built vault. Then times, in this process:
- plain SQL: every check of every suite as one unexpected-rows query run directly on the vault's staging views
  (or the analytics marts), `count(*)` plus a few example keys;
- run_checks: the same suites through Great Expectations (snapshot, two queries per check, pseudonymised keys,
  history into a scratch database so the vault is only read).
Prints both times, the ratio run_checks / plain (target at most 1.5) and the peak RSS after each.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from core.db import connect
from core.keys import read_key
from core.settings import Settings
from core.vault import open_vault
from expectations import gx_duckdb  # noqa: F401  imported before timing: GX's import is not part of a check
from expectations.run import EXAMPLES, MACROS, Check, Suite, load_suites, run_checks


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def unexpected_rows(suite: Suite, check: Check) -> str:
    """The check as one query returning `record_key` per unexpected row (GX's built-ins written out)."""
    if check.query:
        return check.query.replace("{batch}", suite.table)
    key = " || '/' || ".join(f"cast({k} as varchar)" for k in suite.key)
    kw, t = check.kwargs, suite.table
    if check.expect == "expect_column_values_to_be_unique":
        c = kw["column"]
        where = f"{c} in (select {c} from {t} group by {c} having count(*) > 1)"
    elif check.expect == "expect_compound_columns_to_be_unique":
        cols = ", ".join(kw["column_list"])
        where = f"({cols}) in (select ({cols}) from {t} group by {cols} having count(*) > 1)"
    elif check.expect == "expect_column_values_to_be_in_set":
        values = ", ".join(f"'{v}'" for v in kw["value_set"])
        where = f"{kw['column']} is not null and {kw['column']} not in ({values})"
    elif check.expect == "expect_column_values_to_not_be_null":
        where = f"{kw['column']} is null"
    else:
        raise ValueError(f"no plain SQL for {check.expect}: add it here")
    return f"select {key} as record_key from {t} where {where}"


def run_plain(settings: Settings, suites: list[Suite]) -> dict[tuple[str, str], int]:
    """Every check straight on the vault's views (vault suites) or the analytics marts (mart suites)."""
    counts = {}
    vault = open_vault(settings, read_only=True)
    analytics = connect(settings.home.analytics, read_only=True, limits=settings.limits)
    vault.execute(MACROS)
    for suite in suites:
        con = analytics if suite.database == "analytics" else vault
        for check in suite.checks:
            query = unexpected_rows(suite, check)
            counts[suite.name, check.name] = con.execute(f"select count(*) from ({query})").fetchone()[0]
            con.execute(f"select record_key from ({query}) limit {EXAMPLES}").fetchall()
    vault.close()
    analytics.close()
    return counts


def make_sample(home, customers: int, seed: int, start: date, end: date) -> None:
    cli = [sys.executable, "-m", "warehouse.cli", "--home", str(home.root)]
    inbox = str(home.root / "inbox")
    began = time.perf_counter()
    subprocess.run([*cli, "generate", "--out", inbox, "--customers", str(customers), "--seed", str(seed),
                    "--start", start.isoformat(), "--end", end.isoformat(), "--defect-rate", "0.01"],
                   stdout=subprocess.DEVNULL, check=True)
    print(f"generated {customers:,} customers in {time.perf_counter() - began:.0f} s", flush=True)
    began = time.perf_counter()
    # The daily job exits 1 on the sample's defects and overdue records: judge by the files it leaves.
    subprocess.run([*cli, "run", "--inbox", inbox], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    if not (home.vault.exists() and home.analytics.exists()):
        sys.exit(f"the daily job did not build {home.vault} and {home.analytics}")
    print(f"ingested and built in {time.perf_counter() - began:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2019, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date.today())
    parser.add_argument("--home", type=Path, help="a built home to reuse (made here when it has no vault)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        settings = Settings.from_environment(home=(args.home or Path(tmp) / "home").resolve())
        home = settings.home
        if not home.vault.exists():
            home.create()
            make_sample(home, args.customers, args.seed, args.start, args.end)
        suites = load_suites()
        checks = sum(len(s.checks) for s in suites)
        rss_before = peak_mib()

        began = time.perf_counter()
        plain = run_plain(settings, suites)
        plain_s = time.perf_counter() - began
        rss_plain = peak_mib()

        began = time.perf_counter()
        run = run_checks(settings, read_key(home.pseudonym_key), None, history_db=Path(tmp) / "history.duckdb",
                         suites=suites)
        gx_s = time.perf_counter() - began
        rss_gx = peak_mib()

    # Both ways must find the same rows, or the comparison means nothing.
    differ = [(r.suite, r.expectation, r.unexpected_count, plain[r.suite, r.expectation]) for r in run.results
              if not r.raised and r.unexpected_count != plain[r.suite, r.expectation]]
    con = open_vault(settings, read_only=True) if args.home else None
    rows = con.execute("select count(*) from staging.stg_billing__invoice_lines").fetchone()[0] if con else None
    if con:
        con.close()
    print()
    print(f"customers          {args.customers if not args.home else 'as built':>12}"
          + (f"  ({rows:,} invoice lines)" if rows else ""))
    print(f"checks             {checks:>12}  ({len(suites)} suites; {run.errors} errors, {run.warnings} warnings, "
          f"{sum(r.raised for r in run.results)} could not run, {run.summary()['skipped']} skipped)")
    print(f"plain DuckDB SQL   {plain_s:>12.2f} s   peak RSS {rss_plain:>8,.0f} MiB")
    print(f"run_checks (GX)    {gx_s:>12.2f} s   peak RSS {rss_gx:>8,.0f} MiB   (before both: {rss_before:,.0f} MiB)")
    print(f"ratio GX / plain   {gx_s / plain_s:>12.2f}     (target at most 1.5)")
    if differ:
        print(f"counts differ (suite, check, GX, plain): {differ}")


if __name__ == "__main__":
    main()
