"""The churn report's dated archive (reports/archive.py) on the synthetic analytics database: one report per
closed month, kept; issued again only when the month's figures change, the earlier issue kept; the running
month provisional; an index of every month."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
import stat
from pathlib import Path

import pytest
from report_fixture import build_fixture

from core.db import connect
from reports.archive import archive, months_due, write_index
from reports.churn import ReportError

CONTROLLER = "Esimerkki Oy"


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> Path:
    return build_fixture(tmp_path_factory.mktemp("analytics") / "analytics.duckdb", quality=True)


@pytest.fixture
def analytics(fixture_db, tmp_path) -> Path:
    path = tmp_path / "analytics.duckdb"
    shutil.copy(fixture_db, path)
    return path


def run(analytics: Path, root: Path, months, langs=("en",), pdf=False):
    done = archive(analytics, root, controller=CONTROLLER, months=months, langs=langs, pdf=pdf)
    write_index(root, controller=CONTROLLER)
    return done


def manifest(root: Path, month: str) -> dict:
    return json.loads((root / month / "issues.json").read_text(encoding="utf-8"))


def test_the_daily_months_are_the_latest_closed_and_the_running_one(analytics):
    assert [m.isoformat() for m in months_due(analytics)] == ["2025-05-01", "2025-06-01"]


def test_a_closed_month_is_issued_once_and_kept(analytics, tmp_path):
    root = tmp_path / "churn"
    first, = run(analytics, root, [None], langs=("en", "fi"), pdf=True)
    assert (first.action, first.issue, first.provisional) == ("issued", 1, False)
    folder = root / "2025-05"
    assert sorted(p.name for p in folder.iterdir()) == [
        "churn-2025-05.en.html", "churn-2025-05.en.pdf", "churn-2025-05.fi.html", "churn-2025-05.fi.pdf",
        "issues.json"]
    # owner-only, like everything the warehouse writes
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again, = run(analytics, root, [None], langs=("en", "fi"), pdf=True)
    assert (again.action, again.written) == ("kept", [])
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    # The summary the index and the e-mail use is the page's own.
    html = (folder / "churn-2025-05.en.html").read_text(encoding="utf-8")
    page_summary = htmllib.unescape(re.sub(r"<[^>]+>", "", re.search(r'id="summary">(.*?)</p>', html)[1]))
    assert manifest(root, "2025-05")["current"]["langs"]["en"]["summary"] == page_summary


def test_a_missing_language_is_added_to_the_same_issue(analytics, tmp_path):
    root = tmp_path / "churn"
    run(analytics, root, [None], langs=("en",))
    done, = run(analytics, root, [None], langs=("en", "fi"))
    assert (done.action, done.issue, [p.name for p in done.written]) == ("completed", 1, ["churn-2025-05.fi.html"])


def test_changed_figures_issue_the_month_again_and_keep_the_earlier_issue(analytics, tmp_path):
    root = tmp_path / "churn"
    run(analytics, root, [None])
    # A late export: a churn of May is found to be two.
    con = connect(analytics)
    con.execute("update churn.monthly_movements set customers_churned = customers_churned + 1, "
                "customers_end = customers_end - 1 where month = date '2025-05-01'")
    con.close()
    done, = run(analytics, root, [None])
    assert (done.action, done.issue) == ("reissued", 2)
    record = manifest(root, "2025-05")
    assert record["current"]["issue"] == 2 and [e["issue"] for e in record["earlier"]] == [1]
    assert record["earlier"][0]["langs"]["en"]["html"] == "churn-2025-05.en.issue-1.html"
    assert (root / "2025-05" / "churn-2025-05.en.issue-1.html").exists()
    assert (root / "2025-05" / "churn-2025-05.en.html").exists()
    index = (root / "index.en.html").read_text(encoding="utf-8")
    assert "closed, issue 2 (figures changed)" in index
    assert 'href="2025-05/churn-2025-05.en.issue-1.html"' in index and "Earlier issue 1" in index


def test_history_before_the_month_does_not_reissue_it(analytics, tmp_path):
    """Only the month's own figures count: a change three months earlier leaves May's report as issued."""
    root = tmp_path / "churn"
    run(analytics, root, [None])
    con = connect(analytics)
    con.execute("update churn.monthly_movements set new_mrr = new_mrr + 1 where month = date '2025-02-01'")
    con.execute("update quality.summary set errors = 0")
    con.close()
    done, = run(analytics, root, [None])
    assert done.action == "kept"


def test_the_running_month_is_provisional_and_replaced_until_it_closes(analytics, tmp_path):
    root = tmp_path / "churn"
    done = run(analytics, root, [None, "2025-06"])
    assert [(d.action, d.provisional) for d in done] == [("issued", False), ("provisional", True)]
    html = (root / "2025-06" / "churn-2025-06.en.html").read_text(encoding="utf-8")
    assert 'id="provisional"' in html
    again = run(analytics, root, ["2025-06"])
    assert again[0].action == "provisional" and again[0].written  # written again: it changes daily
    index = (root / "index.en.html").read_text(encoding="utf-8")
    text = htmllib.unescape(re.sub(r"</?span[^>]*>", "", index))
    rows = re.findall(r'<tr class="(provisional|closed)" data-month="([\d-]+)">', index)
    assert rows == [("provisional", "2025-06"), ("closed", "2025-05")]  # newest first
    assert "provisional, data up to 18 June 2025" in index
    assert "In June 2025 so far (data up to 18 June 2025)" in text  # the month's summary
    # June closes: a full month's data. Its provisional report gives way to the first issue.
    con = connect(analytics)
    con.execute("update churn.data_cutoff set cutoff_date = date '2025-06-30'")
    con.close()
    closed, = run(analytics, root, ["2025-06"])
    assert (closed.action, closed.issue, closed.provisional) == ("issued", 1, False)
    assert 'id="provisional"' not in (root / "2025-06" / "churn-2025-06.en.html").read_text(encoding="utf-8")
    fi = (root / "index.fi.html").read_text(encoding="utf-8")
    assert fi.count('class="closed"') == 2 and "päättynyt" in fi


def test_a_closed_month_is_not_overwritten_by_older_data(analytics, tmp_path):
    root = tmp_path / "churn"
    con = connect(analytics)
    con.execute("update churn.data_cutoff set cutoff_date = date '2025-06-30'")
    con.close()
    run(analytics, root, ["2025-06"])
    con = connect(analytics)
    con.execute("update churn.data_cutoff set cutoff_date = date '2025-06-18'")
    con.close()
    with pytest.raises(ReportError, match="archived as a closed month"):
        run(analytics, root, ["2025-06"])


def test_an_empty_archive_has_an_index_too(tmp_path):
    written = write_index(tmp_path / "churn", controller=CONTROLLER)
    assert [p.name for p in written] == ["index.en.html", "index.fi.html"]
    assert "No report has been archived yet." in written[0].read_text(encoding="utf-8")
