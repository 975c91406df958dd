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
from reports.churn import ReportError, render_churn_report

MONTH = date(2025, 5, 1)  # the latest complete month of the fixture (cut-off 18 June 2025)
PERSON_NAME = "Matti Meikäläinen"
CONTROLLER = "Esimerkki & Poika Oy"  # the pipeline passes privacy/register.yml's; any name is shown as it is
NBSP = "\u00a0"


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
    return {lang: render_churn_report(analytics, out, controller=CONTROLLER, lang=lang) for lang in ("en", "fi")}


@pytest.fixture(scope="module")
def expected(analytics) -> dict[str, float]:
    """The fixture's KPI values for the month, straight from the marts."""
    con = connect(analytics, read_only=True)
    row = con.execute("""
        select m.customers_end, m.end_mrr, m.logo_churn_rate, m.gross_mrr_churn_rate, m.net_mrr_churn_rate,
               r.gross_revenue_retention, r.net_revenue_retention
        from churn.monthly_movements m join churn.revenue_retention r using (month) where month = ?""",
                      [MONTH]).fetchone()
    con.close()
    keys = ["customers", "mrr", "logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr"]
    return {k: float(v) for k, v in zip(keys, row, strict=True)}


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
    assert set(shown) == set(expected)
    for key, value in expected.items():
        assert float(shown[key][0]) == pytest.approx(value, abs=1e-6), key
    assert shown["customers"][1] == f"{expected['customers']:,.0f}"
    assert shown["mrr"][1] == f"€{expected['mrr']:,.0f}"
    for key in ("logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr"):
        assert shown[key][1] == f"{expected[key] * 100:.1f}%".replace("-", render.MINUS), key


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
    assert "June 2025" in html and 'id="partial-month"' in html
    earlier = render_churn_report(analytics, tmp_path, controller=CONTROLLER, month="2024-03", lang="fi",
                                  pdf=False)["html"].read_text()
    assert "maaliskuu 2024" in earlier and 'id="partial-month"' not in earlier
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
    assert shown["grr"][1] == shown["nrr"][1] == "n/a"
    assert html.count("no previous month") == len(shown) and "vs December 2022" not in html
    assert "No data for this chart." in html  # the cohort heat map
    table = html[html.index('id="lost-accounts"'):html.index('id="appendix"')]
    assert "<table>" not in table and "No customer churned" not in table


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
