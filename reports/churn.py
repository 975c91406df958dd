"""The management churn report: one month's churn figures from the churn marts as HTML and PDF.

Reads small aggregates from the analytics database (read-only, reports/data.py), draws the charts as inline
SVG and renders one self-contained HTML file (no network requests, works offline) and its PDF, in English or
Finnish. Page 1 tells the month's story: a generated summary (reports/summary.py), the key figures against
the month before and the same month a year earlier (reports/figures.py), and the MRR bridge in customers and
euros. The archive of issued reports and their delivery by e-mail: reports/archive.py, reports/mail.py.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
from markupsafe import Markup

from core import files, render
from core.db import connect
from core.settings import Limits
from reports import charts, figures
from reports.data import ReportData, ReportError, as_date, load, month_add, months_between
from reports.labels import definitions, label, words
from reports.summary import as_html, summary

__all__ = ["Rendered", "ReportData", "ReportError", "load", "pages", "read", "render_churn_report", "render_month",
           "write"]

TEMPLATE = "reports/templates/churn.html.j2"
TREND_MONTHS = 24
LOST_ROWS = 12
MAX_SEGMENTS = 8  # per panel; smaller segments are merged into one
SMALL_SEGMENT = 30  # customers on average: below it a segment's rate swings by chance (drawn pale, hatched)
OTHER = "other_segments"
SEGMENT_DIMENSIONS = ("product_category", "customer_type", "region", "tenure_band")
SVG_NS = "http://www.w3.org/2000/svg"  # a name, never fetched; only in the PDF's standalone chart images


# --- presentation --------------------------------------------------------------------------------------
@dataclass
class Tile:
    key: str
    label: str
    value: str
    raw: float | None
    previous: figures.Change | None
    year_before: figures.Change | None
    running: bool  # a flow of the running month: no comparison yet


def _tiles(data: ReportData, lang: str) -> list[Tile]:
    return [Tile(f.key, label(f.key, lang), f.value or label("not_available", lang), f.raw, f.previous,
                 f.year_before, f.running) for f in figures.key_figures(data, lang).values()]


def _movement_table(data: ReportData, lang: str) -> list[dict]:
    """The MRR bridge in numbers: one column per movement, customers and MRR."""
    return [{"key": m.key, "label": label(f"movement_{m.key}", lang), "customers": m.customers_text,
             "mrr": m.mrr_text, "tone": "good" if m.mrr > 0 else "bad" if m.mrr < 0 else "neutral"}
            for m in figures.movements(data, lang).values()]


def _figure_notes(data: ReportData, lang: str) -> str:
    """How ARPA, LTV and the quick ratio are made, with the churn rate LTV used this month."""
    average = figures.average_logo_churn(data, data.month)
    return label("figure_notes", lang, months=figures.LTV_MONTHS,
                 average=render.percent(average, lang, decimals=2) if average is not None else render.DASH,
                 lifetime=render.integer(1 / average, lang) if average else render.DASH)


def _segment_label(value, lang: str) -> str:
    return label("unknown", lang) if value is None else label(str(value), lang)


def _tenure_order(segment) -> tuple:
    """Tenure bands in numeric order ('0-5' < '6-11' < '24+'), whatever dash or suffix the mart uses."""
    found = re.match(r"\D*(\d+)", str(segment))
    return (0, int(found[1])) if found else (1, str(segment))


def _segment_panels(data: ReportData, lang: str) -> tuple[list[tuple], dict[str, int]]:
    """Per dimension: segments with their average monthly gross MRR churn over 12 months (churn + contraction,
    the key figure's definition), this month's, and whether the segment is small; the segment names carry
    the average number of customers at the start of a month. Also: how many customers are `unknown` per
    dimension (a note explains them)."""
    panels, unknown = [], {}
    months = len({r["month"] for r in data.segments}) or 1
    for dimension in SEGMENT_DIMENSIONS:
        rows = [r for r in data.segments if r["dimension"] == dimension]
        if not rows:
            continue
        totals: dict = {}
        for r in rows:
            t = totals.setdefault(r["segment"], {"start": 0.0, "lost": 0.0, "customers": 0, "now": None})
            t["start"] += r.get("start_mrr") or 0
            t["lost"] += (r.get("churned_mrr") or 0) + (r.get("contraction_mrr") or 0)
            t["customers"] += r.get("customers_start") or 0
            if r["month"] == data.month:
                t["now"] = r.get("gross_mrr_churn_rate")
        if "unknown" in totals:
            unknown[dimension] = round(totals["unknown"]["customers"] / months)
        if dimension == "tenure_band":
            order = sorted(totals, key=_tenure_order)
        else:  # the biggest segments first: what matters most to revenue
            order = sorted(totals, key=lambda s: -totals[s]["start"])
            if len(order) > MAX_SEGMENTS:
                # The small ones together (e.g. 15 regions): their rates are noise, and the panel stays legible.
                rest = order[MAX_SEGMENTS - 1:]
                merged = {key: sum(totals[s][key] for s in rest) for key in ("start", "lost", "customers")}
                now = [r for r in rows if r["month"] == data.month and r["segment"] in rest]
                now_start = sum(r.get("start_mrr") or 0 for r in now)
                merged["now"] = sum((r.get("churned_mrr") or 0) + (r.get("contraction_mrr") or 0)
                                    for r in now) / now_start if now_start else None
                totals[OTHER] = merged
                order = [*order[:MAX_SEGMENTS - 1], OTHER]
        # Months per segment differ only if a segment is new; the rate is per month on average.
        avg = [totals[s]["lost"] / totals[s]["start"] if totals[s]["start"] else None for s in order]
        customers = [totals[s]["customers"] / months for s in order]
        names = [_segment_label(s, lang) for s in order]
        if dimension == "tenure_band":  # the mart's bands read '12-23 months'
            names = [re.sub(r"\s*months?$", f" {label('months_abbr', lang)}", n) for n in names]
        customers = [round(c) for c in customers]  # as shown: "(30)" is not "fewer than 30"
        names = [f"{n} ({render.integer(c, lang)})" for n, c in zip(names, customers, strict=True)]
        panels.append((label(dimension, lang), names, avg, [totals[s]["now"] for s in order],
                       [c < SMALL_SEGMENT for c in customers]))
    return panels, unknown


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


def _cohort_matrix(data: ReportData, lang: str, column: str) -> tuple[list[str], list[int], np.ndarray]:
    """Cohorts by months since their start: `logo_retention` (customers) or `revenue_retention` (MRR)."""
    cohorts = sorted({r["cohort_month"] for r in data.cohorts})
    if not cohorts:
        return [], [], np.empty((0, 0))
    width = months_between(cohorts[0], data.month)
    matrix = np.full((len(cohorts), width), np.nan)
    index = {c: i for i, c in enumerate(cohorts)}
    for r in data.cohorts:
        k = int(r["months_since_start"])
        if k < width and r.get(column) is not None:
            matrix[index[r["cohort_month"]], k] = float(r[column])
    labels = [f"{render.month_short(c, lang)} ({render.integer(_cohort_size(data, c), lang)})" for c in cohorts]
    return labels, list(range(width)), matrix


def _cohort_size(data: ReportData, cohort: date):
    return next((r["cohort_customers"] for r in data.cohorts if r["cohort_month"] == cohort), None)


def _risen_cells(matrix: np.ndarray) -> int:
    """Cells above the cell before them in their cohort's row: reactivated customers counting again."""
    if matrix.shape[1] < 2:
        return 0
    with np.errstate(invalid="ignore"):
        return int(np.nansum(matrix[:, 1:] > matrix[:, :-1] + 1e-12))


def _charts(data: ReportData, lang: str) -> tuple[dict[str, str], dict]:
    """Every chart as SVG, and what the captions say about them (cohort cells that rose, unknown segments)."""
    def money(v):
        return render.money(v, lang)

    def pct(v):
        return render.percent(v, lang, decimals=0 if abs(v) >= 0.1 or v == 0 else 1)

    def pct1(v):
        return render.percent(v, lang)

    def lbl(key, **kw):
        return label(key, lang, **kw)

    def counted(n):
        return lbl("n_customers_short", n=render.integer(n, lang))

    month_name = render.month_name(data.month, lang)
    cur = data.current
    charts.reset_ids()  # the same data gives the same file, however many reports this process made
    out: dict[str, str] = {}
    notes: dict = {}
    # The bridge's bars say how many customers each is: €1,293 of contraction from 3 customers or from 40.
    counts = {"start_mrr": "customers_start", "new_mrr": "customers_new", "expansion_mrr": "customers_expanded",
              "reactivation_mrr": "customers_reactivated", "contraction_mrr": "customers_contracted",
              "churned_mrr": "customers_churned", "end_mrr": "customers_end"}
    steps = [(f"{lbl(k)}\n{counted(cur[c])}" if cur.get(c) is not None else lbl(k),
              (cur.get(k) or 0) * (-1 if k in ("contraction_mrr", "churned_mrr") else 1)) for k, c in counts.items()]
    out["bridge"] = charts.bridge(steps, money, f"{lbl('bridge')} {month_name}", lbl("axis_not_zero"))
    trend = data.movements[-TREND_MONTHS:]
    months = [(render.MONTHS_SHORT[lang][r["month"].month - 1], str(r["month"].year), r["month"].month)
              for r in trend]
    last = len(trend) - 1
    out["movements"] = charts.movements(
        months,
        [(lbl("new_mrr"), [r.get("new_mrr") for r in trend], charts.BLUE),
         (lbl("expansion_mrr"), [r.get("expansion_mrr") for r in trend], charts.GREEN),
         (lbl("reactivation_mrr"), [r.get("reactivation_mrr") for r in trend], charts.LIGHT_BLUE)],
        [(lbl("contraction_mrr"), [r.get("contraction_mrr") for r in trend], charts.ORANGE),
         (lbl("churned_mrr"), [r.get("churned_mrr") for r in trend], charts.RED)],
        (lbl("net_change"), [(r.get("end_mrr") or 0) - (r.get("start_mrr") or 0) for r in trend]),
        lambda v: render.money(v, lang, sign=v > 0), lbl("movements_trend"))
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
    ], money, lbl("churn_mrr_by_type"), width=charts.HALF, height=2.0)

    for key, column in (("cohorts", "logo_retention"), ("revenue_cohorts", "revenue_retention")):
        rows, columns, matrix = _cohort_matrix(data, lang, column)
        notes[f"{key}_risen"] = _risen_cells(matrix) if rows else 0
        finite = matrix[np.isfinite(matrix)] if rows else np.empty(0)
        out[key] = charts.heatmap(
            rows, columns, matrix, lambda v: render.number(v * 100, lang), lbl(key), lbl("cohort_month"),
            lbl("months_since_start"), high=float(finite.max()) if finite.size else 1.0,
            row_height=0.125) if rows else charts.empty(lbl("no_data"))
    out["survival"] = charts.survival([r["tenure_months"] for r in data.survival],
                                      [r["survival"] for r in data.survival], pct, lbl("survival"),
                                      lbl("tenure_months"), width=charts.FULL, height=1.8) if data.survival else \
        charts.empty(lbl("no_data"))

    panels, notes["unknown"] = _segment_panels(data, lang)
    notes["small_segments"] = any(any(p[4]) for p in panels)
    out["segments"] = charts.segment_panels(panels, pct1, lbl("segments"), lbl("twelve_months"), month_name,
                                            lbl("small_segment", n=SMALL_SEGMENT)) if panels else \
        charts.empty(lbl("no_data"))
    names, values, colours, bar_notes = _reasons(data, lang)
    out["reasons"] = charts.bars(names, values, colours, money, lbl("termination_reason"), notes=bar_notes,
                                 width=charts.FULL) if names else charts.empty(lbl("no_data"))
    return out, notes


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
            shown = render.month_name(as_date(value), lang)
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


def bears_on_report(check: dict, report_checks: frozenset[str] | None) -> bool:
    """Whether a quality check is one of `report_checks` (`suite` for all its checks, `suite.check` for one);
    None: every check may bear on the report."""
    return report_checks is None or check["suite"] in report_checks or \
        f"{check['suite']}.{check.get('expectation')}" in report_checks


def _quality(data: ReportData, lang: str, report_checks: frozenset[str] | None) -> dict | None:
    """The data-quality banner and its detail: which failed checks bear on these figures.

    `report_checks`: the quality checks of the data the churn marts are computed from (the report's exposure,
    models/marts/churn/_churn__exposures.yml, through the pipeline); None: every failed check may bear on it.
    A failed check elsewhere (billing, ticket texts, a retention backlog) is named as not bearing on them."""
    q = data.quality
    if not q:
        return None
    run_at = q.get("run_at")
    when = render.timestamp(run_at, lang) if isinstance(run_at, datetime | date) else str(run_at)
    failed = data.failed_checks
    if not failed and q.get("errors"):  # a summary without its per-check rows: the counts are all there is
        return {"tone": "bad", "banner": label("quality_bad", lang, run_at=when, checks=render.integer(
            q.get("checks") or 0, lang), errors=render.integer(q.get("errors"), lang), warnings=render.integer(
            q.get("warnings") or 0, lang)), "rows": [], "others": None}
    bearing = [c for c in failed if bears_on_report(c, report_checks)]
    others = [c for c in failed if c not in bearing]
    errors = sum(c["severity"] == "error" for c in bearing)
    warnings = len(bearing) - errors

    def area(suite: str) -> str:
        key = f"suite_{suite}"
        return label(key, lang) if key in words(lang) else suite

    def counted(key: str, n: int) -> str:
        return label(f"{key}_{'one' if n == 1 else 'many'}", lang, n=render.integer(n, lang))

    other_areas = sorted({area(c["suite"]) for c in others})
    other_text = label(f"quality_others_{'one' if len(others) == 1 else 'many'}", lang,
                       n=render.integer(len(others), lang), areas=", ".join(other_areas)) if others else None
    found = [counted(kind, n) for kind, n in (("errors", errors), ("warnings", warnings)) if n]
    values = {"run_at": when, "errors": label("and", lang).join(found), "warnings": counted("warnings", warnings)}
    key = "quality_bearing_errors" if errors else "quality_bearing_warnings" if warnings else "quality_bearing_none"
    banner = label(key, lang, **values) + (f" {other_text}" if other_text else "")
    rows = [{"area": area(c["suite"]), "check": c.get("description") or c.get("expectation"),
             "name": c.get("expectation"), "severity": label(f"severity_{c['severity']}", lang),
             "is_error": c["severity"] == "error", "rows": render.integer(c.get("unexpected_count"), lang)}
            for c in bearing]
    return {"tone": "bad" if errors else "warn" if warnings else "ok", "banner": banner, "rows": rows,
            "others": other_text}


def _segment_notes(notes: dict, lang: str) -> list[str]:
    out = []
    if notes.get("small_segments"):
        out.append(label("small_segments_note", lang, n=SMALL_SEGMENT))
    for dimension, n in notes.get("unknown", {}).items():
        out.append(label(f"unknown_{dimension}", lang, n=render.integer(n, lang)))
    return out


def _cohort_notes(notes: dict, lang: str) -> list[str]:
    out = [label("cohorts_reactivation", lang)]
    if notes.get("cohorts_risen"):
        out.append(label("cohorts_risen", lang, n=render.integer(notes["cohorts_risen"], lang)))
    out.append(label("revenue_cohorts_note", lang))
    return out


def context(data: ReportData, lang: str, controller: str, report_checks: frozenset[str] | None = None) -> dict:
    """Template variables: every string already formatted for the language."""
    month_name = render.month_name(data.month, lang)
    forms = render.month_forms(data.month, lang)
    previous, year_before = month_add(data.month, -1), month_add(data.month, -12)
    more = data.lost[LOST_ROWS:]
    cur = data.current
    churned = (cur.get("churned_mrr") or 0)
    svgs, notes = _charts(data, lang)
    brief = summary(data, lang)
    return {
        "t": words(lang),
        "controller": controller,
        "month": render.month_iso(data.month),
        "month_name": month_name,
        "summary": brief,
        "summary_html": as_html(brief),  # the same text, its amounts kept whole on a line
        "compare": label("compare_note", lang, previous=render.month_name(previous, lang),
                         year_before=render.month_name(year_before, lang)),
        "previous_short": render.month_short(previous, lang),
        "year_before_short": render.month_short(year_before, lang),
        "provisional": label("provisional_month", lang, date=render.long_date(data.cutoff_date, lang), **forms)
        if data.partial else None,
        "cutoff": render.long_date(data.cutoff_date, lang),
        "tiles": _tiles(data, lang),
        "figure_notes": _figure_notes(data, lang),
        "movements": _movement_table(data, lang),
        "svgs": svgs,
        "bridge_caption": label("bridge_caption", lang, **forms),
        "cohort_notes": _cohort_notes(notes, lang),
        "segments_caption": label("segments_caption", lang, **forms),
        "segment_notes": _segment_notes(notes, lang),
        "lost_caption": label("lost_caption", lang, **forms),
        "involuntary_share": label(
            "involuntary_share", lang, share=render.percent((cur.get("involuntary_churned_mrr") or 0) / churned, lang),
            **forms) if churned else None,
        "lost": _lost_rows(data, lang),
        "lost_missing": "lost_accounts" in data.missing,
        "more_lost": label("more_lost", lang, n=render.integer(len(more), lang),
                           mrr=render.money(sum(r.get("lost_mrr") or 0 for r in more), lang, decimals=2))
        if more else None,
        "freshness": _freshness(data, lang),
        "quality": _quality(data, lang, report_checks),
        "definitions": definitions(lang),
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


@dataclass
class Rendered:
    """One month's report in one language, rendered but not yet written."""

    data: ReportData
    lang: str
    html: str  # with inline SVG charts
    pdf_html: str  # the same page with the charts as images, for WeasyPrint
    summary: str  # the generated summary the page opens with

    @property
    def stem(self) -> str:
        return f"churn-{render.month_iso(self.data.month)}.{self.lang}"


def render_month(data: ReportData, lang: str, controller: str,
                 report_checks: frozenset[str] | None = None) -> Rendered:
    render.check_lang(lang)
    variables = context(data, lang, controller, report_checks)
    svgs = variables.pop("svgs")
    return Rendered(data, lang, render.render(TEMPLATE, lang=lang, **variables, charts=_inline(svgs)),
                    render.render(TEMPLATE, lang=lang, **variables, charts=_images(svgs)), variables["summary"])


def pages(data: ReportData, lang: str, controller: str) -> tuple[str, str]:
    """The report as (HTML with inline SVG charts, HTML for the PDF with the same charts as images)."""
    rendered = render_month(data, lang, controller)
    return rendered.html, rendered.pdf_html


def write_pdf(html: str, target) -> None:
    import weasyprint
    from weasyprint.urls import URLFetcher

    # Everything is inline (data: URLs at most); a fetcher that allows nothing else makes any stray
    # reference fail loudly instead of going to the network.
    fetcher = URLFetcher(allowed_protocols=["data"], fail_on_errors=True)
    weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(target)


def write(rendered: Rendered, out_dir: Path, *, pdf: bool = True, stem: str | None = None) -> dict[str, Path]:
    """Write the rendered report as <stem>.html (self-contained) and <stem>.pdf, owner-only and atomic."""
    out_dir = Path(out_dir)
    stem = stem or rendered.stem
    paths = {"html": files.write_text(out_dir / f"{stem}.html", rendered.html)}
    if pdf:
        paths["pdf"] = out_dir / f"{stem}.pdf"
        with files.atomic_writer(paths["pdf"], binary=True) as handle:
            write_pdf(rendered.pdf_html, handle)
    return paths


def read(analytics: Path, month: str | date | None = None, limits: Limits | None = None) -> ReportData:
    """The report's data for `month` from the analytics database at `analytics` (read-only)."""
    analytics = Path(analytics)
    if not analytics.exists():
        raise ReportError(f"no analytics database at {analytics}: run `warehouse build` first")
    con = connect(analytics, read_only=True, limits=limits)
    try:
        return load(con, month)
    finally:
        con.close()


def render_churn_report(analytics: Path, out_dir: Path, *, controller: str, month: str | None = None,
                        lang: str = "en", pdf: bool = True, limits: Limits | None = None,
                        report_checks: frozenset[str] | None = None) -> dict[str, Path]:
    """Write churn-YYYY-MM.<lang>.html (self-contained, works offline) and .pdf into out_dir; return their paths.

    `controller`: the company the report is of (privacy/register.yml, read by the pipeline). `report_checks`:
    the quality checks whose failures bear on the figures (`suite` or `suite.check`; None: all).

    month None = the latest closed month in the data: the cut-off month if the cut-off date is its last day,
    otherwise the month before it. An explicit month may be the running (cut-off) month; the report then
    says it is provisional. Raises ReportError if the churn marts are missing or the month is not in the data.
    The dated archive of issued reports, with its index: reports/archive.py.
    """
    render.check_lang(lang)
    data = read(analytics, month, limits)
    return write(render_month(data, lang, controller, report_checks), out_dir, pdf=pdf)
