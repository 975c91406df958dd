"""One stage of the benchmark in this process, so its peak resident memory is its own.

    python -m benchmarks.stage STAGE --home DIR --inbox DIR --result FILE [--customers N ...]

benchmarks/run.py starts one of these per stage. The stage runs in-process, calling the pipeline function the
`warehouse` command would call (warehouse/pipeline.py), or for the plain-DuckDB comparisons as
benchmarks/bench_ingest.py and bench_check.py do it. Then, outside the timed part and after the peak RSS is
read, the rows the stage processed are counted from the inbox, the vault or the analytics database, and a
JSON object is written to `--result`. Counts only: nothing of a row leaves this process.

Threads and memory limit come from WAREHOUSE_THREADS / WAREHOUSE_MEMORY_LIMIT, turned into settings as the
command line turns them (core/settings.py).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

STAGES = ("generate", "ingest", "ingest-plain", "build", "check", "check-plain", "audit", "report",
          "daily-ingest", "daily-build", "daily-check", "daily-audit")
# Exit codes of a stage that did its work: 0, or 1 (findings: the sample's injected defects and overdue
# records). A build whose sources are stale did its work too: the stage says so by publishing (stage_build).
DONE = (0, 1)


def _settings(args: argparse.Namespace):
    from core.settings import Settings, quieten_third_parties

    quieten_third_parties()
    settings = Settings.from_environment(home=args.home)
    settings.home.create()
    return settings


# --- the stages: each returns an exit code -----------------------------------------------------------------
def _exports(args: argparse.Namespace) -> Path:
    """All the generated exports; the inbox gets the earlier days first, the last day in the daily stages."""
    return args.inbox.parent / "exports"


def _last_day(args: argparse.Namespace) -> str:
    manifest = json.loads((_exports(args) / "manifest.json").read_text(encoding="utf-8"))
    return manifest["export_dates"][-1]


def _deliver(args: argparse.Namespace, *, last_day: bool) -> None:
    """Link the exports of the days before the last (or of the last day) into the inbox, as the systems would."""
    stamp = _last_day(args).replace("-", "")
    for path in _exports(args).rglob("*_*.*"):
        if (stamp in path.name) == last_day:
            target = args.inbox / path.relative_to(_exports(args))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            target.hardlink_to(path)


def stage_generate(args: argparse.Namespace) -> int:
    from datetime import date

    from warehouse import pipeline

    pipeline.generate(_exports(args), customers=args.customers, seed=args.seed, start=date.fromisoformat(args.start),
                      end=date.fromisoformat(args.end), days=3, defect_rate=0.01)
    _deliver(args, last_day=False)
    return 0


def stage_ingest(args: argparse.Namespace) -> int:
    from warehouse import pipeline

    return int(pipeline.ingest(_settings(args), args.inbox).status)


def stage_daily_ingest(args: argparse.Namespace) -> int:
    """The next day: the last export day's files arrive and are ingested."""
    _deliver(args, last_day=True)
    return stage_ingest(args)


def stage_ingest_plain(args: argparse.Namespace) -> int:
    """Every file of the inbox into typed tables with plain `read_csv` / `read_json`, one table per entity."""
    from benchmarks.bench_ingest import plain_connection, plain_select
    from ingest.config import load_entities
    from ingest.load import find_files

    con = plain_connection(_plain_db(args))
    try:
        created: set[str] = set()
        for entity, path in find_files(args.inbox, load_entities()):
            table = f"{entity.system}_{entity.entity}"
            verb = f"insert into {table}" if table in created else f"create table {table} as"
            con.execute(f"{verb} {plain_select(path, entity, ignore_errors=True)}")
            created.add(table)
    finally:
        con.close()
    return 0


def stage_build(args: argparse.Namespace) -> int:
    """`warehouse build`: done when it published (a stale source is the sample's age, not a failed stage)."""
    from warehouse import pipeline

    return 0 if pipeline.build(_settings(args)).published else 2


def stage_check(args: argparse.Namespace) -> int:
    from warehouse import pipeline

    return 1 if pipeline.check(_settings(args)).has_errors else 0


def stage_check_plain(args: argparse.Namespace) -> int:
    from benchmarks.bench_check import run_plain
    from expectations.run import load_suites

    run_plain(_settings(args), load_suites())
    return 0


def stage_audit(args: argparse.Namespace) -> int:
    from warehouse import pipeline

    return 1 if pipeline.audit(_settings(args)).overdue_count else 0


def stage_report(args: argparse.Namespace) -> int:
    from warehouse import pipeline

    pipeline.report(_settings(args), langs=("en",), pdf=not args.no_pdf)
    return 0


# --- rows each stage processed, counted afterwards -----------------------------------------------------------
def _plain_db(args: argparse.Namespace) -> Path:
    return args.home.parent / "plain-ingest.duckdb"


def _vault(args: argparse.Namespace):
    from core.vault import open_vault

    return open_vault(_settings(args), read_only=True)


def _analytics(args: argparse.Namespace):
    from core.db import connect

    settings = _settings(args)
    return connect(settings.home.analytics, read_only=True, limits=settings.limits)


def _table_rows(con, where: str) -> dict[str, int]:
    """Exact row counts of the base tables matching `where` (on information_schema.tables)."""
    names = con.execute(f"""select table_schema || '.' || table_name from information_schema.tables
                            where table_type = 'BASE TABLE' and {where} order by 1""").fetchall()
    return {name: con.execute(f"select count(*) from {name}").fetchone()[0] for (name,) in names}


def rows_generate(args: argparse.Namespace) -> tuple[int, dict]:
    manifest = json.loads((_exports(args) / "manifest.json").read_text(encoding="utf-8"))
    return sum(f["rows"] for f in manifest["files"]), {"files": len(manifest["files"]),
                                                        "defects": len(manifest["defects"])}


def rows_ingest(args: argparse.Namespace, day: str | None = None) -> tuple[int, dict]:
    """The files of the inbox loaded so far, or of one export day."""
    con = _vault(args)
    try:
        files, read, loaded, rejected, refused = con.execute("""
            select count(*) filter (where status = 'loaded'), coalesce(sum(rows_read), 0),
                   coalesce(sum(rows_loaded), 0), coalesce(sum(rows_rejected), 0),
                   count(*) filter (where status = 'refused')
            from ingest.files where ? is null or export_date = cast(? as date)""", [day, day]).fetchone()
    finally:
        con.close()
    return int(read), {"files": files, "rows_loaded": int(loaded), "rows_rejected": int(rejected),
                       "files_refused": refused}


def rows_ingest_plain(args: argparse.Namespace) -> tuple[int, dict]:
    from core.db import connect

    path = _plain_db(args)
    con = connect(path, read_only=True)
    try:
        tables = _table_rows(con, "true")
    finally:
        con.close()
    path.unlink()  # a copy of the exports: personal data, and disk
    return sum(tables.values()), {"tables": len(tables)}


def rows_build(args: argparse.Namespace) -> tuple[int, dict]:
    con = _analytics(args)
    try:
        tables = _table_rows(con, "table_schema in ('core', 'churn', 'privacy')")
    finally:
        con.close()
    vault = _vault(args)
    try:  # what the incremental models recomputed (null: all of it)
        recomputed = dict(vault.execute("select model, recomputed_keys from intermediate.incremental_state"
                                        " order by model").fetchall())
    finally:
        vault.close()
    return sum(tables.values()), {"mart_tables": len(tables), "largest": dict(sorted(
        tables.items(), key=lambda kv: -kv[1])[:5]), "recomputed_keys": recomputed}


def checked_tables() -> dict[str, str]:
    """schema.table -> database ('vault' or 'analytics') of every table the quality suites read."""
    from expectations.run import SCHEMAS, load_suites

    tables = {}
    for suite in load_suites():
        tables[suite.table] = suite.database
        for check in suite.checks:
            for m in re.finditer(rf"\b({SCHEMAS[suite.database]})\.(\w+)", check.query or ""):
                tables[f"{m[1]}.{m[2]}"] = suite.database
    return tables


def rows_check(args: argparse.Namespace) -> tuple[int, dict]:
    from expectations.run import load_suites

    tables = checked_tables()
    counts = {}
    for database, con in (("vault", _vault(args)), ("analytics", _analytics(args))):
        try:
            counts.update({t: con.execute(f"select count(*) from {t}").fetchone()[0]
                           for t, db in sorted(tables.items()) if db == database})
        finally:
            con.close()
    return sum(counts.values()), {"tables": len(counts), "checks": sum(len(s.checks) for s in load_suites())}


def rows_audit(args: argparse.Namespace) -> tuple[int, dict]:
    con = _analytics(args)
    try:
        held, overdue = con.execute("select count(*), count(*) filter (where status = 'overdue') "
                                    "from privacy.retention_status").fetchone()
    finally:
        con.close()
    return held, {"overdue": overdue}


def rows_report(args: argparse.Namespace) -> tuple[int, dict]:
    con = _analytics(args)
    try:
        tables = _table_rows(con, "table_schema = 'churn'")
    finally:
        con.close()
    written = sorted(p.name for p in (args.home / "reports" / "churn").glob("churn-*.en.*"))
    return sum(tables.values()), {"churn_tables": len(tables), "files": written}


RUN: dict[str, tuple[Callable, Callable]] = {
    "generate": (stage_generate, rows_generate),
    "ingest": (stage_ingest, rows_ingest),
    "ingest-plain": (stage_ingest_plain, rows_ingest_plain),
    "build": (stage_build, rows_build),
    "check": (stage_check, rows_check),
    "check-plain": (stage_check_plain, rows_check),
    "audit": (stage_audit, rows_audit),
    "report": (stage_report, rows_report),
    "daily-ingest": (stage_daily_ingest, lambda args: rows_ingest(args, _last_day(args))),
    "daily-build": (stage_build, rows_build),
    "daily-check": (stage_check, rows_check),
    "daily-audit": (stage_audit, rows_audit),
}


def spill_folder(stage: str, args: argparse.Namespace) -> Path:
    """Where the stage's DuckDB spills past its memory limit: the home's tmp (vault, dbt), else beside the file."""
    return Path(f"{_plain_db(args)}.tmp") if stage == "ingest-plain" else args.home / "tmp"


def measure(stage: str, args: argparse.Namespace) -> dict:
    from core.spill import SpillWatch

    run = RUN[stage][0]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    error = None
    with SpillWatch(spill_folder(stage, args)) as spill:
        try:
            code = run(args)
        except Exception as exc:  # the traceback goes to the stage's log; the result names the type only
            traceback.print_exc()
            code, error = -1, type(exc).__name__
    wall = time.perf_counter() - began
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "stage": stage, "exit_code": code, "wall_s": wall,
        "cpu_s": (own.ru_utime - cpu_before.ru_utime) + (own.ru_stime - cpu_before.ru_stime)
        + children.ru_utime + children.ru_stime,
        # ru_maxrss is in kilobytes on Linux; a child process (if any) counts on its own.
        "peak_rss_mib": max(own.ru_maxrss, children.ru_maxrss) / 1024,
        # Peak size of the temp folder (sampled): DuckDB worked past its memory limit on disk. The generator's
        # DuckDB has no limit of its own and does not spill there.
        "spill_mib": spill.peak_bytes / 2**20,
    }
    if error:
        result["error"] = error
    return result


def count_rows(stage: str, args: argparse.Namespace, result: dict) -> None:
    """Rows the stage processed, into `result`; a stage that left nothing to count (a failed build) has none."""
    began = time.perf_counter()
    try:
        result["rows"], result["detail"] = RUN[stage][1](args)
    except Exception as exc:  # the error's type only: its message may quote data
        result["count_error"] = type(exc).__name__
    result["count_s"] = time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--inbox", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True, help="where the JSON result is written")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--end", help="last export date [default: today]")
    parser.add_argument("--no-pdf", action="store_true", help="report: HTML only")
    args = parser.parse_args(argv)
    if args.end is None:
        from datetime import date

        args.end = date.today().isoformat()
    args.home, args.inbox = args.home.resolve(), args.inbox.resolve()
    result = measure(args.stage, args)
    # Written before counting too: a stage that failed still leaves its time and memory.
    args.result.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if result["exit_code"] in DONE:
        count_rows(args.stage, args, result)
        args.result.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    sys.exit(0 if result["exit_code"] in DONE and "rows" in result else 1)


if __name__ == "__main__":
    main()
