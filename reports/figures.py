# ruff: noqa: RUF003 - real typography: minus signs in the examples of formatted figures
"""The report's key figures, each defined once: its value in a month, its change, its words and its format.

Every figure is a column of churn.monthly_movements or churn.revenue_retention, or a ratio of those columns;
the tiles, the movements table and the summary sentence all take their numbers, already formatted, from
here, so what the sentence says is what the tables show. The definitions the reader sees are in
reports/labels.yml `definitions` (the appendix), in the same words.

- ARPA (average revenue per account) = MRR / customers at the month's end.
- LTV (customer lifetime value) = ARPA / the average of the 12 monthly logo churn rates up to the month: the
  revenue a customer brings over the lifetime that churn rate implies (not margin). Needs 12 months.
- Quick ratio (SaaS) = (new + expansion + reactivation MRR) / (churn + contraction MRR): MRR gained per euro
  lost; above 1 the recurring revenue grows. None when nothing was lost.
- Year on year: the same month a year earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core import render
from reports.data import ReportData, month_add

LTV_MONTHS = 12


@dataclass(frozen=True)
class Definition:
    key: str
    kind: str  # count | money | arpa (money with cents) | rate | ratio
    higher_is_better: bool
    flow: bool = False  # counts what happened in the month: a running month's is not yet comparable


# The order of the tiles on page 1: size, value, movement, churn, retention.
DEFINITIONS = (
    Definition("customers", "count", True),
    Definition("mrr", "money", True),
    Definition("arpa", "arpa", True),
    Definition("ltv", "money", True),
    Definition("new_customers", "count", True, flow=True),
    Definition("churned_customers", "count", False, flow=True),
    Definition("quick_ratio", "ratio", True, flow=True),
    Definition("logo_churn_rate", "rate", False, flow=True),
    Definition("gross_mrr_churn_rate", "rate", False, flow=True),
    Definition("net_mrr_churn_rate", "rate", False, flow=True),
    Definition("grr", "rate", True),
    Definition("nrr", "rate", True),
)


def _ratio(numerator, denominator) -> float | None:
    if numerator is None or not denominator:
        return None
    return float(numerator) / float(denominator)


def average_logo_churn(data: ReportData, month: date) -> float | None:
    """The mean of the 12 monthly logo churn rates up to and including `month` (None without 12 months)."""
    rates = [(data.at(month_add(month, -k)) or {}).get("logo_churn_rate") for k in range(LTV_MONTHS)]
    if any(rate is None for rate in rates):
        return None
    return sum(rates) / LTV_MONTHS


def values(data: ReportData, month: date) -> dict[str, float | None] | None:
    """Every key figure of `month`, or None when the data does not reach back to it."""
    row = data.at(month)
    if row is None:
        return None
    arpa = _ratio(row.get("end_mrr"), row.get("customers_end"))
    gained = sum(row.get(k) or 0 for k in ("new_mrr", "expansion_mrr", "reactivation_mrr"))
    lost = sum(row.get(k) or 0 for k in ("churned_mrr", "contraction_mrr"))
    retention = data.retention.get(month, {})
    return {
        "customers": row.get("customers_end"),
        "mrr": row.get("end_mrr"),
        "arpa": arpa,
        "ltv": _ratio(arpa, average_logo_churn(data, month)),
        "new_customers": row.get("customers_new"),
        "churned_customers": row.get("customers_churned"),
        "quick_ratio": _ratio(gained, lost),
        "logo_churn_rate": row.get("logo_churn_rate"),
        "gross_mrr_churn_rate": row.get("gross_mrr_churn_rate"),
        "net_mrr_churn_rate": row.get("net_mrr_churn_rate"),
        "grr": retention.get("grr"),
        "nrr": retention.get("nrr"),
    }


def show(value, kind: str, lang: str) -> str | None:
    """A figure's value as the page shows it; None when there is none."""
    if value is None:
        return None
    if kind == "count":
        return render.integer(value, lang)
    if kind in ("money", "arpa"):
        return render.money(value, lang, decimals=2 if kind == "arpa" else 0)
    if kind == "rate":
        return render.percent(value, lang)
    return render.number(value, lang, 2)


@dataclass(frozen=True)
class Change:
    """A figure's change against an earlier month: the difference (and for amounts the relative change)."""

    delta: str  # +14, −€602, +0.4 pp, +0.12
    relative: str | None  # +2.0% for counts and money
    tone: str  # good | bad | neutral: the colour of the change

    @property
    def text(self) -> str:
        return f"{self.delta} ({self.relative})" if self.relative else self.delta


def change(value, before, kind: str, higher_is_better: bool, lang: str) -> Change | None:
    if value is None or before is None:
        return None
    delta = value - before
    if kind == "count":
        text = render.signed(delta, lang)
    elif kind in ("money", "arpa"):
        text = render.money(delta, lang, decimals=2 if kind == "arpa" else 0, sign=True)
    elif kind == "rate":
        text = render.points(delta, lang)
    else:
        text = render.number(delta, lang, 2, sign=True)
    relative = render.percent(delta / before, lang, sign=True) \
        if kind not in ("rate", "ratio") and before and abs(delta) >= 1e-9 else None
    tone = "neutral" if abs(delta) < 1e-9 else "good" if (delta > 0) == higher_is_better else "bad"
    return Change(text, relative, tone)


@dataclass(frozen=True)
class Figure:
    key: str
    kind: str
    raw: float | None
    value: str | None  # formatted; None: not available
    previous: Change | None  # against the month before
    year_before: Change | None  # against the same month a year earlier
    running: bool = False  # a flow of the running month: its changes would compare part of a month with a whole


def key_figures(data: ReportData, lang: str) -> dict[str, Figure]:
    """The month's key figures in the order of the tiles, with their changes."""
    now = values(data, data.month)
    before = values(data, month_add(data.month, -1)) or {}
    year = values(data, month_add(data.month, -12)) or {}
    out = {}
    for d in DEFINITIONS:
        running = d.flow and data.partial
        out[d.key] = Figure(d.key, d.kind, now[d.key], show(now[d.key], d.kind, lang),
                            None if running else change(now[d.key], before.get(d.key), d.kind, d.higher_is_better,
                                                        lang),
                            None if running else change(now[d.key], year.get(d.key), d.kind, d.higher_is_better,
                                                        lang), running)
    return out


# --- the month's movements, in customers and MRR --------------------------------------------------------------
@dataclass(frozen=True)
class Movement:
    key: str  # new | expansion | reactivation | contraction | churn | net
    customers: int | None  # how many customers made it (net: the change in customers)
    mrr: float  # signed: contraction and churn negative
    customers_text: str
    mrr_text: str  # with its sign: +€410, −€1,293
    amount_text: str  # without: €1,293 (for sentences that say "lost" or "took")


MOVEMENTS = (  # key, customers column, MRR column, sign
    ("new", "customers_new", "new_mrr", 1),
    ("expansion", "customers_expanded", "expansion_mrr", 1),
    ("reactivation", "customers_reactivated", "reactivation_mrr", 1),
    ("contraction", "customers_contracted", "contraction_mrr", -1),
    ("churn", "customers_churned", "churned_mrr", -1),
)


def movements(data: ReportData, lang: str) -> dict[str, Movement]:
    """The month's MRR bridge in numbers: each movement's customers and MRR, and the net change."""
    row = data.current
    out = {}
    for key, customers_column, mrr_column, sign in MOVEMENTS:
        customers = row.get(customers_column)
        mrr = sign * float(row.get(mrr_column) or 0)
        out[key] = Movement(key, customers, mrr, render.integer(customers, lang),
                            render.money(mrr, lang, sign=True), render.money(abs(mrr), lang))
    net_customers = (row.get("customers_end") or 0) - (row.get("customers_start") or 0)
    net_mrr = float(row.get("end_mrr") or 0) - float(row.get("start_mrr") or 0)
    out["net"] = Movement("net", net_customers, net_mrr, render.signed(net_customers, lang),
                          render.money(net_mrr, lang, sign=True), render.money(abs(net_mrr), lang))
    return out
