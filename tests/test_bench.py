"""The benchmarks at a tiny size: the harness (benchmarks/run.py) measures and writes down every stage, and
the layouts benchmark (benchmarks/bench_daily_layouts.py) compares layouts that end the day with the same rows.

Speed targets live in the benchmarks' results, not here: this only checks that they measure what they say.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# A stage of each kind (the warehouse's, a plain-DuckDB comparison, the daily job's): the harness treats every
# stage the same way, and running all twelve would take the suite's time without testing more of it. The build
# stages are the pipeline's build (tests/test_pipeline.py, tests/test_incremental.py): two dbt builds from an
# unparsed project would double this test's time.
STAGES = ("generate", "ingest", "ingest-plain", "daily-ingest")


def test_the_harness_records_every_stage_with_time_rows_and_memory(tmp_path):
    out, work = tmp_path / "results", tmp_path / "work"
    ran = subprocess.run([sys.executable, "benchmarks/run.py", "--customers", "300", "--threads", "2",
                          "--memory-limit", "1GB", "--no-pdf", "--out", str(out), "--work", str(work),
                          "--stages", ",".join(STAGES)],
                         cwd=PROJECT_DIR, capture_output=True, text=True, timeout=900, check=False)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]

    [json_path] = out.glob("results-*-300.json")
    assert json_path.with_suffix(".md").exists()
    results = json.loads(json_path.read_text())
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["ram_gib"] > 0 and machine["duckdb"] and machine["python"]
    assert (machine["threads"], machine["memory_limit"]) == (2, "1GB")
    [size] = results["sizes"]
    assert size["customers"] == 300
    assert set(size["stages"]) == set(STAGES)
    for name, stage in size["stages"].items():
        assert not stage["failed"], name
        assert stage["wall_s"] > 0, name
        assert stage["rows"] > 0, name
        assert stage["rows_per_s"] > 0, name
        assert stage["peak_rss_mib"] > 0, name
    # The comparisons are there (their targets are the benchmark's business, not the test's).
    assert size["comparisons"]["ingest_vs_read_csv"]["ratio"] > 0
    assert set(size["comparisons"]["daily_vs_full"]["stages"]) == {s for s in STAGES if s.startswith("daily-")}
    # The full stages held back the last export day; the daily ones loaded it.
    stages = size["stages"]
    assert 0 < stages["daily-ingest"]["rows"] < stages["ingest"]["rows"]
    # The homes (vault, exports: personal data) are gone; the stages' logs stay beside them.
    assert not any((work / "300" / name).exists() for name in ("home", "inbox", "exports"))


def test_a_build_that_published_nothing_is_a_failed_stage(tmp_path, monkeypatch):
    """A build with a stale source published and did its work; a failed one published nothing: a failed stage."""
    from argparse import Namespace

    from benchmarks import stage
    from warehouse import pipeline

    args = Namespace(home=tmp_path)
    stale = pipeline.BuildOutcome(build=None, published=True)
    monkeypatch.setattr(pipeline, "build", lambda settings: stale)
    assert stage.stage_build(args) in stage.DONE
    monkeypatch.setattr(pipeline, "build", lambda settings: pipeline.BuildOutcome(build=None, published=False))
    assert stage.stage_build(args) not in stage.DONE


def test_the_layouts_benchmark_ends_every_layout_with_the_same_rows(tmp_path):
    """The append-only layout's view shows what a copy and a delete leave: its figures compare like with like."""
    from benchmarks.bench_daily_layouts import DIGEST, LAYOUTS, build_base, run_layout
    from core.db import connect

    base = tmp_path / "base.duckdb"
    build_base(base, customers=300, rows_per_customer=20, changed=0.1)
    con = connect(base, read_only=True)
    try:
        before = str(con.execute(DIGEST.format(table="records")).fetchone())
    finally:
        con.close()
    results = {}
    for layout in LAYOUTS:
        copy = tmp_path / f"{layout}.duckdb"
        copy.write_bytes(base.read_bytes())
        results[layout] = run_layout(layout, copy, "500MB", 1, "100MB")
    digests = {result["digest"] for result in results.values()}
    assert len(digests) == 1 and before not in digests, (before, digests)
    for result in results.values():
        assert result["steps"]["the day, in all"] > 0 and result["peak_rss_mib"] > 0
