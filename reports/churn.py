"""The management churn report: one month's churn figures from the churn marts as HTML and PDF.

Reads small aggregates from the analytics database (read-only), draws the charts as inline SVG and renders
one self-contained HTML file (no network requests, works offline) and its PDF, in English or Finnish.
"""

from __future__ import annotations

import base64
import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from markupsafe import Markup

from core import files, render
from core.db import connect
from core.settings import Limits
from reports import charts

TEMPLATE = "reports/templates/churn.html.j2"
LABELS = Path(__file__).resolve().parent / "labels.yml"
TREND_MONTHS = 24
COHORT_ROWS = 24
SEGMENT_MONTHS = 12
LOST_ROWS = 12
MAX_SEGMENTS = 8  # per panel; smaller segments are merged into one
OTHER = "other_segments"
SEGMENT_DIMENSIONS = ("product_category", "customer_type", "region", "tenure_band")
# Tables the report cannot do without; the others only empty their own section when missing.
REQUIRED = ("monthly_movements", "data_cutoff")
SVG_NS = "http://www.w3.org/2000/svg"  # a name, never fetched; only in the PDF's standalone chart images


class ReportError(Exception):
    """The report cannot be made from this database (no churn marts, or no such month)."""


def label(key: str, lang: str, **values) -> str:
    """The report's words for `key` (reports/labels.yml `text`); an unknown key, a new segment value, as it is."""
    return render.load_labels(LABELS, "text").text(key, lang, **values)


def _definitions(lang: str) -> list[tuple[str, str]]:
    """The appendix: (term, paragraph) in the order of reports/labels.yml `definitions`."""
    return [(entry[lang]["term"], entry[lang]["text"]) for entry in render.read_yaml(LABELS)["definitions"].values()]


# --- loading -------------------------------------------------------------------------------------------
def _plain(value):
    """DuckDB values as the report needs them: DECIMAL money as float (display only), timestamps as-is."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def _as_date(value) -> date | None:
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
    partial: bool
    cutoff: dict
    movements: list[dict]  # every month up to and including the report month, oldest first
    retention: dict[date, dict]  # month -> 12-month GRR/NRR
    cohorts: list[dict]
    segments: list[dict]
    lost: list[dict]
    survival: list[dict]
    quality: dict | None
    missing: list[str] = field(default_factory=list)

    @property
    def current(self) -> dict:
        return self.movements[-1]

    @property
    def previous(self) -> dict | None:
        if len(self.movements) > 1 and self.movements[-2]["month"] == month_add(self.month, -1):
            return self.movements[-2]
        return None


def _tables(con) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}


def _default_month(cutoff: dict, months: list[date]) -> date:
    """The latest complete month: the cut-off month if the cut-off is its last day, else the month before.

    A service counts in a month if active on the month's last day; before that day the cut-off month's
    figures are provisional (services can still end), so they are not the default.
    """
    cutoff_date = _as_date(cutoff.get("cutoff_date"))
    cutoff_month = _as_date(cutoff.get("cutoff_month")) or (cutoff_date.replace(day=1) if cutoff_date else None)
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


def _is_partial(month: date, cutoff: dict) -> bool:
    cutoff_date = _as_date(cutoff.get("cutoff_date"))
    if cutoff_date is None:
        return False
    last_day = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
    return cutoff_date < last_day


def load(con, month: str | date | None = None) -> ReportData:
    """Read the report's aggregates for `month` (None: the latest complete month) from the churn marts."""
    tables = _tables(con)
    absent = [t for t in REQUIRED if f"churn.{t}" not in tables]
    if absent:
        raise ReportError(f"the analytics database has no churn.{', churn.'.join(absent)}: "
                          "run `warehouse build` (the churn marts) first")
    missing = [t for t in ("revenue_retention", "cohort_retention", "churn_by_segment", "lost_accounts",
                           "tenure_survival") if f"churn.{t}" not in tables]
    cutoff_rows = _rows(con, "select * from churn.data_cutoff")
    cutoff = cutoff_rows[0] if cutoff_rows else {}
    movements = _rows(con, "select * from churn.monthly_movements order by month")
    for row in movements:
        row["month"] = _as_date(row["month"])
    months = [r["month"] for r in movements]
    if not months:
        raise ReportError("churn.monthly_movements is empty: no month to report")
    if month is None:
        chosen = _default_month(cutoff, months)
    else:
        chosen = parse_month(month) if isinstance(month, str) else month.replace(day=1)
        if chosen not in months:
            raise ReportError(f"{render.month_iso(chosen)} is not in the data: months run from "
                              f"{render.month_iso(months[0])} to {render.month_iso(months[-1])}")
    movements = [r for r in movements if r["month"] <= chosen]

    retention: dict[date, dict] = {}
    if "revenue_retention" not in missing:
        by_month: dict[date, list[dict]] = {}
        for row in _rows(con, "select * from churn.revenue_retention where month <= ? order by month", [chosen]):
            by_month.setdefault(_as_date(row["month"]), []).append(row)
        retention = {m: _retention(rows) for m, rows in by_month.items()}

    cohorts: list[dict] = []
    if "cohort_retention" not in missing:
        # Only what was known at the end of the report month: a report for May looks the same in July.
        cohorts = _rows(con, """
            select cohort_month, months_since_start, cohort_customers, active_customers, logo_retention
            from churn.cohort_retention
            where cohort_month >= ? and cohort_month < ?
              and date_add(cohort_month, to_months(cast(months_since_start as integer))) <= ?
            order by cohort_month, months_since_start""",
                        [month_add(chosen, -COHORT_ROWS), chosen, chosen])
        for row in cohorts:
            row["cohort_month"] = _as_date(row["cohort_month"])

    segments: list[dict] = []
    if "churn_by_segment" not in missing:
        segments = _rows(con, "select * from churn.churn_by_segment where month > ? and month <= ?",
                         [month_add(chosen, -SEGMENT_MONTHS), chosen])
        for row in segments:
            row["month"] = _as_date(row["month"])

    lost: list[dict] = []
    if "lost_accounts" not in missing:
        lost = _rows(con, "select * from churn.lost_accounts where month = ? order by lost_mrr desc, customer_key",
                     [chosen])

    survival = [] if "tenure_survival" in missing else _rows(
        con, "select tenure_months, survival from churn.tenure_survival order by tenure_months")

    quality = None
    if "quality.summary" in tables:
        rows = _rows(con, "select * from quality.summary")
        # The newest run if the table keeps a history.
        quality = max(rows, key=lambda r: str(r.get("run_at"))) if rows else None

    return ReportData(month=chosen, partial=_is_partial(chosen, cutoff), cutoff=cutoff, movements=movements,
                      retention=retention, cohorts=cohorts, segments=segments, lost=lost, survival=survival,
                      quality=quality, missing=missing)


def _retention(rows: list[dict]) -> dict:
    """12-month GRR/NRR of a month: the mart's ratios when it has one row, ratios of the sums otherwise."""
    if len(rows) == 1:
        row = rows[0]
        return {"grr": row.get("gross_revenue_retention"), "nrr": row.get("net_revenue_retention")}
    start = sum(r.get("cohort_start_mrr") or 0 for r in rows)
    if not start:
        return {"grr": None, "nrr": None}
    return {"grr": sum(r.get("retained_mrr") or 0 for r in rows) / start,
            "nrr": sum(r.get("end_mrr") or 0 for r in rows) / start}


# --- presentation --------------------------------------------------------------------------------------
@dataclass
class Tile:
    key: str
    label: str
    value: str
    raw: float | None
    change: str
    tone: str  # good | bad | neutral: the colour of the change


def _tone(delta, higher_is_better: bool) -> str:
    if delta is None or abs(delta) < 1e-9:
        return "neutral"
    return "good" if (delta > 0) == higher_is_better else "bad"


def _tiles(data: ReportData, lang: str) -> list[Tile]:
    cur, prev = data.current, data.previous
    ret_now = data.retention.get(data.month, {})
    ret_prev = data.retention.get(month_add(data.month, -1), {})
    specs = [
        ("customers", cur.get("customers_end"), prev and prev.get("customers_end"), "count", True),
        ("mrr", cur.get("end_mrr"), prev and prev.get("end_mrr"), "money", True),
        ("logo_churn_rate", cur.get("logo_churn_rate"), prev and prev.get("logo_churn_rate"), "rate", False),
        ("gross_mrr_churn_rate", cur.get("gross_mrr_churn_rate"), prev and prev.get("gross_mrr_churn_rate"),
         "rate", False),
        ("net_mrr_churn_rate", cur.get("net_mrr_churn_rate"), prev and prev.get("net_mrr_churn_rate"), "rate",
         False),
        ("grr", ret_now.get("grr"), ret_prev.get("grr"), "rate", True),
        ("nrr", ret_now.get("nrr"), ret_prev.get("nrr"), "rate", True),
    ]
    tiles = []
    for key, value, before, kind, higher_is_better in specs:
        delta = None if value is None or before is None else value - before
        if kind == "count":
            shown = render.integer(value, lang)
            change = "" if delta is None else render.integer(delta, lang, sign=True)
        elif kind == "money":
            shown = render.money(value, lang)
            change = "" if delta is None else render.money(delta, lang, sign=True)
        else:
            shown = render.percent(value, lang)
            change = "" if delta is None else render.points(delta, lang)
        if kind != "rate" and delta is not None and before:
            change += f" ({render.percent(delta / before, lang, sign=True)})"
        if value is None:
            shown = label("not_available", lang)
        if not change:
            change = label("no_previous", lang) if data.previous is None else ""
        tiles.append(Tile(key, label(key, lang), shown, value, change, _tone(delta, higher_is_better)))
    return tiles


def _segment_label(value, lang: str) -> str:
    return label("unknown", lang) if value is None else label(str(value), lang)


def _tenure_order(segment) -> tuple:
    """Tenure bands in numeric order ('0-5' < '6-11' < '24+'), whatever dash or suffix the mart uses."""
    found = re.match(r"\D*(\d+)", str(segment))
    return (0, int(found[1])) if found else (1, str(segment))


def _segment_panels(data: ReportData, lang: str) -> list[tuple]:
    panels = []
    for dimension in SEGMENT_DIMENSIONS:
        rows = [r for r in data.segments if r["dimension"] == dimension]
        if not rows:
            continue
        totals: dict = {}
        for r in rows:
            t = totals.setdefault(r["segment"], {"start": 0.0, "churned": 0.0, "now": None})
            t["start"] += r.get("start_mrr") or 0
            t["churned"] += r.get("churned_mrr") or 0
            if r["month"] == data.month:
                t["now"] = (r.get("churned_mrr") or 0) / r["start_mrr"] if r.get("start_mrr") else None
        if dimension == "tenure_band":
            order = sorted(totals, key=_tenure_order)
        else:  # the biggest segments first: what matters most to revenue
            order = sorted(totals, key=lambda s: -totals[s]["start"])
            if len(order) > MAX_SEGMENTS:
                # The small ones together (e.g. 15 regions): their rates are noise, and the panel stays legible.
                rest = order[MAX_SEGMENTS - 1:]
                merged = {"start": sum(totals[s]["start"] for s in rest),
                          "churned": sum(totals[s]["churned"] for s in rest), "now": None}
                now = [r for r in rows if r["month"] == data.month and r["segment"] in rest]
                now_start = sum(r.get("start_mrr") or 0 for r in now)
                if now_start:
                    merged["now"] = sum(r.get("churned_mrr") or 0 for r in now) / now_start
                totals[OTHER] = merged
                order = [*order[:MAX_SEGMENTS - 1], OTHER]
        # Months per segment differ only if a segment is new; the rate is per month on average.
        avg = [totals[s]["churned"] / totals[s]["start"] if totals[s]["start"] else None for s in order]
        names = [_segment_label(s, lang) for s in order]
        if dimension == "tenure_band":  # the mart's bands read '12-23 months'
            names = [re.sub(r"\s*months?$", f" {label('months_abbr', lang)}", n) for n in names]
        panels.append((label(dimension, lang), names, avg,
                       [totals[s]["now"] for s in order]))
    return panels


def _reasons(data: ReportData, lang: str) -> tuple[list[str], list[float], list[str], list[str]]:
    totals: dict = {}
    for r in data.segments:
        if r["dimension"] == "termination_reason":
            t = totals.setdefault(r["segment"], [0.0, 0])
            t[0] += r.get("churned_mrr") or 0
            t[1] += int(r.get("customers_churned") or 0)
    order = sorted(totals, key=lambda s: -totals[s][0])
    colours = [charts.RED if s == "non_payment" else charts.BLUE for s in order]
    notes = [label("n_customers", lang, n=render.integer(totals[s][1], lang)) for s in order]
    return [_segment_label(s, lang) for s in order], [totals[s][0] for s in order], colours, notes


def _account_name(row: dict, lang: str) -> str:
    """Businesses by name; persons (and anyone without a name) only by the start of the pseudonymous key."""
    name = row.get("business_name")
    if row.get("customer_type") == "business" and name:
        return str(name)
    return f"{label('person_key' if row.get('customer_type') == 'person' else 'unknown', lang)} " \
           f"#{str(row.get('customer_key') or '')[:8]}"


def _reasons_text(value, lang: str) -> str:
    if value is None:
        return render.DASH
    items = value if isinstance(value, list | tuple) else re.split(r"\s*[,;|]\s*", str(value))
    return ", ".join(_segment_label(v, lang) for v in items if v)


def _lost_rows(data: ReportData, lang: str) -> list[dict]:
    return [{
        "name": _account_name(r, lang),
        "type": _segment_label(r.get("customer_type"), lang),
        "is_person": r.get("customer_type") != "business",
        "mrr": render.money(r.get("lost_mrr"), lang, decimals=2),
        "tenure": render.DASH if r.get("tenure_months") is None
        else f"{render.integer(r['tenure_months'], lang)} {label('months_abbr', lang)}",
        "reasons": _reasons_text(r.get("termination_reasons"), lang),
        "churn_type": _segment_label(r.get("churn_type"), lang) if r.get("churn_type") else render.DASH,
        "involuntary": r.get("churn_type") == "involuntary",
    } for r in data.lost[:LOST_ROWS]]


def _cohort_matrix(data: ReportData, lang: str) -> tuple[list[str], list[int], np.ndarray]:
    cohorts = sorted({r["cohort_month"] for r in data.cohorts})
    if not cohorts:
        return [], [], np.empty((0, 0))
    width = months_between(cohorts[0], data.month)
    matrix = np.full((len(cohorts), width), np.nan)
    index = {c: i for i, c in enumerate(cohorts)}
    for r in data.cohorts:
        k = int(r["months_since_start"])
        if k < width and r.get("logo_retention") is not None:
            matrix[index[r["cohort_month"]], k] = float(r["logo_retention"])
    labels = [f"{render.month_short(c, lang)} ({render.integer(_cohort_size(data, c), lang)})" for c in cohorts]
    return labels, list(range(width)), matrix


def _cohort_size(data: ReportData, cohort: date):
    return next((r["cohort_customers"] for r in data.cohorts if r["cohort_month"] == cohort), None)


def _charts(data: ReportData, lang: str) -> dict[str, str]:
    def money(v):
        return render.money(v, lang)

    def pct(v):
        return render.percent(v, lang, decimals=0 if abs(v) >= 0.1 or v == 0 else 1)

    def pct1(v):
        return render.percent(v, lang)

    def lbl(key, **kw):
        return label(key, lang, **kw)

    month_name = render.month_name(data.month, lang)
    cur = data.current
    charts.reset_ids()  # the same data gives the same file, however many reports this process made
    out: dict[str, str] = {}
    steps = [(lbl(k), (cur.get(k) or 0) * (-1 if k in ("contraction_mrr", "churned_mrr") else 1))
             for k in ("start_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
                       "churned_mrr", "end_mrr")]
    out["bridge"] = charts.bridge(steps, money, f"{lbl('bridge')} {month_name}", lbl("axis_not_zero"))
    trend = data.movements[-TREND_MONTHS:]
    months = [(render.MONTHS_SHORT[lang][r["month"].month - 1], str(r["month"].year), r["month"].month)
              for r in trend]
    last = len(trend) - 1
    out["mrr_trend"] = charts.line(months, [(lbl("mrr"), [r.get("end_mrr") for r in trend], charts.BLUE)], money,
                                   lbl("mrr_trend"), area=True, highlight=last)
    out["customers_trend"] = charts.line(
        months, [(lbl("customers"), [r.get("customers_end") for r in trend], charts.BLUE)],
        lambda v: render.integer(v, lang), lbl("customers_trend"), area=True, highlight=last)
    out["churn_trend"] = charts.line(months, [
        (lbl("logo_churn_rate"), [r.get("logo_churn_rate") for r in trend], charts.BLUE),
        (lbl("gross_mrr_churn_rate"), [r.get("gross_mrr_churn_rate") for r in trend], charts.RED),
        (lbl("net_mrr_churn_rate"), [r.get("net_mrr_churn_rate") for r in trend], charts.ORANGE),
    ], pct1, lbl("churn_trend"), zero=True, highlight=last)
    out["churn_by_type"] = charts.stacked(months, [
        (lbl("voluntary"), [r.get("voluntary_churned_mrr") for r in trend], charts.LIGHT_BLUE),
        (lbl("involuntary"), [r.get("involuntary_churned_mrr") for r in trend], charts.RED),
    ], money, lbl("churn_mrr_by_type"))

    rows, columns, matrix = _cohort_matrix(data, lang)
    out["cohorts"] = charts.heatmap(rows, columns, matrix, lambda v: render.number(v * 100, lang), lbl("cohorts"),
                                    lbl("cohort_month"), lbl("months_since_start")) if rows else \
        charts.empty(lbl("no_data"))
    out["survival"] = charts.survival([r["tenure_months"] for r in data.survival],
                                      [r["survival"] for r in data.survival], pct, lbl("survival"),
                                      lbl("tenure_months")) if data.survival else \
        charts.empty(lbl("no_data"), width=charts.HALF)

    panels = _segment_panels(data, lang)
    out["segments"] = charts.segment_panels(panels, pct1, lbl("segments"), lbl("twelve_months"),
                                            render.month_name(data.month, lang)) if panels else \
        charts.empty(lbl("no_data"))
    names, values, colours, notes = _reasons(data, lang)
    out["reasons"] = charts.bars(names, values, colours, money, lbl("termination_reason"), notes=notes,
                                 width=charts.FULL) if names else charts.empty(lbl("no_data"))
    return out


def _freshness(data: ReportData, lang: str) -> list[tuple[str, str]]:
    """The cut-off row as label/value pairs; columns beyond the documented ones (per-source newest exports)
    are listed under their own names, so a new column shows up without a code change."""
    known = {"cutoff_date": "data_cutoff", "cutoff_month": None, "first_month": "first_month",
             "built_at": "built_at"}
    items = []
    per_source = [c for c in data.cutoff if re.search(r"export", c) and c != "newest_export_per_source"]
    for column, value in data.cutoff.items():
        if column in known and known[column] is None:
            continue
        if column == "newest_export_per_source" and per_source:
            continue  # the same dates as the per-source columns, as one string
        name = label(known[column], lang) if column in known else _column_label(column, lang)
        if column == "first_month":
            shown = render.month_name(_as_date(value), lang)
        elif isinstance(value, datetime):
            shown = render.timestamp(value, lang)
        elif isinstance(value, date):
            shown = render.long_date(value, lang)
        else:
            shown = render.DASH if value is None else str(value)
        items.append((name, shown))
    return items


def _column_label(column: str, lang: str) -> str:
    """`crm_newest_export` -> 'Newest export: CRM'; other names readable as they are."""
    found = re.fullmatch(r"(?:newest_)?(\w+?)_(?:newest_)?export\w*", column)
    if found:
        source = found[1].replace("_", " ")
        return label("newest_export", lang, source=source.upper() if len(source) <= 3 else
                          label(source, lang))
    return column.replace("_", " ").capitalize()


def _quality_banner(data: ReportData, lang: str) -> tuple[str, str] | None:
    q = data.quality
    if not q:
        return None
    run_at = q.get("run_at")
    values = {"run_at": render.timestamp(run_at, lang) if isinstance(run_at, datetime | date) else str(run_at),
              **{key: render.integer(q.get(key) or 0, lang) for key in ("checks", "errors", "warnings")}}
    bad = bool(q.get("errors"))
    return ("bad" if bad else "ok"), label("quality_bad" if bad else "quality_ok", lang, **values)


def context(data: ReportData, lang: str, controller: str) -> dict:
    """Template variables: every string already formatted for the language."""
    month_name = render.month_name(data.month, lang)
    forms = render.month_forms(data.month, lang)
    previous = month_add(data.month, -1)
    cutoff_date = _as_date(data.cutoff.get("cutoff_date"))
    more = data.lost[LOST_ROWS:]
    cur = data.current
    churned = (cur.get("churned_mrr") or 0)
    return {
        "t": render.load_labels(LABELS, "text").in_lang(lang),
        "controller": controller,
        "month": render.month_iso(data.month),
        "month_name": month_name,
        "vs_previous": label("vs_previous", lang, month=render.month_name(previous, lang)),
        "partial": label("partial_month", lang, date=render.long_date(cutoff_date, lang)) if data.partial
        else None,
        "cutoff": render.long_date(cutoff_date, lang),
        "tiles": _tiles(data, lang),
        "svgs": _charts(data, lang),
        "bridge_caption": label("bridge_caption", lang, **forms),
        "segments_caption": label("segments_caption", lang, **forms),
        "lost_caption": label("lost_caption", lang, **forms),
        "involuntary_share": label(
            "involuntary_share", lang, share=render.percent((cur.get("involuntary_churned_mrr") or 0) / churned, lang),
            **forms) if churned else None,
        "lost": _lost_rows(data, lang),
        "lost_missing": "lost_accounts" in data.missing,
        "has_previous": data.previous is not None,
        "more_lost": label("more_lost", lang, n=render.integer(len(more), lang),
                           mrr=render.money(sum(r.get("lost_mrr") or 0 for r in more), lang, decimals=2))
        if more else None,
        "freshness": _freshness(data, lang),
        "quality": _quality_banner(data, lang),
        "definitions": _definitions(lang),
        "generated_at": render.timestamp(datetime.now(UTC), lang),
    }


def _inline(svgs: dict[str, str]) -> dict[str, Markup]:
    # Our own SVG: every text in it came through matplotlib, which escapes it.
    return {k: Markup(v) for k, v in svgs.items()}


def _images(svgs: dict[str, str]) -> dict[str, Markup]:
    """The charts as <img> data URIs, for WeasyPrint only: it then draws each chart as one image instead of
    running the page's CSS cascade over thousands of SVG nodes (3x faster, same look)."""
    out = {}
    for key, svg in svgs.items():
        standalone = svg.replace("<svg ", f'<svg xmlns="{SVG_NS}" ', 1)
        encoded = base64.b64encode(standalone.encode("utf-8")).decode("ascii")
        out[key] = Markup(f'<img class="chart" alt="" src="data:image/svg+xml;base64,{encoded}">')
    return out


def pages(data: ReportData, lang: str, controller: str) -> tuple[str, str]:
    """The report as (HTML with inline SVG charts, HTML for the PDF with the same charts as images)."""
    variables = context(data, lang, controller)
    svgs = variables.pop("svgs")
    return (render.render(TEMPLATE, lang=lang, **variables, charts=_inline(svgs)),
            render.render(TEMPLATE, lang=lang, **variables, charts=_images(svgs)))


def write_pdf(html: str, target) -> None:
    import weasyprint
    from weasyprint.urls import URLFetcher

    # Everything is inline (data: URLs at most); a fetcher that allows nothing else makes any stray
    # reference fail loudly instead of going to the network.
    fetcher = URLFetcher(allowed_protocols=["data"], fail_on_errors=True)
    weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(target)


def render_churn_report(analytics: Path, out_dir: Path, *, controller: str, month: str | None = None,
                        lang: str = "en", pdf: bool = True, limits: Limits | None = None) -> dict[str, Path]:
    """Write churn-YYYY-MM.<lang>.html (self-contained, works offline) and .pdf into out_dir; return their paths.

    `controller`: the company the report is of (privacy/register.yml, read by the pipeline).

    month None = the latest complete month in the data: the cut-off month if the cut-off date is its last
    day, otherwise the month before it. An explicit month may be the (incomplete) cut-off month; the report
    then says so. Raises ReportError if the churn marts are missing or the month is not in the data.
    """
    render.check_lang(lang)
    analytics = Path(analytics)
    if not analytics.exists():
        raise ReportError(f"no analytics database at {analytics}: run `warehouse build` first")
    con = connect(analytics, read_only=True, limits=limits)
    try:
        data = load(con, month)
    finally:
        con.close()
    html, pdf_html = pages(data, lang, controller)
    out_dir = Path(out_dir)
    stem = f"churn-{render.month_iso(data.month)}.{lang}"
    paths = {"html": files.write_text(out_dir / f"{stem}.html", html)}
    if pdf:
        paths["pdf"] = out_dir / f"{stem}.pdf"
        with files.atomic_writer(paths["pdf"], binary=True) as handle:
            write_pdf(pdf_html, handle)
    return paths
