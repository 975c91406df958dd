"""The management churn report on a synthetic analytics database (tests/report_fixture.py)."""

from __future__ import annotations

import html as htmllib
import re
import shutil
import zlib
from datetime import date
from pathlib import Path

import pytest
from report_fixture import CUTOFF_DATE, build_fixture

from core import render
from core.db import connect
from reports import figures
from reports.churn import ReportError, read, render_churn_report
from reports.summary import summary

MONTH = date(2025, 5, 1)  # the latest complete month of the fixture (cut-off 18 June 2025)
PERSON_NAME = "Matti Meikäläinen"
CONTROLLER = "Esimerkki & Poika Oy"  # the pipeline passes privacy/register.yml's; any name is shown as it is
NBSP = "\u00a0"
# The checks of the data the churn marts are computed from, as the pipeline reads them from the exposure.
REPORT_CHECKS = frozenset({"services_services", "crm_customers.same_hetu_one_customer", "marts_churn"})


@pytest.fixture(scope="module")
def analytics(tmp_path_factory) -> Path:
    path = build_fixture(tmp_path_factory.mktemp("analytics") / "analytics.duckdb", quality=True)
    # A person's row carrying a name by mistake: the report must still not show it.
    con = connect(path)
    con.execute("update churn.lost_accounts set business_name = ? where customer_type = 'person' and month = ?",
                [PERSON_NAME, MONTH])
    con.close()
    return path


@pytest.fixture(scope="module")
def reports(analytics, tmp_path_factory) -> dict[str, dict[str, Path]]:
    out = tmp_path_factory.mktemp("reports")
    return {lang: render_churn_report(analytics, out, controller=CONTROLLER, lang=lang, report_checks=REPORT_CHECKS)
            for lang in ("en", "fi")}


@pytest.fixture(scope="module")
def expected(analytics) -> dict[str, float]:
    """The fixture's key figures for the month, straight from the marts, by their definitions (reports/labels.yml
    `definitions`): ARPA = MRR / customers; LTV = ARPA / the mean of the 12 monthly logo churn rates; quick ratio
    = (new + expansion + reactivation) / (churn + contraction) MRR."""
    con = connect(analytics, read_only=True)
    row = con.execute("""
        select m.customers_end, m.end_mrr, m.end_mrr / m.customers_end,
               m.end_mrr / m.customers_end / (select avg(logo_churn_rate) from churn.monthly_movements
                                             where month between ? - interval 11 month and ?),
               m.customers_new, m.customers_churned,
               (m.new_mrr + m.expansion_mrr + m.reactivation_mrr) / (m.churned_mrr + m.contraction_mrr),
               m.logo_churn_rate, m.gross_mrr_churn_rate, m.net_mrr_churn_rate,
               r.gross_revenue_retention, r.net_revenue_retention
        from churn.monthly_movements m join churn.revenue_retention r using (month) where month = ?""",
                      [MONTH, MONTH, MONTH]).fetchone()
    con.close()
    keys = ["customers", "mrr", "arpa", "ltv", "new_customers", "churned_customers", "quick_ratio", "logo_churn_rate",
            "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr"]
    return {k: float(v) for k, v in zip(keys, row, strict=True)}


def text_of(html: str, element_id: str) -> str:
    """The text of the element with this id (its tags removed, entities decoded); a `div` only as far as its
    first inner `</div>`, any other element to its closing tag (none of ours nests in its own kind)."""
    found = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert found, element_id
    inner = re.sub(r"</?span\b[^>]*>", "", found[2])  # inline: no space where a span was
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", inner)).split())


def tile_changes(html: str) -> dict[str, list[str]]:
    """Each tile's changes as shown: [against the month before, against a year earlier]."""
    out = {}
    for key, body in re.findall(r'data-kpi="(\w+)"[^>]*>(.*?)</div>\s*</div>\s*(?=<div class="tile"|</div>)', html,
                                re.S):
        out[key] = [htmllib.unescape(c) for c in re.findall(r'<span class="change [a-z]+">([^<]*)</span>', body)]
    return out


def movement_cells(html: str) -> dict[tuple[str, str], str]:
    """The movements table: (row, movement) -> the shown value."""
    table = html[html.index('id="movements"'):]
    table = table[:table.index("</table>")]
    cells = {}
    for row, body in re.findall(r'<tr class="(customers|mrr)">(.*?)</tr>', table, re.S):
        for movement, value in re.findall(r'data-movement="(\w+)">([^<]*)</td>', body):
            cells[(row, movement)] = htmllib.unescape(value)
    return cells


def tiles(html: str) -> dict[str, tuple[str, str]]:
    """KPI tiles as {key: (data-value, shown value)}."""
    found = re.findall(r'data-kpi="(\w+)" data-value="([^"]*)">\s*<div class="label">.*?</div>\s*'
                       r'<div class="value">(.*?)</div>', html, re.S)
    return {key: (raw, htmllib.unescape(shown)) for key, raw, shown in found}


def pdf_pages(pdf: bytes) -> int:
    """Page count from the page tree (WeasyPrint compresses it into object streams)."""
    parts = [pdf]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(m[1]))
        except zlib.error:
            continue
    counts = re.findall(rb"/Type\s*/Pages\b[^>]*?/Count (\d+)", b"\n".join(parts))
    return max(int(c) for c in counts) if counts else 0


def test_html_and_pdf_are_written_for_the_latest_complete_month(reports):
    for lang, paths in reports.items():
        assert paths["html"].name == f"churn-2025-05.{lang}.html"  # cut-off 18.6.: June is incomplete
        assert paths["pdf"].name == f"churn-2025-05.{lang}.pdf"
        pdf = paths["pdf"].read_bytes()
        assert pdf.startswith(b"%PDF")
        assert pdf_pages(pdf) >= 2


def test_html_is_self_contained_with_every_chart_inline(reports):
    html = reports["en"]["html"].read_text()
    assert "http://" not in html and "https://" not in html
    # Nothing else that could make a request: no external scripts, stylesheets, images or CSS urls.
    # (url(#…) and href="#…" point inside the page, data: URLs carry their content.)
    assert not re.search(r"<(script|link|img|iframe)\b|\burl\((?!#)|@import", html)
    assert all(ref.startswith(("#", "data:")) for ref in re.findall(r'\b(?:href|src)="([^"]*)"', html))
    figures = re.findall(r"<figure>(.*?)</figure>", html, re.S)
    assert len(figures) >= 8
    assert all(f.lstrip().startswith("<svg") for f in figures)
    # The charts' element ids are unique in the page (several SVGs share one document).
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_kpis_shown_are_the_fixtures_values(reports, expected):
    shown = tiles(reports["en"]["html"].read_text())
    assert list(shown) == list(expected)  # the order of the tiles: size, value, movement, churn, retention
    for key, value in expected.items():
        assert float(shown[key][0]) == pytest.approx(value, rel=1e-6), key
    assert shown["customers"][1] == f"{expected['customers']:,.0f}"
    assert shown["mrr"][1] == f"€{expected['mrr']:,.0f}"
    assert shown["arpa"][1] == f"€{expected['arpa']:,.2f}" and shown["ltv"][1] == f"€{expected['ltv']:,.0f}"
    assert shown["new_customers"][1] == f"{expected['new_customers']:.0f}"
    assert shown["quick_ratio"][1] == f"{expected['quick_ratio']:.2f}"
    for key in ("logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr"):
        assert shown[key][1] == f"{expected[key] * 100:.1f}%".replace("-", render.MINUS), key


def test_every_key_figure_against_the_month_before_and_a_year_earlier(analytics, reports):
    """Year on year is the same month a year earlier: May 2024 for May 2025."""
    html = reports["en"]["html"].read_text()
    assert "Changes against April 2025 (the month before) and May 2024 (a year earlier)." in html
    con = connect(analytics, read_only=True)
    (now, before, year), = con.execute("""select max(customers_end) filter (where month = ?),
        max(customers_end) filter (where month = ?), max(customers_end) filter (where month = ?)
        from churn.monthly_movements""", [MONTH, date(2025, 4, 1), date(2024, 5, 1)]).fetchall()
    con.close()
    changes = tile_changes(html)
    assert len(changes) == 12 and all(len(c) == 2 for c in changes.values())
    assert changes["customers"][0].startswith(render.signed(now - before, "en"))
    relative = render.percent((now - year) / year, "en", sign=True)
    assert changes["customers"][1] == f"{render.signed(now - year, 'en')} ({relative})"
    # How LTV, ARPA and the quick ratio are made is said on the page, not only in the appendix.
    notes = text_of(html, "figure-notes")
    assert "LTV = ARPA / the average monthly logo churn of the last 12 months" in notes
    assert "Quick ratio = (new + expansion + reactivation) / (churn + contraction) MRR" in notes


def test_the_summary_is_made_of_the_numbers_the_tables_show(reports):
    """Every number of the generated summary is one the tiles or the movements table show, in both languages."""
    for lang, paths in reports.items():
        html = paths["html"].read_text()
        sentence = text_of(html, "summary")
        shown = " ".join([text_of(html, "kpis"), text_of(html, "movements")])
        numbers = re.findall(r"[+\u2212]?€?\d[\d\u00a0,.]*(?:\u00a0?[€%])?", sentence)
        numbers = [n.rstrip(".,") for n in numbers if not re.fullmatch(r"20\d\d", n.rstrip(".,"))]  # not years
        assert len(numbers) >= 12, (lang, sentence)
        for number in numbers:
            assert number.lstrip("+\u2212") in shown, (lang, number, sentence)


def test_the_summary_says_the_month_in_words(reports, analytics):
    en = text_of(reports["en"]["html"].read_text(), "summary")
    fi = text_of(reports["fi"]["html"].read_text(), "summary")
    data = read(analytics, "2025-05")
    figs, moves = figures.key_figures(data, "en"), figures.movements(data, "en")
    assert en.startswith(f"In May 2025 MRR {'grew' if figs['mrr'].previous.tone == 'good' else 'fell'} ")
    assert f" to {figs['mrr'].value} ({figs['mrr'].previous.delta})." in en
    assert f"{moves['new'].customers} new customers brought {moves['new'].amount_text}" in en
    assert f"{moves['churn'].customers} customers left, taking {moves['churn'].amount_text}." in en
    assert f"The quick ratio was {figs['quick_ratio'].value}" in en
    assert "Against May 2024, a year earlier, MRR is " in en
    # Finnish: the month in the inessive, a count's noun in the partitive
    assert fi.startswith("Toukokuussa 2025 MRR ")
    assert f"{moves['new'].customers} uutta asiakasta toi " in fi and " asiakasta lähti ja vei " in fi
    assert "Vuoden takaiseen (toukokuu 2024) verrattuna MRR on " in fi


@pytest.mark.parametrize(("new", "churned", "en", "fi"), [
    (1, 1, ["1 new customer brought", "1 customer left, taking"], ["1 uusi asiakas toi", "1 asiakas lähti ja vei"]),
    (0, 0, ["No new customers joined", "no customer left"],
     ["Uusia asiakkaita ei tullut", "yksikään asiakas ei lähtenyt"]),
    (2, 3, ["2 new customers brought", "3 customers left"], ["2 uutta asiakasta toi", "3 asiakasta lähti"]),
])
def test_the_summary_agrees_with_its_counts(analytics, new, churned, en, fi):
    data = read(analytics, "2025-05")
    data.movements[-1] = {**data.current, "customers_new": new, "customers_churned": churned}
    assert all(words in summary(data, "en") for words in en), summary(data, "en")
    assert all(words in summary(data, "fi") for words in fi), summary(data, "fi")


def test_mrr_that_moved_less_than_a_euro_stayed(analytics):
    data = read(analytics, "2025-05")
    data.movements[-1] = {**data.current, "end_mrr": data.previous["end_mrr"] + 0.3}
    assert summary(data, "en").startswith(f"In May 2025 MRR stayed at {render.money(data.current['end_mrr'], 'en')}.")
    assert summary(data, "fi").startswith("Toukokuussa 2025 MRR pysyi ennallaan: ")


def test_the_movements_table_is_the_bridge_in_customers_and_euros(analytics, reports):
    cells = movement_cells(reports["en"]["html"].read_text())
    con = connect(analytics, read_only=True)
    row = con.execute("""select customers_new, customers_expanded, customers_reactivated, customers_contracted,
                                customers_churned, customers_end - customers_start, new_mrr, contraction_mrr,
                                end_mrr - start_mrr
                         from churn.monthly_movements where month = ?""", [MONTH]).fetchone()
    con.close()
    for key, n in zip(("new", "expansion", "reactivation", "contraction", "churn"), row[:5], strict=False):
        assert cells[("customers", key)] == f"{n:,}", key
    assert cells[("customers", "net")] == render.signed(row[5], "en")
    assert cells[("mrr", "new")] == render.money(float(row[6]), "en", sign=True)
    assert cells[("mrr", "contraction")] == render.money(-float(row[7]), "en", sign=True)
    assert cells[("mrr", "net")] == render.money(float(row[8]), "en", sign=True)


def test_finnish_labels_and_number_formats(reports, expected):
    html = reports["fi"]["html"].read_text()
    assert '<html lang="fi">' in html
    assert "Tunnusluvut" in html and "Asiakaspoistuma" in html and "Liite: määritelmät" in html
    assert "Key figures" not in html
    shown = tiles(html)
    # 1 234 € and 12,3 %: no-break spaces as thousands separator and before the unit, decimal comma.
    assert shown["mrr"][1] == f"{expected['mrr']:,.0f}".replace(",", NBSP) + f"{NBSP}€"
    assert shown["logo_churn_rate"][1] == f"{expected['logo_churn_rate'] * 100:.1f}".replace(".", ",") + f"{NBSP}%"
    assert "," in shown["logo_churn_rate"][1]
    assert f"{CUTOFF_DATE.day}.{CUTOFF_DATE.month}.{CUTOFF_DATE.year}" in html  # 18.6.2025
    assert "toukokuu 2025" in html


def test_the_controller_named_is_the_one_passed_in(reports):
    """The company comes from the register description (through the pipeline), escaped wherever it stands."""
    for paths in reports.values():
        html = paths["html"].read_text()
        assert "Local Loop Oy" not in html
        assert html.count("Esimerkki &amp; Poika Oy") == 3  # title, header, footer
        # the PDF's page footer is a CSS string: escaped for CSS, not for HTML
        assert 'content: "Esimerkki & Poika Oy · ' in html


def test_times_are_shown_in_helsinki_and_say_so(reports):
    en, fi = (reports[lang]["html"].read_text() for lang in ("en", "fi"))
    # the fixture's quality run, 2025-06-18 06:15 without a zone: Helsinki wall-clock time
    assert "Data quality checks 18 June 2025 06:15 (Europe/Helsinki):" in en
    assert "Laatutarkistukset 18.6.2025 klo 6.15 (Europe/Helsinki):" in fi
    generated = re.search(r"<dt>Report generated</dt><dd>([^<]*)</dd>", en)[1]
    assert generated.endswith(" (Europe/Helsinki)")


def test_lost_accounts_show_businesses_by_name_and_persons_by_short_key(reports, analytics):
    html = reports["en"]["html"].read_text()
    table = html[html.index('id="lost-accounts"'):html.index('id="appendix"')]
    con = connect(analytics, read_only=True)
    lost = con.execute("select customer_key, customer_type, business_name from churn.lost_accounts "
                       "where month = ? order by lost_mrr desc limit 12", [MONTH]).fetchall()
    con.close()
    assert {t for _, t, _ in lost} == {"person", "business"}  # the fixture month has both
    rows = re.findall(r'<tr class="(person|business)[^"]*">(.*?)</tr>', table, re.S)
    assert len(rows) == len(lost)
    for (key, kind, name), (row_class, cells) in zip(lost, rows, strict=True):
        assert row_class == kind
        if kind == "person":
            assert f"#{key[:8]}" in cells
            assert key not in cells  # only the short form of the key
        else:
            assert htmllib.unescape(re.sub(r"<[^>]+>", "", cells)).strip().startswith(name)
    assert PERSON_NAME not in html


def test_explicit_month_and_the_incomplete_cutoff_month(analytics, tmp_path):
    paths = render_churn_report(analytics, tmp_path, controller=CONTROLLER, month="2025-06", lang="en", pdf=False)
    assert set(paths) == {"html"}
    html = paths["html"].read_text()
    assert "June 2025" in html and 'id="provisional"' in html
    assert "Provisional: June 2025 is still running (data up to 18 June 2025)" in html
    assert text_of(html, "summary").startswith("In June 2025 so far (data up to 18 June 2025) MRR ")
    # What happened in part of a month is not compared with whole months; stocks are.
    changes = tile_changes(html)
    assert changes["new_customers"] == ["month still running"] and len(changes["customers"]) == 2
    earlier = render_churn_report(analytics, tmp_path, controller=CONTROLLER, month="2024-03", lang="fi",
                                  pdf=False)["html"].read_text()
    assert "maaliskuu 2024" in earlier and 'id="provisional"' not in earlier
    with pytest.raises(ReportError, match="not in the data"):
        render_churn_report(analytics, tmp_path, controller=CONTROLLER, month="2025-07", pdf=False)
    with pytest.raises(ReportError, match="YYYY-MM"):
        render_churn_report(analytics, tmp_path, controller=CONTROLLER, month="2025-13", pdf=False)
    with pytest.raises(ValueError, match="language"):
        render_churn_report(analytics, tmp_path, controller=CONTROLLER, lang="sv", pdf=False)


def test_first_month_has_no_changes_and_missing_sections_say_so(analytics, tmp_path):
    """The spine's first month: no previous month, no 12-month retention, no cohorts yet; lost accounts absent."""
    partial = tmp_path / "analytics.duckdb"
    shutil.copy(analytics, partial)
    con = connect(partial)
    con.execute("drop table churn.lost_accounts")
    con.close()
    html = render_churn_report(partial, tmp_path, controller=CONTROLLER, month="2023-01",
                               pdf=False)["html"].read_text()
    shown = tiles(html)
    assert shown["grr"][1] == shown["nrr"][1] == shown["ltv"][1] == "n/a"
    assert html.count("no previous month") == html.count("no data a year earlier") == len(shown)
    assert "MRR was €" in text_of(html, "summary") and "Against " not in text_of(html, "summary")
    assert "No data for this chart." in html  # the cohort heat map
    table = html[html.index('id="lost-accounts"'):html.index('id="appendix"')]
    assert "<table>" not in table and "No customer churned" not in table


def test_the_quality_banner_says_which_failed_checks_bear_on_the_figures(reports):
    """Of the fixture's failed checks, an orphan service bears on the figures; invoices, a retention backlog,
    ticket texts and a missing email address (not one of the report's checks) do not."""
    html = reports["en"]["html"].read_text()
    banner = text_of(html, "quality")
    assert "1 error in the checks of the data these figures come from" in banner
    assert "4 failed checks elsewhere (customer register, invoices, retention periods, ticket texts) do not bear " \
           "on them." in banner
    section = html[html.index('id="data-quality"'):html.index("Data cut-off and freshness")]
    assert "Every service belongs to a customer in the register" in section
    assert "Invoice total" not in section and "retention" not in section.split("</table>")[0]
    fi = text_of(reports["fi"]["html"].read_text(), "quality")
    assert "1 virhe näiden lukujen lähtötietojen tarkistuksissa" in fi
    assert "Muut 4 epäonnistunutta tarkistusta (asiakaspalvelun viestit, asiakasrekisteri, laskut, säilytysajat)" in fi


def test_the_report_checks_named_in_the_exposure_exist():
    """The exposure's `quality_checks` name real suites and checks: a renamed check would silently count as
    not bearing on the report."""
    from expectations.run import load_suites
    from warehouse.pipeline import report_checks

    declared = report_checks()
    known = {suite.name for suite in load_suites()} | {f"{suite.name}.{check.name}" for suite in load_suites()
                                                          for check in suite.checks}
    assert declared and declared <= known, sorted(declared - known)


def test_segments_show_gross_mrr_churn_with_their_customers(analytics, reports):
    """One definition of MRR churn everywhere: the segments' bars are churn + contraction, as the key figure;
    each segment says how many customers it has, small ones are marked, 'Unknown' is explained."""
    html = htmllib.unescape(reports["en"]["html"].read_text())
    section = html[html.index('id="segments"'):html.index('id="lost-accounts"')]
    assert "Gross MRR churn (churn + contraction) / start MRR, the key figure's definition." in section
    con = connect(analytics, read_only=True)
    business, = con.execute("""select sum(churned_mrr + contraction_mrr) / sum(start_mrr), avg(customers_start)
                               from churn.churn_by_segment where dimension = 'customer_type'
                                 and segment = 'business' and month > ? and month <= ?""",
                            [date(2024, 5, 1), MONTH]).fetchall()
    con.close()
    assert f"Business ({business[1]:.0f})" in section
    assert render.percent(business[0], "en") in section
    assert "IP transit (" in section and "fewer than 30 customers" in section


def test_unknown_segments_are_explained(analytics, tmp_path):
    unknown = tmp_path / "analytics.duckdb"
    shutil.copy(analytics, unknown)
    con = connect(unknown)
    con.execute("update churn.churn_by_segment set segment = 'unknown' where dimension = 'customer_type' "
                "and segment = 'business'")
    con.close()
    html = render_churn_report(unknown, tmp_path, controller=CONTROLLER, pdf=False)["html"].read_text()
    notes = text_of(html, "segment-notes")
    assert "Unknown customer type: customers whose services are in the service system but who are not in the " \
           "customer register (CRM)" in notes


def test_cohorts_by_customers_and_by_revenue_and_why_a_share_can_rise(reports):
    html = htmllib.unescape(reports["en"]["html"].read_text())
    section = html[html.index('id="cohorts"'):html.index('id="segments"')]
    assert "Customers: share of each cohort still a customer, %" in section
    assert "Revenue: the cohort's MRR against its first month's, %" in section
    assert "a customer who left and came back (reactivation) counts again from the month of return" in section
    assert "Revenue retention can pass 100%" in section


def test_quality_banner_only_when_the_quality_summary_exists(analytics, reports, tmp_path):
    assert 'id="quality"' in reports["en"]["html"].read_text()
    bare = tmp_path / "analytics.duckdb"
    shutil.copy(analytics, bare)
    con = connect(bare)
    con.execute("drop schema quality cascade")
    con.close()
    html = render_churn_report(bare, tmp_path, controller=CONTROLLER, pdf=False)["html"].read_text()
    assert 'id="quality"' not in html and 'class="tiles"' in html


def test_missing_marts_are_a_clear_error(tmp_path):
    empty = tmp_path / "analytics.duckdb"
    connect(empty).close()
    with pytest.raises(ReportError, match="warehouse build"):
        render_churn_report(empty, tmp_path, controller=CONTROLLER, pdf=False)
