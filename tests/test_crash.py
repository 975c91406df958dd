"""Crashes on every write path: a command killed with SIGKILL at a named step (core/faults.py) leaves the old
state or the new one, and the next run finishes what the killed one began.

One copy of the small overdue home (tests/test_retention.py), the steps in order. Ingest, key creation and the
migration of snapshots to versions have their own crash tests (tests/test_ingest.py, tests/test_keys.py,
tests/test_versions.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_home
from vault import analytics_rows, vault_rows

from core.faults import POINTS

COVERED = {"build.before_publish", "build.after_publish", "enforce.after_commit", "enforce.after_requests",
           "erase.after_commit", "access.after_package", "ingest.before_commit",
           "migrate.before_commit", "migrate.after_commit"}  # the migration's: tests/test_versions.py


def warehouse(home: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"WAREHOUSE_CRASH_AT": crash_at} if crash_at else {})}
    return subprocess.run([sys.executable, "-m", "warehouse.cli", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, timeout=600)


def killed(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == -signal.SIGKILL


def overdue_in_analytics(home) -> int:
    return analytics_rows(home, "select count(*) from privacy.retention_status where status = 'overdue'")[0][0]


@pytest.fixture(scope="module")
def home(overdue_home, tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    shutil.copytree(overdue_home.root.parent / "inbox", root / "inbox")
    return copy_home(overdue_home, root / "home")


def test_every_kill_point_has_a_crash_test():
    assert set(POINTS) - COVERED == {"ingest.after_commit"}  # tests/test_ingest.py kills before the commit


def test_a_build_killed_before_or_after_it_publishes_leaves_one_whole_analytics_file(home):
    published = home.analytics.read_bytes()
    run = warehouse(home.root, "build", crash_at="build.before_publish")
    assert killed(run), run.stderr
    assert home.analytics.read_bytes() == published  # readers never saw a half-built file
    # the next build publishes; killed right after its rename, it leaves the new file whole (it opens, has its
    # marts). The next step's commands (enforcement rebuilds) are the runs after it.
    again = warehouse(home.root, "build", "--full-refresh", crash_at="build.after_publish")
    assert killed(again), again.stderr
    assert home.analytics.read_bytes() != published and not home.analytics_next.exists()
    assert analytics_rows(home, "select count(*) from privacy.retention_status")[0][0] > 0


def test_an_enforcement_killed_after_its_commit_is_finished_by_the_next_apply(home):
    overdue = overdue_in_analytics(home)
    assert overdue > 0
    run = warehouse(home.root, "retention", "enforce", "--apply", crash_at="enforce.after_commit")
    assert killed(run)
    # committed in the vault; not yet told to the source systems, not yet in analytics
    assert vault_rows(home, "select count(*) from retention.erasure_runs where requests_written_at is null "
                            "and published_at is null") == [(1,)]
    assert vault_rows(home, "select count(*) from retention.pending_requests")[0][0] > 0
    assert not list((home.reports / "retention").glob("erasure-requests-*"))
    assert overdue_in_analytics(home) == overdue
    again = warehouse(home.root, "retention", "enforce", "--apply")
    assert again.returncode == 0, again.stderr
    assert "Nothing is overdue" in again.stderr
    assert list((home.reports / "retention").glob("erasure-requests-*"))
    assert vault_rows(home, "select count(*) from retention.pending_requests") == [(0,)]
    assert vault_rows(home, "select count(*) from retention.erasure_runs where published_at is null") == [(0,)]
    assert overdue_in_analytics(home) == 0


def test_an_access_request_killed_before_it_is_logged_leaves_no_answer(home):
    before = vault_rows(home, "select count(*) from privacy.access_requests")
    run = warehouse(home.root, "subject-access", "--customer-id", "C0000006", "--verified-by", "t",
                    crash_at="access.after_package")
    assert killed(run)
    assert vault_rows(home, "select count(*) from privacy.access_requests") == before
    assert not list(home.access.glob("SAR-*"))  # only the stray, under a temporary name
    assert [p for p in home.access.iterdir() if ".tmp-" in p.name]
    again = warehouse(home.root, "subject-access", "--customer-id", "C0000006", "--verified-by", "t")
    assert again.returncode == 0, again.stderr
    assert [p.name.startswith("SAR-") for p in home.access.iterdir()] == [True]


def test_an_erasure_on_request_killed_after_its_commit_is_finished_by_the_daily_run(home):
    run = warehouse(home.root, "erase", "--customer-id", "C0000002", "--request-ref", "R-9", "--verified-by", "t",
                    "--apply", crash_at="erase.after_commit")
    assert killed(run)
    assert vault_rows(home, "select count(*) from raw_crm.customers where customer_id = 'C0000002' "
                            "and hetu is not null") == [(0,)]  # erased in the vault at the commit
    assert vault_rows(home, "select outcome from privacy.access_requests where request_ref = 'R-9'") == [
        ("erased",)]  # and logged with it
    again = warehouse(home.root, "run", "--inbox", str(home.root.parent / "inbox"))
    assert "Published" in again.stderr, again.stderr
    assert vault_rows(home, "select count(*) from retention.erasure_runs where published_at is null "
                            "or requests_written_at is null") == [(0,)]
    assert any("C0000002" in p.read_text() for p in (home.reports / "retention").glob("erasure-requests-crm-*"))


def test_an_erasure_killed_after_writing_the_request_lists_is_republished_by_the_next_apply(home):
    # the erase finishes any earlier erasure first (the first pass of the point), then its own: killed there,
    # after the source systems' lists are written and before analytics is rebuilt
    key = vault_rows(home, "select pseudonymous_key('T00000061')", keyed=True)[0][0]
    in_analytics = analytics_rows(home, "select count(*) from privacy.retention_status where record_key = ?", [key])
    run = warehouse(home.root, "erase", "--customer-id", "C0000006", "--request-ref", "R-10", "--verified-by", "t",
                    "--apply", crash_at="enforce.after_requests@2")
    assert killed(run)
    assert vault_rows(home, "select count(*) from retention.erasure_runs where requests_written_at is not null "
                            "and published_at is null") == [(1,)]
    assert analytics_rows(home, "select count(*) from privacy.retention_status where record_key = ?",
                          [key]) == in_analytics  # not yet republished
    again = warehouse(home.root, "retention", "enforce", "--apply")
    assert again.returncode == 0 and "rebuilt from scratch" in again.stderr, again.stderr
    assert vault_rows(home, "select count(*) from retention.erasure_runs where published_at is null") == [(0,)]
