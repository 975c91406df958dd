"""Time in operation: what a month and a year of daily exports cost the vault and the build.

    python benchmarks/bench_days.py --customers 10000 --days 30 --days 365 [--static] [--out benchmarks/results]

For one size, sample exports of the longest number of days (`warehouse generate --days N`, realistic daily
changes; `--static`: days 2..N repeat day 1's snapshots byte for byte) are delivered day by day into an inbox
the way the systems would drop them. At day 1 and at each `--days` checkpoint: the ingest of the days since
the last checkpoint, then a full build (`--full-refresh`: what a rebuild of that history costs), with the
vault's size on disk, the raw rows of the snapshot and delta entities and the build's time. Then the daily job
of one more day on the history of the last checkpoint (ingest + incremental build + check + audit, as
`warehouse run` does them) against the full run of the same history (full build + check + audit).

Targets (issue 19): a year of unchanged days costs the build at most 1.1x the first day's; with realistic
changes vault size and build time follow the changes, not the days; the daily job at most 0.1 of a full run.
Writes days-<date>-<size>[-static].json and .md into --out. Everything runs in this process through the
pipeline functions (warehouse/pipeline.py); nothing of a row is printed. Timings on a shared machine are upper
bounds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from core.settings import Settings, quieten_third_parties  # noqa: E402
from core.vault import open_vault  # noqa: E402
from warehouse import pipeline  # noqa: E402

SNAPSHOTS = ("raw_crm.customers", "raw_services.services", "raw_services.key_handovers", "raw_services.products")
DELTAS = ("raw_billing.invoices", "raw_billing.invoice_lines", "raw_billing.payments",
          "raw_billing.collection_cases", "raw_crm.tickets")
TARGETS = {"static_year_build_ratio_max": 1.1, "daily_ratio_max": 0.1}


def deliver(exports: Path, inbox: Path, days: list[date]) -> int:
    """Hard-link the exports of these days into the inbox; how many files."""
    stamps = {f"_{day:%Y%m%d}." for day in days}
    count = 0
    for path in exports.rglob("*_*.*"):
        if any(stamp in path.name for stamp in stamps):
            target = inbox / path.relative_to(exports)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            target.hardlink_to(path)
            count += 1
    return count


def raw_rows(settings: Settings) -> dict[str, int]:
    con = open_vault(settings, read_only=True)
    try:
        return {table: con.execute(f"select count(*) from {table}").fetchone()[0] for table in SNAPSHOTS + DELTAS}
    finally:
        con.close()


def timed(step, *args, **kwargs) -> tuple[float, object]:
    began = time.perf_counter()
    result = step(*args, **kwargs)
    return time.perf_counter() - began, result


def checkpoint(settings: Settings, day: int, ingest_s: float, files: int) -> dict:
    if day == 1:  # dbt's import and first parse belong to no day: a first build warms them up
        pipeline.build(settings, full_refresh=True)
    build_s, outcome = timed(pipeline.build, settings, full_refresh=True)
    if not outcome.published:
        raise SystemExit(f"the full build at day {day} failed: {outcome.alerts}")
    rows = raw_rows(settings)
    return {"day": day, "files_delivered": files, "ingest_s": round(ingest_s, 2), "full_build_s": round(build_s, 2),
            "vault_mib": round(settings.home.vault.stat().st_size / 2**20, 1),
            "snapshot_rows": sum(rows[t] for t in SNAPSHOTS), "delta_rows": sum(rows[t] for t in DELTAS),
            "raw_rows": rows}


def daily_vs_full(settings: Settings, exports: Path, inbox: Path, last: date) -> dict:
    """One more day's daily job against a full run of the same history (both after the same ingest)."""
    full = {"build_s": timed(pipeline.build, settings, full_refresh=True)[0],
            "check_s": timed(pipeline.check, settings)[0], "audit_s": timed(pipeline.audit, settings)[0]}
    files = deliver(exports, inbox, [last])
    daily = {"ingest_s": timed(pipeline.ingest, settings, inbox)[0],
             "build_s": timed(pipeline.build, settings)[0], "check_s": timed(pipeline.check, settings)[0],
             "audit_s": timed(pipeline.audit, settings)[0]}
    daily_total, full_total = sum(daily.values()), sum(full.values())
    return {"files": files, "daily": daily, "full": full, "daily_s": round(daily_total, 2),
            "full_s": round(full_total, 2), "ratio": round(daily_total / full_total, 3),
            "target": f"<= {TARGETS['daily_ratio_max']}", "met": daily_total / full_total <= TARGETS["daily_ratio_max"]}


def run(customers: int, checkpoints: list[int], static: bool, work: Path, seed: int) -> dict:
    quieten_third_parties()
    days = max(checkpoints) + 1  # one more day for the daily job
    end = date.today()
    exports, inbox = work / "exports", work / "inbox"
    began = time.perf_counter()
    pipeline.generate(exports, customers=customers, seed=seed, start=date(2019, 1, 1), end=end, days=days,
                      static_days=static, defect_rate=0.01)
    generate_s = time.perf_counter() - began
    settings = Settings.from_environment(home=work / "home")
    settings.home.create()
    first = end - timedelta(days=days - 1)
    results, delivered = [], 0
    for n in sorted({1, *checkpoints}):
        new_days = [first + timedelta(days=d) for d in range(delivered, n)]
        files = deliver(exports, inbox, new_days)
        ingest_s, outcome = timed(pipeline.ingest, settings, inbox)
        if outcome.refused:
            raise SystemExit(f"{len(outcome.refused)} file(s) refused by the ingest at day {n}")
        results.append(checkpoint(settings, n, ingest_s, files))
        delivered = n
        print(json.dumps(results[-1] | {"raw_rows": None}), flush=True)
    daily = daily_vs_full(settings, exports, inbox, first + timedelta(days=days - 1))
    base, last = results[0], results[-1]
    return {"customers": customers, "static": static, "generate_s": round(generate_s, 1),
            "export_bytes": sum(p.stat().st_size for p in exports.rglob("*") if p.is_file()),
            "checkpoints": results, "daily_vs_full": daily,
            "build_ratio_last_to_first": round(last["full_build_s"] / base["full_build_s"], 3),
            "snapshot_rows_ratio_last_to_first": round(last["snapshot_rows"] / base["snapshot_rows"], 3)}


def markdown(result: dict) -> str:
    kind = "unchanged days (--static-days)" if result["static"] else "realistic daily changes"
    lines = [f"# Days in operation: {result['customers']:,} customers, {kind}", "",
             f"Generated in {result['generate_s']} s ({result['export_bytes'] / 2**20:,.0f} MiB of exports).", "",
             "| day | files | ingest s | full build s | vault MiB | snapshot rows | delta rows |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for c in result["checkpoints"]:
        lines.append(f"| {c['day']} | {c['files_delivered']:,} | {c['ingest_s']} | {c['full_build_s']} | "
                     f"{c['vault_mib']:,} | {c['snapshot_rows']:,} | {c['delta_rows']:,} |")
    d = result["daily_vs_full"]
    lines += ["", f"Full build at the last checkpoint against day 1: **{result['build_ratio_last_to_first']}x**"
              + (f" (target ≤ {TARGETS['static_year_build_ratio_max']}x for unchanged days)" if result["static"]
                 else ""),
              f"Snapshot rows at the last checkpoint against day 1: {result['snapshot_rows_ratio_last_to_first']}x.",
              "", f"Daily job of one more day: {d['daily_s']} s (ingest {d['daily']['ingest_s']:.1f}, build "
              f"{d['daily']['build_s']:.1f}, check {d['daily']['check_s']:.1f}, audit {d['daily']['audit_s']:.1f}) "
              f"against a full run of the same history {d['full_s']} s (build {d['full']['build_s']:.1f}, check "
              f"{d['full']['check_s']:.1f}, audit {d['full']['audit_s']:.1f}): **{d['ratio']}** "
              f"(target {d['target']}: {'met' if d['met'] else 'missed'})."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, action="append", required=True, help="a checkpoint; repeat for more")
    parser.add_argument("--static", action="store_true", help="days 2..N repeat day 1's snapshots byte for byte")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="folder for the home and exports [default: a new one in /tmp]")
    parser.add_argument("--keep", action="store_true", help="keep the home and exports")
    args = parser.parse_args()
    work = (args.work or Path(tempfile.mkdtemp(prefix="bench-days-"))).resolve()
    try:
        result = run(args.customers, sorted(set(args.days)), args.static, work, args.seed)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["date"] = date.today().isoformat()
    stem = f"days-{result['date']}-{args.customers}{'-static' if args.static else ''}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (args.out / f"{stem}.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
