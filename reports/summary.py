"""The month in a few sentences, generated from the numbers the page shows (never written by hand).

"In May 2025 MRR grew 4.5% to €86,965 (+€3,741). 33 new customers brought €3,222; … 17 customers left,
taking €508. …" Every number comes, already formatted, from reports/figures.py: the same strings the tiles and
the movements table show. The words are reports/labels.yml `summary_*`, English and Finnish; Finnish puts a
count's noun in the partitive ("33 uutta asiakasta") and the month in the case each sentence needs.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from core import render
from reports import figures
from reports.data import ReportData, month_add
from reports.labels import label


def unsigned(text: str) -> str:
    """A formatted change without its sign, for sentences that say the direction in words."""
    return text[1:] if text[:1] in ("+", render.MINUS) else text


def _counted(key: str, n: int | None, lang: str, **values) -> str:
    """`key_none`, `key_one` or `key_many` (a count's noun agrees with it), or `key_some` without a count."""
    form = "some" if n is None else "none" if n == 0 else "one" if n == 1 else "many"
    return label(f"{key}_{form}", lang, n=render.integer(n, lang), **values)


def _mrr_sentence(data: ReportData, figs: dict[str, figures.Figure], lang: str) -> str:
    forms = render.month_forms(data.month, lang)
    when = forms["month_in"]
    if data.partial:
        when += label("summary_so_far", lang, date=render.long_date(data.cutoff_date, lang))
    mrr = figs["mrr"]
    change = mrr.previous
    if change is None or not (data.previous or {}).get("end_mrr"):  # no month before, or one without MRR
        return label("summary_mrr_first", lang, month_in=when, mrr=mrr.value)
    delta = (mrr.raw or 0) - ((data.previous or {}).get("end_mrr") or 0)
    # less than a euro either way reads "+€0": the sentence says it stayed
    direction = "same" if abs(delta) < 0.5 else "up" if delta > 0 else "down"
    return label(f"summary_mrr_{direction}", lang, month_in=when, mrr=mrr.value, delta=change.delta,
                 relative=unsigned(change.relative or ""))


def _movements_sentence(data: ReportData, lang: str) -> str:
    moves = figures.movements(data, lang)
    parts = [_counted("summary_new", moves["new"].customers, lang, mrr=moves["new"].amount_text)]
    for key in ("reactivation", "expansion", "contraction"):
        move = moves[key]
        if move.mrr or move.customers:
            parts.append(_counted(f"summary_{key}", move.customers, lang, mrr=move.mrr_text,
                                  amount=move.amount_text))
    parts.append(_counted("summary_churn", moves["churn"].customers, lang, mrr=moves["churn"].amount_text))
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _rates_sentence(figs: dict[str, figures.Figure], lang: str) -> str:
    values = {key: figs[key].value or render.DASH for key in ("quick_ratio", "logo_churn_rate",
                                                               "gross_mrr_churn_rate")}
    return label("summary_rates" if figs["quick_ratio"].value else "summary_rates_nothing_lost", lang, **values)


def _year_sentence(data: ReportData, figs: dict[str, figures.Figure], lang: str) -> str | None:
    mrr, customers = figs["mrr"].year_before, figs["customers"].year_before
    if mrr is None or customers is None:
        return None
    mrr_delta = (figs["mrr"].raw or 0) - ((data.year_before or {}).get("end_mrr") or 0)
    mrr_way = "same" if abs(mrr_delta) < 0.5 else "up" if mrr_delta > 0 else "down"
    mrr_clause = label(f"summary_year_mrr_{mrr_way}", lang, delta=unsigned(mrr.delta),
                       relative=unsigned(mrr.relative or ""))
    difference = (figs["customers"].raw or 0) - (data.year_before or {}).get("customers_end", 0)
    customers_way = "same" if not difference else "up" if difference > 0 else "down"
    customers_clause = label(
        f"summary_year_customers_{customers_way}{'_one' if abs(difference) == 1 else ''}", lang,
        n=unsigned(customers.delta))
    return label("summary_year", lang, year_month=render.month_name(month_add(data.month, -12), lang),
                 mrr_clause=mrr_clause, customers_clause=customers_clause)


def summary(data: ReportData, lang: str) -> str:
    """The month's story in three or four sentences, in `lang`."""
    figs = figures.key_figures(data, lang)
    sentences = [_mrr_sentence(data, figs, lang), _movements_sentence(data, lang), _rates_sentence(figs, lang),
                 _year_sentence(data, figs, lang)]
    return " ".join(s for s in sentences if s)


NUMBER = re.compile(r"[+\u2212]?€?\d[\d\u00a0,.]*\d(?:\u00a0?[€%])?|[+\u2212]?€?\d(?:\u00a0?[€%])?")


def as_html(text: str) -> Markup:
    """The summary for a page: each amount kept on one line ("+€413" would break after its sign)."""
    escaped = str(escape(text))
    return Markup(NUMBER.sub(lambda m: f'<span class="n">{m[0]}</span>', escaped))
