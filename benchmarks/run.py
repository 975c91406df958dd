"""The benchmark: every stage of the warehouse, timed separately, at one or more sizes.

    python benchmarks/run.py --customers 10000 --customers 100000 [--memory-limit 2.5GB] [--threads 2]
                             [--out benchmarks/results] [--work DIR] [--keep] [--no-pdf] [--no-plain] [--nice 10]

For each size: sample exports with their full history (`warehouse generate --customers N --start 2019-01-01`,
up to today), then each stage in its own child process (benchmarks/stage.py), so that its peak resident
memory is its own: generate, ingest, build (`warehouse build`: dbt build, freshness, catalogue, publish),
check, audit, report (churn, en, HTML and PDF), all on the exports but the last day's; then the daily job on
the last day's files: daily-ingest, daily-build (incremental), daily-check, daily-audit. For each: wall
seconds, rows processed (counted from the inbox, the vault or analytics afterwards), rows per second, CPU
seconds and peak RSS.

Side by side, in the same run and on the same files:
- ingest against plain DuckDB `read_csv` / `read_json` of the whole inbox into typed tables (ratio plain /
  ingest, target at least 0.8; benchmarks/bench_ingest.py);
- `warehouse check` against the same checks as plain SQL (ratio check / plain, target at most 1.5;
  benchmarks/bench_check.py);
- the daily job against the same stages over the history before it (ratio, target at most 0.1);
- for two sizes 10x apart, the growth of each stage (target: time at most 12x for 10x the data), and each
  stage's peak RSS projected linearly to 1,000,000 customers against the 4 GB bound.

Writes results-<date>-<sizes>.json and .md into --out, with the machine's description. Other work on the
machine slows a stage down, never speeds it up: the timings are upper bounds. Nothing of a row is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from importlib import metadata
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:  # run as a script: `benchmarks.stage` must import as a package module
    sys.path.insert(0, str(PROJECT_DIR))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.stage import DONE  # noqa: E402
from core.settings import DEFAULT_MEMORY_LIMIT  # noqa: E402

STAGES = ("generate", "ingest", "build", "check", "audit", "report")  # the pipeline, in order
PLAIN = {"ingest-plain": "ingest", "check-plain": "check"}  # comparison -> the stage it is compared with
ORDER = ("generate", "ingest", "ingest-plain", "build", "check", "check-plain", "audit", "report",
         "daily-ingest", "daily-build", "daily-check", "daily-audit")
# The daily job on the next day's exports, against the same stages over the whole history before it.
DAILY = {"daily-ingest": "ingest", "daily-build": "build", "daily-check": "check", "daily-audit": "audit"}
TARGETS = {"ingest_ratio_min": 0.8, "check_ratio_max": 1.5, "growth_max": 12.0, "rss_max_mib": 4096,
           "daily_ratio_max": 0.1}
PROJECT_TO = 1_000_000

console = Console(width=None if sys.stdout.isatty() else 120)


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# --- the machine ---------------------------------------------------------------------------------------
def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine(threads: int | None, memory_limit: str) -> dict:
    cpuinfo = _read("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    meminfo = {line.split(":")[0]: line.split(":")[1].strip() for line in _read("/proc/meminfo").splitlines()
               if ":" in line}
    ram_kib = int(meminfo.get("MemTotal", "0 kB").split()[0])
    os_release = dict(line.split("=", 1) for line in _read("/etc/os-release").splitlines() if "=" in line)
    cgroup = _read("/sys/fs/cgroup/memory.max").strip()
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gib": round(ram_kib / 2**20, 1),
        "cgroup_memory_max": cgroup or None,
        "os": f"{os_release.get('PRETTY_NAME', platform.system()).strip(chr(34))}, kernel {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "duckdb": _version("duckdb"),
        "dbt_core": _version("dbt-core"),
        "dbt_duckdb": _version("dbt-duckdb"),
        "great_expectations": _version("great-expectations"),
        "threads": threads or os.cpu_count(),
        "threads_set": threads is not None,
        "memory_limit": memory_limit,
        "niceness": os.getpriority(os.PRIO_PROCESS, 0),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def source() -> dict | None:
    """The commit measured, and the files changed on top of it (names only); None outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True,
                                check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT_DIR, capture_output=True, text=True,
                                check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "changed": [line[3:] for line in status]}


# --- running the stages --------------------------------------------------------------------------------
def child_env(threads: int | None, memory_limit: str) -> dict[str, str]:
    env = dict(os.environ)
    # Each benchmark home is self-contained: its own vault key (made by its first ingest), its own folder.
    for name in ("WAREHOUSE_HOME", "WAREHOUSE_VAULT_KEY", "WAREHOUSE_VAULT_KEY_FILE", "WAREHOUSE_PSEUDONYM_KEY_FILE"):
        env.pop(name, None)
    if threads:
        env["WAREHOUSE_THREADS"] = str(threads)
    env["WAREHOUSE_MEMORY_LIMIT"] = memory_limit
    env.update({"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    return env


def run_stage(stage: str, work: Path, customers: int, args: argparse.Namespace, env: dict[str, str]) -> dict:
    """One stage in a child process; its own JSON result, plus the child's whole lifetime as `process_s`."""
    result_file, log_file = work / f"{stage}.json", work / "logs" / f"{stage}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "benchmarks.stage", stage, "--home", str(work / "home"),
               "--inbox", str(work / "inbox"), "--result", str(result_file), "--customers", str(customers),
               "--seed", str(args.seed), "--start", args.start.isoformat(), "--end", args.end.isoformat()]
    if args.no_pdf:
        command.append("--no-pdf")
    began = time.perf_counter()
    # The stages' own output (summaries, file names, counts) goes to a log beside the home, not the screen.
    with log_file.open("w") as log:
        completed = subprocess.run(command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   check=False)
    process_s = time.perf_counter() - began
    if not result_file.exists():
        return {"stage": stage, "failed": True, "process_s": process_s, "exit_code": completed.returncode,
                "log": str(log_file)}
    result = json.loads(result_file.read_text())
    result["process_s"] = process_s
    result["failed"] = result["exit_code"] not in DONE or "rows" not in result
    if result["failed"]:
        result["log"] = str(log_file)
    if result.get("rows") is not None and result["wall_s"] > 0:
        result["rows_per_s"] = result["rows"] / result["wall_s"]
    return result


def run_size(customers: int, root: Path, args: argparse.Namespace, env: dict[str, str]) -> dict:
    work = root / size_label(customers)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    console.rule(f"{customers:,} customers")
    stages: dict[str, dict] = {}
    for stage in ORDER:
        if (args.no_plain and stage in PLAIN) or (args.stages and stage not in args.stages):
            continue
        result = run_stage(stage, work, customers, args, env)
        stages[stage] = result
        print_stage(result)
        if result["failed"] and stage not in PLAIN:
            console.print(f"[red]{stage} failed[/] (exit {result['exit_code']}; its output: {result['log']}): "
                          "the later stages of this size are skipped")
            break
    size = {"customers": customers, "stages": stages, "comparisons": comparisons(stages)}
    if not args.keep:
        # The warehouse's own log stays (no personal data: counts, names of models, seconds), for the profile
        # of each build it logs; the rest goes.
        if (work / "home" / "logs" / "warehouse.log").exists():
            shutil.copy2(work / "home" / "logs" / "warehouse.log", work / "logs" / "warehouse.log")
        shutil.rmtree(work / "home", ignore_errors=True)  # the vault and analytics: personal data, and disk
        shutil.rmtree(work / "inbox", ignore_errors=True)
        shutil.rmtree(work / "exports", ignore_errors=True)
    return size


def print_stage(r: dict) -> None:
    if r["failed"]:
        rss = f", {r['peak_rss_mib']:,.0f} MiB peak RSS" if "peak_rss_mib" in r else ""
        console.print(f"  {r['stage']:<13} [red]failed[/] after {r.get('wall_s', r['process_s']):.1f} s{rss}"
                      + (f" ({r['error']})" if r.get("error") else ""))
        return
    console.print(f"  {r['stage']:<13} {r['wall_s']:9.1f} s  {r['rows']:>13,} rows  {r.get('rows_per_s', 0):>12,.0f}"
                  f" rows/s  {r['peak_rss_mib']:>8,.0f} MiB peak RSS", highlight=False)


# --- figures -------------------------------------------------------------------------------------------
def _ok(stages: dict, name: str) -> dict | None:
    r = stages.get(name)
    return r if r and not r["failed"] else None


def comparisons(stages: dict) -> dict:
    out = {}
    ingest, plain = _ok(stages, "ingest"), _ok(stages, "ingest-plain")
    if ingest and plain:
        ratio = plain["wall_s"] / ingest["wall_s"]
        out["ingest_vs_read_csv"] = {"ingest_s": ingest["wall_s"], "plain_s": plain["wall_s"], "ratio": ratio,
                                     "target": f">= {TARGETS['ingest_ratio_min']}",
                                     "met": ratio >= TARGETS["ingest_ratio_min"]}
    check, plain = _ok(stages, "check"), _ok(stages, "check-plain")
    if check and plain:
        ratio = check["wall_s"] / plain["wall_s"]
        out["check_vs_plain_sql"] = {"check_s": check["wall_s"], "plain_s": plain["wall_s"], "ratio": ratio,
                                     "target": f"<= {TARGETS['check_ratio_max']}",
                                     "met": ratio <= TARGETS["check_ratio_max"]}
    # over the daily stages that ran (all four in a full run), each against the same stage over the history
    daily = [(d, full) for d, full in ((_ok(stages, d), _ok(stages, f)) for d, f in DAILY.items()) if d and full]
    if daily:
        daily_s, full_s = sum(d["wall_s"] for d, _ in daily), sum(full["wall_s"] for _, full in daily)
        out["daily_vs_full"] = {"daily_s": daily_s, "full_s": full_s, "ratio": daily_s / full_s,
                                "stages": {d["stage"]: d["wall_s"] / full["wall_s"] for d, full in daily},
                                "target": f"<= {TARGETS['daily_ratio_max']}",
                                "met": daily_s / full_s <= TARGETS["daily_ratio_max"]}
    return out


def limit_mib(text: str) -> float | None:
    """A DuckDB memory limit (`3GB`, `512MiB`, ...) in MiB; DuckDB's KB/MB/GB are powers of 1000."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]i?B?)\s*", text, re.I)
    if not match:
        return None
    unit = match[2].upper().rstrip("B")
    power = "KMGT".index(unit[0]) + 1
    return float(match[1]) * (1024 if unit.endswith("I") else 1000) ** power / 2**20


def growth(sizes: list[dict], memory_limit: str) -> list[dict]:
    """Per pair of sizes exactly 10x apart: each stage's time, CPU, rows and peak RSS ratios, projected to 1M.

    Time at 1M: the same growth again per 10x. Peak RSS at 1M: linear in customers through the two points,
    which holds for memory outside DuckDB (NumPy, Python objects) and for DuckDB below its limit. A stage whose
    DuckDB already reached its limit at the larger size (it spilled, or its RSS is within 10 % of the limit)
    is marked `at_limit`: it goes on past that by spilling, so its projection is an upper bound, not a forecast.
    """
    limit = limit_mib(memory_limit)
    out = []
    by_n = {s["customers"]: s for s in sizes}
    for small_n in sorted(by_n):
        big_n = small_n * 10
        if big_n not in by_n:
            continue
        small, big = by_n[small_n], by_n[big_n]
        pair = {"from": small_n, "to": big_n, "stages": {}}
        for stage in ORDER:
            a, b = _ok(small["stages"], stage), _ok(big["stages"], stage)
            if not (a and b):
                continue
            entry = {"time": b["wall_s"] / a["wall_s"], "cpu": b["cpu_s"] / a["cpu_s"] if a["cpu_s"] else None,
                     "rows": b["rows"] / a["rows"] if a["rows"] else None,
                     "rss": b["peak_rss_mib"] / a["peak_rss_mib"],
                     # The plain-DuckDB comparisons are references, not the warehouse's stages: no target.
                     "met": None if stage in PLAIN else b["wall_s"] / a["wall_s"] <= TARGETS["growth_max"],
                     "at_limit": stage != "generate" and limit is not None
                     and (b.get("spill_mib", 0) > 0 or b["peak_rss_mib"] >= 0.9 * limit)}
            if big_n < PROJECT_TO:
                slope = (b["peak_rss_mib"] - a["peak_rss_mib"]) / (big_n - small_n)
                entry["rss_projected_mib"] = b["peak_rss_mib"] + slope * (PROJECT_TO - big_n)
                entry["wall_projected_s"] = b["wall_s"] * entry["time"] ** math.log10(PROJECT_TO / big_n)
            pair["stages"][stage] = entry
        out.append(pair)
    return out


# --- output --------------------------------------------------------------------------------------------
def stage_rows(size: dict) -> list[list[str]]:
    rows = []
    for stage in ORDER:
        r = size["stages"].get(stage)
        if r is None:
            continue
        name = f"{stage} (vs {PLAIN[stage]})" if stage in PLAIN else stage
        if r["failed"]:
            rows.append([name, f"failed after {r.get('wall_s', r['process_s']):,.1f}", "", "", "",
                         f"{r['peak_rss_mib']:,.0f}" if "peak_rss_mib" in r else "",
                         f"{r.get('spill_mib', 0):,.0f}", str(r["exit_code"])])
            continue
        rows.append([name, f"{r['wall_s']:,.1f}", f"{r['rows']:,}", f"{r.get('rows_per_s', 0):,.0f}",
                     f"{r['cpu_s']:,.1f}", f"{r['peak_rss_mib']:,.0f}", f"{r.get('spill_mib', 0):,.0f}",
                     str(r["exit_code"])])
    return rows


STAGE_HEADER = ["stage", "wall s", "rows", "rows/s", "CPU s", "peak RSS MiB", "spill MiB", "exit"]


def print_tables(results: dict) -> None:
    for size in results["sizes"]:
        table = Table(title=f"{size['customers']:,} customers", title_justify="left")
        for i, column in enumerate(STAGE_HEADER):
            table.add_column(column, justify="left" if i == 0 else "right", no_wrap=True)
        for row in stage_rows(size):
            table.add_row(*row)
        console.print(table)
        for line in comparison_lines(size):
            console.print(line, highlight=False)
    for pair in results["growth"]:
        table = Table(title=f"Growth {size_label(pair['from'])} -> {size_label(pair['to'])} "
                            f"(target: time at most {TARGETS['growth_max']:.0f}x)", title_justify="left")
        for i, column in enumerate(GROWTH_HEADER):
            table.add_column(column, justify="left" if i == 0 else "right", no_wrap=True)
        for row in growth_rows(pair):
            table.add_row(*row)
        console.print(table)


def comparison_lines(size: dict) -> list[str]:
    lines = []
    c = size["comparisons"].get("ingest_vs_read_csv")
    if c:
        lines.append(f"ingest vs plain read_csv of the same inbox: {c['ingest_s']:.1f} s vs {c['plain_s']:.1f} s, "
                     f"ratio plain/ingest {c['ratio']:.2f} (target {c['target']}: {'met' if c['met'] else 'MISSED'})")
    c = size["comparisons"].get("check_vs_plain_sql")
    if c:
        lines.append(f"warehouse check vs the same checks as plain SQL: {c['check_s']:.1f} s vs {c['plain_s']:.1f} s, "
                     f"ratio check/plain {c['ratio']:.2f} (target {c['target']}: {'met' if c['met'] else 'MISSED'})")
    c = size["comparisons"].get("daily_vs_full")
    if c:
        each = ", ".join(f"{stage.removeprefix('daily-')} {ratio:.2f}" for stage, ratio in c["stages"].items())
        lines.append(f"the next day's exports (ingest, build, check, audit) vs the same over the history before: "
                     f"{c['daily_s']:.1f} s vs {c['full_s']:.1f} s, ratio {c['ratio']:.2f} ({each}; target "
                     f"{c['target']}: {'met' if c['met'] else 'MISSED'})")
    return lines


GROWTH_HEADER = ["stage", "time x", "CPU x", "rows x", "peak RSS x", "time target",
                 f"wall at {size_label(PROJECT_TO)} s", f"peak RSS at {size_label(PROJECT_TO)} MiB"]


def growth_rows(pair: dict) -> list[list[str]]:
    rows = []
    for stage, g in pair["stages"].items():
        projected = g.get("rss_projected_mib")
        rss = "" if projected is None else f"{projected:,.0f}"
        if projected is not None and projected > TARGETS["rss_max_mib"]:
            rss += " > 4 GB" + (" (DuckDB at its limit: spills)" if g["at_limit"] else "")
        target = "reference" if g["met"] is None else "met" if g["met"] else "MISSED"
        rows.append([stage, f"{g['time']:.1f}", f"{g['cpu']:.1f}" if g["cpu"] else "",
                     f"{g['rows']:.1f}" if g["rows"] else "", f"{g['rss']:.1f}", target,
                     f"{g['wall_projected_s']:,.0f}" if "wall_projected_s" in g else "", rss])
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in
                                                            range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results: dict) -> str:
    m = results["machine"]
    sizes = ", ".join(f"{s['customers']:,}" for s in results["sizes"])
    out = [f"# Benchmark {results['date']}: {sizes} customers", "",
           f"`{results['command']}`", "",
           *([f"Source: commit {results['source']['commit'][:12]}"
              + (f", with changes to {', '.join(results['source']['changed'])}" if results["source"]["changed"]
                 else "") + ".", ""] if results.get("source") else []),
           f"Machine: {m['cpu_model']}, {m['cores']} cores ({m['cores_usable']} usable), {m['ram_gib']} GiB RAM; "
           f"{m['os']}; Python {m['python']}, DuckDB {m['duckdb']}, dbt-core {m['dbt_core']}, dbt-duckdb "
           f"{m['dbt_duckdb']}, Great Expectations {m['great_expectations']}. DuckDB threads {m['threads']}"
           f"{'' if m['threads_set'] else ' (all cores)'}, memory limit {m['memory_limit']}; niceness "
           f"{m['niceness']}; load average at start {m['load_average_at_start']}, at end "
           f"{m.get('load_average_at_end')}.", "",
           "Timings are upper bounds: other work shares this machine's cores, and slows a stage down, never "
           "speeds it up. Each stage ran in its own process; peak RSS is that process's `ru_maxrss`; spill is the "
           "peak size of DuckDB's temp folder during the stage (work past the memory limit). Exports: "
           f"`warehouse generate --customers N --seed {results['seed']} --start {results['start']} --end "
           f"{results['end']}` (every file of the contract, 3 daily exports, the first with the full history, 1 % "
           "defects). The stages ingest to report take the exports but the last day's; the daily stages then take "
           "the last day's files, as the daily job would (the build recomputes only what they changed). Rows: "
           "generate = rows written; ingest = rows read (loaded + rejected); build = rows of the "
           "marts in analytics; check = rows of the tables the 102 checks read; audit = records in "
           "privacy.retention_status; report = rows of the churn marts. Exit 1 of check and audit is the "
           "sample's injected defects and overdue records, as intended.", ""]
    for size in results["sizes"]:
        out += [f"## {size['customers']:,} customers", "", _md_table(STAGE_HEADER, stage_rows(size)), ""]
        out += [f"- {line}" for line in comparison_lines(size)] + [""]
    for pair in results["growth"]:
        out += [f"## Growth {size_label(pair['from'])} → {size_label(pair['to'])} "
                f"(target: time at most {TARGETS['growth_max']:.0f}x for 10x the customers)", "",
                "At 1M, projected: wall time at the same growth per 10x; peak RSS linear in customers through the two "
                "measured points, against the 4 GB bound of issue 7. For a stage whose DuckDB reached its memory "
                "limit at the larger size (it spilled, or its RSS is within 10 % of the limit) the linear figure is "
                "an upper bound: DuckDB goes on by spilling, and what grows is the memory outside it. The "
                "plain-DuckDB comparisons are references without a target. CPU x is less disturbed by other work "
                "on the machine than time x.", "",
                _md_table(GROWTH_HEADER, growth_rows(pair)), ""]
    return "\n".join(out)


def write_results(results: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"results-{results['date']}-{'-'.join(size_label(s['customers']) for s in results['sizes'])}"
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(markdown(results) + "\n", encoding="utf-8")
    return json_path, md_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, action="append", required=True,
                        help="a size; give it again for more sizes (10x apart: the growth is reported)")
    parser.add_argument("--memory-limit", default=os.environ.get("WAREHOUSE_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT,
                        help="DuckDB memory limit of every stage [default: WAREHOUSE_MEMORY_LIMIT or 2.5GB]")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WAREHOUSE_THREADS") or 0) or None,
                        help="DuckDB threads [default: WAREHOUSE_THREADS or all cores]")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="folder for the homes and exports [default: a new one in /tmp]")
    parser.add_argument("--keep", action="store_true", help="keep the homes and exports (else deleted per size)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2019, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date.today(), help="[default: today]")
    parser.add_argument("--no-pdf", action="store_true", help="report stage: HTML only")
    parser.add_argument("--no-plain", action="store_true",
                        help="skip the plain-DuckDB comparisons (at 1M they take longer than the stages)")
    parser.add_argument("--nice", type=int, default=0, help="lower this run's priority by N (children inherit)")
    parser.add_argument("--stages", type=lambda text: set(text.split(",")), default=None,
                        help=f"only these stages, comma-separated (generate is always needed) [default: all: "
                             f"{','.join(ORDER)}]")
    args = parser.parse_args(argv)
    if args.stages and not args.stages <= set(ORDER):
        parser.error(f"unknown stage(s): {', '.join(sorted(args.stages - set(ORDER)))}")
    if args.nice:
        os.nice(args.nice)
    customers = sorted(set(args.customers))
    root = (args.work or Path(tempfile.mkdtemp(prefix="bench-run-"))).resolve()
    env = child_env(args.threads, args.memory_limit)
    results = {
        "date": date.today().isoformat(),
        "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(args.threads, args.memory_limit),
        "source": source(),
        "seed": args.seed, "start": args.start.isoformat(), "end": args.end.isoformat(),
        "targets": TARGETS,
        "sizes": [],
    }
    try:
        for n in customers:
            results["sizes"].append(run_size(n, root, args, env))
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["growth"] = growth(results["sizes"], args.memory_limit)
    print_tables(results)
    json_path, md_path = write_results(results, args.out)
    console.print(f"[green]Wrote[/] {json_path} and {md_path}")
    failed = [f"{s['customers']}:{name}" for s in results["sizes"] for name, r in s["stages"].items() if r["failed"]]
    if failed:
        console.print(f"[red]Failed stages:[/] {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
