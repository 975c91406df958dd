"""What the churn report shows, read from the churn marts: one month's figures and their history.

Small aggregates only, read from the analytics database (read-only) into plain Python values. Nothing here is
computed that the marts already hold: the report's figures are the marts' columns (models/marts/churn/
_churn__models.yml), and the few it derives (ARPA, LTV, quick ratio: reports/figures.py) are ratios of them.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from core import render
from core.sql import table_columns

COHORT_ROWS = 24
SEGMENT_MONTHS = 12
# Tables the report cannot do without; the others only empty their own section when missing.
REQUIRED = ("monthly_movements", "data_cutoff")
OPTIONAL = ("revenue_retention", "cohort_retention", "churn_by_segment", "lost_accounts", "tenure_survival")


class ReportError(Exception):
    """The report cannot be made from this database (no churn marts, or no such month)."""


def _plain(value):
    """DuckDB values as the report needs them: DECIMAL money as float (display only), timestamps as-is."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def as_date(value) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def month_add(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def parse_month(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}", text or ""):
        raise ReportError(f"{text!r} is not a month YYYY-MM")
    year, month = map(int, text.split("-"))
    if not 1 <= month <= 12:
        raise ReportError(f"{text!r} is not a month YYYY-MM")
    return date(year, month, 1)


@dataclass
class ReportData:
    """Everything the report shows, as plain Python values: the month's figures and their history."""

    month: date
    partial: bool  # the running month: the cut-off is before its last day, its figures are provisional
    cutoff: dict
    movements: list[dict]  # every month up to and including the report month, oldest first
    retention: dict[date, dict]  # month -> 12-month GRR/NRR
    cohorts: list[dict]
    segments: list[dict]
    lost: list[dict]
    survival: list[dict]
    quality: dict | None
    failed_checks: list[dict] = field(default_factory=list)  # quality.results of the same run that failed
    missing: list[str] = field(default_factory=list)

    @property
    def current(self) -> dict:
        return self.movements[-1]

    def at(self, month: date) -> dict | None:
        """The monthly_movements row of `month`, if the data reaches back that far."""
        return next((row for row in reversed(self.movements) if row["month"] == month), None)

    @property
    def previous(self) -> dict | None:
        return self.at(month_add(self.month, -1))

    @property
    def year_before(self) -> dict | None:
        """The same month a year earlier: the comparison that seasonality does not distort."""
        return self.at(month_add(self.month, -12))

    @property
    def cutoff_date(self) -> date | None:
        return as_date(self.cutoff.get("cutoff_date"))


def _tables(con) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}


def latest_closed_month(cutoff: dict, months: list[date]) -> date:
    """The latest closed month: the cut-off month if the cut-off is its last day, else the month before.

    A service counts in a month if active on the month's last day; before that day the cut-off month's
    figures are provisional (services can still end), so they are not the default.
    """
    cutoff_date = as_date(cutoff.get("cutoff_date"))
    cutoff_month = as_date(cutoff.get("cutoff_month")) or (cutoff_date.replace(day=1) if cutoff_date else None)
    if cutoff_month is None:
        # No cut-off recorded: the spine ends at the cut-off month, so its last month is the partial one.
        cutoff_month = months[-1]
    complete = cutoff_month
    if cutoff_date is None or cutoff_date.day != calendar.monthrange(cutoff_date.year, cutoff_date.month)[1]:
        complete = month_add(cutoff_month, -1)
    candidates = [m for m in months if m <= complete]
    if not candidates:
        raise ReportError(f"no complete month in the data (cut-off {cutoff_date or cutoff_month})")
    return candidates[-1]


def is_partial(month: date, cutoff: dict) -> bool:
    cutoff_date = as_date(cutoff.get("cutoff_date"))
    if cutoff_date is None:
        return False
    last_day = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
    return cutoff_date < last_day


def months_to_report(con) -> tuple[date, date | None]:
    """(the latest closed month, the running month or None): what the daily job archives."""
    _require(con)
    cutoff = (_rows(con, "select * from churn.data_cutoff") or [{}])[0]
    months = [as_date(m) for (m,) in con.execute("select month from churn.monthly_movements order by month").fetchall()]
    if not months:
        raise ReportError("churn.monthly_movements is empty: no month to report")
    closed = latest_closed_month(cutoff, months)
    running = months[-1] if months[-1] > closed and is_partial(months[-1], cutoff) else None
    return closed, running


def _require(con) -> set[str]:
    tables = _tables(con)
    absent = [t for t in REQUIRED if f"churn.{t}" not in tables]
    if absent:
        raise ReportError(f"the analytics database has no churn.{', churn.'.join(absent)}: "
                          "run `warehouse build` (the churn marts) first")
    return tables


def load(con, month: str | date | None = None) -> ReportData:
    """Read the report's aggregates for `month` (None: the latest closed month) from the churn marts."""
    tables = _require(con)
    missing = [t for t in OPTIONAL if f"churn.{t}" not in tables]
    cutoff_rows = _rows(con, "select * from churn.data_cutoff")
    cutoff = cutoff_rows[0] if cutoff_rows else {}
    movements = _rows(con, "select * from churn.monthly_movements order by month")
    for row in movements:
        row["month"] = as_date(row["month"])
    months = [r["month"] for r in movements]
    if not months:
        raise ReportError("churn.monthly_movements is empty: no month to report")
    if month is None:
        chosen = latest_closed_month(cutoff, months)
    else:
        chosen = parse_month(month) if isinstance(month, str) else month.replace(day=1)
        if chosen not in months:
            raise ReportError(f"{render.month_iso(chosen)} is not in the data: months run from "
                              f"{render.month_iso(months[0])} to {render.month_iso(months[-1])}")
    movements = [r for r in movements if r["month"] <= chosen]

    retention: dict[date, dict] = {}
    if "revenue_retention" not in missing:  # one row per month (its primary key)
        retention = {as_date(r["month"]): {"grr": r["gross_revenue_retention"], "nrr": r["net_revenue_retention"]}
                     for r in _rows(con, """select month, gross_revenue_retention, net_revenue_retention
                                           from churn.revenue_retention where month <= ?""", [chosen])}

    cohorts: list[dict] = []
    if "cohort_retention" not in missing:
        # Only what was known at the end of the report month: a report for May looks the same in July.
        cohorts = _rows(con, """
            select cohort_month, months_since_start, cohort_customers, active_customers, logo_retention,
                   revenue_retention
            from churn.cohort_retention
            where cohort_month >= ? and cohort_month < ?
              and date_add(cohort_month, to_months(cast(months_since_start as integer))) <= ?
            order by cohort_month, months_since_start""",
                        [month_add(chosen, -COHORT_ROWS), chosen, chosen])
        for row in cohorts:
            row["cohort_month"] = as_date(row["cohort_month"])

    segments: list[dict] = []
    if "churn_by_segment" not in missing:
        segments = _rows(con, "select * from churn.churn_by_segment where month > ? and month <= ?",
                         [month_add(chosen, -SEGMENT_MONTHS), chosen])
        for row in segments:
            row["month"] = as_date(row["month"])

    lost: list[dict] = []
    if "lost_accounts" not in missing:
        lost = _rows(con, "select * from churn.lost_accounts where month = ? order by lost_mrr desc, customer_key",
                     [chosen])

    survival = [] if "tenure_survival" in missing else _rows(
        con, "select tenure_months, survival from churn.tenure_survival order by tenure_months")

    quality, failed = None, []
    if "quality.summary" in tables:
        rows = _rows(con, "select * from quality.summary")
        # The newest run if the table keeps a history.
        quality = max(rows, key=lambda r: str(r.get("run_at"))) if rows else None
    results = set(table_columns(con, "quality.results"))
    if quality and {"suite", "success"} <= results:
        same_run = "and run_id = ?" if quality.get("run_id") and "run_id" in results else ""
        failed = _rows(con, f"""select suite, expectation, severity, description, unexpected_count
                                from quality.results where not success {same_run}
                                order by severity = 'error' desc, suite, expectation""",
                       [quality["run_id"]] if same_run else [])

    return ReportData(month=chosen, partial=is_partial(chosen, cutoff), cutoff=cutoff, movements=movements,
                      retention=retention, cohorts=cohorts, segments=segments, lost=lost, survival=survival,
                      quality=quality, failed_checks=failed, missing=missing)


def fingerprint(data: ReportData) -> str:
    """What the month's own figures are: its row of the bridge, its 12-month retention, its segments and lost
    accounts. A closed month's archived report is issued again only when this changes (a late export or a
    correction of that month); history before it, the quality banner or the survival curve do not count."""
    def rows(items):
        return sorted(json.dumps(item, sort_keys=True, default=str) for item in items)

    figures = {
        "month": data.current,
        "retention": data.retention.get(data.month, {}),
        "segments": rows(r for r in data.segments if r["month"] == data.month),
        "lost": rows(data.lost),
        "partial": data.partial,
    }
    text = json.dumps(figures, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
