"""The daily job left to cron: one writer per home, exit codes that tell broken from work to do, a run log worth
watching, no work without news, no traceback, and names that cannot forge output or logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import cli, copy_home
from exports import header, write
from vault import settings_of, vault_rows

from core import runlog
from core.lock import home_lock
from warehouse.build import inputs_fingerprint

PRODUCTS = header("products")


def warehouse(home: Path, *args: str, **kwargs) -> subprocess.Popen:
    """`warehouse --home HOME ARGS` as cron would start it: its own process."""
    return subprocess.Popen([sys.executable, "-m", "warehouse.cli", "--home", str(home), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def runs(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "logs" / "runs.jsonl").read_text().splitlines()]


@pytest.fixture
def small_inbox(tmp_path) -> Path:
    inbox = tmp_path / "inbox"
    write(inbox / "services/products_20240105.csv", [PRODUCTS, "BB100;Kuitu 100;broadband;29,90;24"])
    return inbox


# --- the home lock ---------------------------------------------------------------------------------------------
def test_a_second_writer_says_in_one_line_who_holds_the_home_and_exits_75(tmp_path, small_inbox):
    home = tmp_path / "home"
    home.mkdir()
    with home_lock(home / ".lock", "build"):
        second = warehouse(home, "ingest", "--inbox", str(small_inbox))
        _, err = second.communicate(timeout=120)
    assert second.returncode == 75, err
    [line] = [line for line in err.splitlines() if line.strip()]  # one line, no traceback
    assert "busy" in line and "`warehouse build`" in line and f"pid {os.getpid()}" in line and "UTC" in line
    assert not (home / "vault.duckdb").exists()  # it did nothing
    assert runs(home)[-1] | {"at": None, "duration_s": None} == {
        "at": None, "duration_s": None, "command": "ingest", "result": "busy", "exit_code": 75, "counts": {},
        "alerts": [line.removeprefix("Busy: ").strip()]}


def test_a_writer_given_time_waits_for_the_home_and_then_runs(tmp_path, small_inbox):
    home = tmp_path / "home"
    home.mkdir()
    lock = home_lock(home / ".lock", "run")
    lock.__enter__()
    released = False
    try:
        waiting = warehouse(home, "--wait", "600", "ingest", "--inbox", str(small_inbox), "--json")
        # it says it waits, and for whom; nothing of it lands while the lock is held
        assert "waiting for the home: `warehouse run`" in waiting.stderr.readline()
        assert waiting.poll() is None and not (home / "vault.duckdb").exists()
        lock.__exit__(None, None, None)
        released = True
        out, err = waiting.communicate(timeout=120)
    finally:
        if not released:
            lock.__exit__(None, None, None)
    assert waiting.returncode == 0, err
    assert [json.loads(line)["status"] for line in out.splitlines()] == ["loaded"]


def test_the_audit_waits_for_a_running_build_instead_of_failing(demo, tmp_path):
    home = copy_home(demo.home, tmp_path / "home")
    lock = home_lock(home.lock_file, "build")
    lock.__enter__()
    audit = warehouse(home.root, "audit")
    try:
        # it says it waits (and for whom), then waits: release the home only once it has said so
        first = audit.stderr.readline()
        assert "waiting for the home" in first and "`warehouse build`" in first
        assert audit.poll() is None
    finally:
        lock.__exit__(None, None, None)
    _, err = audit.communicate(timeout=300)
    assert audit.returncode == 1, err  # the demo's sample keeps records past their period on purpose: a finding
    assert "records held" in err


# --- exit codes and the run log ----------------------------------------------------------------------------------
def test_exit_codes_tell_a_broken_pipeline_from_findings(demo, tmp_path):
    home = copy_home(demo.home, tmp_path / "home")
    bad = tmp_path / "bad"
    write(bad / "services/products_20240105.csv", "no;header;here\n")  # refused: missing required columns
    assert cli(home, "ingest", "--inbox", str(bad)).exit_code == 3  # broken: a file refused
    assert cli(home, "audit").exit_code == 1  # findings: records past their retention period
    assert cli(home, "audit", "--no-such-option").exit_code == 2  # wrong options
    entries = runs(home.root)
    assert [(e["command"], e["result"], e["exit_code"]) for e in entries[-2:]] == [
        ("ingest", "broken", 3), ("audit", "findings", 1)]
    audit = entries[-1]
    assert audit["counts"]["overdue"] > 0 and audit["alerts"] == ["records are kept past their retention period"]
    assert audit["duration_s"] >= 0 and audit["at"].endswith("+00:00")
    assert "Exit codes: 0 done; 1 findings" in cli(home, "--help").output


def test_the_demo_leaves_one_run_line_and_no_third_party_chatter_in_the_log(demo):
    [entry] = [e for e in runs(demo.home.root) if e["command"] == "demo"]
    assert entry["result"] == "ok" and entry["counts"]["build"]["published"]
    assert set(entry["alerts"]) >= {"records are kept past their retention period"}
    lines = (demo.home.logs / "warehouse.log").read_text(encoding="utf-8").splitlines()
    assert lines and len(lines) < 200
    foreign = [line for line in lines if line.split(" ")[3].split(".")[0].rstrip(":") not in runlog.OUR_PACKAGES
               and " ERROR " not in line]
    assert foreign == []


def test_the_run_log_rotates(tmp_path, monkeypatch):
    monkeypatch.setattr(runlog, "RUN_LOG_BYTES", 200)
    log = tmp_path / "logs" / "runs.jsonl"
    for n in range(40):
        runlog.record_run(log, {"command": "build", "n": n})
    rotated = sorted(p.name for p in log.parent.iterdir())
    assert rotated == ["runs.jsonl", *(f"runs.jsonl.{k}" for k in range(1, runlog.KEEP + 1))]
    assert json.loads(log.read_text().splitlines()[-1])["n"] == 39


# --- no work without news ----------------------------------------------------------------------------------------
def test_a_run_without_news_does_not_rebuild(demo, tmp_path):
    home = copy_home(demo.home, tmp_path / "home")
    published = home.analytics.stat().st_mtime_ns
    again = cli(home, "run", "--inbox", str(demo.inbox))
    assert again.exit_code == 1, again.output  # the sample's findings stand
    assert "Nothing new since the last build" in again.output
    assert home.analytics.stat().st_mtime_ns == published
    entry = runs(home.root)[-1]
    assert entry["command"] == "run" and entry["counts"]["build"] == {"built": False, "skipped": True}
    assert "an error-severity data-quality check failed" in entry["alerts"]  # the last check's finding stands


def test_what_a_build_reads_changes_its_fingerprint(demo, tmp_path):
    home = copy_home(demo.home, tmp_path / "home")
    settings = settings_of(home)
    before = inputs_fingerprint(settings)
    assert inputs_fingerprint(settings) == before
    policy = tmp_path / "policy.yml"
    policy.write_text(settings.retention_policy.read_text().replace("due_soon_days: 30", "due_soon_days: 31"))
    assert inputs_fingerprint(settings.with_(retention_policy=policy)) != before
    [(customer_id,)] = vault_rows(home, "select min(customer_id) from staging.stg_crm__customers")
    assert cli(home, "object", "--customer-id", customer_id, "--request-ref", "R-1", "--verified-by", "t",
               "--no-rebuild").exit_code == 0
    assert inputs_fingerprint(settings) != before  # an objection recorded: the next run rebuilds


# --- names that could forge output or a log line -----------------------------------------------------------------
def test_file_names_neither_restyle_the_output_nor_forge_log_lines(tmp_path):
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    write(inbox / "services/products_[bold red]x[/]_20240105.csv", "no;header;here\n")
    write(inbox / "services/products_a\n2026-12-04 00:00:00,000 INFO forged_20240106.csv", "no;header\n")
    result = cli(home, "ingest", "--inbox", str(inbox))
    assert result.exit_code == 3
    assert "products_[bold red]x[/]_20240105.csv" in result.output  # shown as named, not as markup
    log = (home / "logs" / "warehouse.log").read_text(encoding="utf-8")
    assert not any(line.startswith("2026-12-04 00:00:00,000 INFO forged") for line in log.splitlines())
    assert "products_a\\n2026-12-04" in log  # escaped on its own line


def test_no_command_answers_with_a_traceback(tmp_path):
    """A command on a home without a vault, a damaged key, a missing inbox: one line each, no traceback."""
    home = tmp_path / "home"
    for args in (["build"], ["check"], ["audit"], ["report", "churn"], ["retention", "enforce"],
                 ["erase", "--customer-id", "C1", "--request-ref", "R", "--verified-by", "x"]):
        result = cli(home, *args)
        assert result.exit_code == 3, (args, result.output)
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_an_interrupted_lock_is_released_by_the_kernel(tmp_path):
    """The lock is a flock: a holder killed with SIGKILL leaves the home free, with no stale lock file to clear."""
    home = tmp_path / "home"
    home.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from core.lock import home_lock\n"
        f"with home_lock(Path({str(home / '.lock')!r}), 'build'):\n"
        "    print('held', flush=True); time.sleep(600)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    done = threading.Event()
    with home_lock(home / ".lock", "ingest", wait=0):
        done.set()
    assert done.is_set()
