"""core/render.py: fi/en formats, times in Helsinki, labels in both languages, the one environment. Fast."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from core import render
from core.home import PROJECT_DIR

NBSP = "\u00a0"


@pytest.mark.parametrize(("value", "lang", "text"), [
    (1234.5, "en", "€1,234.50"), (1234.5, "fi", f"1{NBSP}234,50{NBSP}€"), (-56.0, "en", f"{render.MINUS}€56.00"),
])
def test_money_formats(value, lang, text):
    assert render.money(value, lang, decimals=2) == text


def test_percent_and_date_formats():
    assert render.percent(0.1234, "en") == "12.3%"
    assert render.percent(0.1234, "fi") == f"12,3{NBSP}%"
    assert render.points(-0.004, "fi") == f"{render.MINUS}0,4{NBSP}%-yks."
    assert render.long_date(date(2025, 6, 18), "fi") == "18.6.2025"
    assert render.long_date(date(2025, 6, 18), "en") == "18 June 2025"
    assert render.month_forms(date(2025, 5, 1), "fi")["month_gen"] == "toukokuun 2025"
    assert render.signed(0, "en") == "±0" and render.signed(-1234, "en") == f"{render.MINUS}1,234"
    assert render.integer(None, "fi") == render.DASH


def test_times_are_helsinki_time_and_say_so():
    utc = datetime(2026, 12, 4, 20, 15, tzinfo=UTC)  # winter: UTC+2
    assert render.timestamp(utc, "fi") == "4.12.2026 klo 22.15 (Europe/Helsinki)"
    assert render.timestamp(utc, "en") == "4 December 2026 22:15 (Europe/Helsinki)"
    summer = datetime(2025, 6, 18, 6, 12, tzinfo=timezone(timedelta(hours=-4)))  # UTC+3 in Helsinki
    assert render.timestamp(summer, "en") == "18 June 2025 13:12 (Europe/Helsinki)"
    # a naive time is Helsinki wall-clock already (the sources' convention)
    assert render.timestamp(datetime(2025, 6, 18, 6, 12), "fi") == "18.6.2025 klo 6.12 (Europe/Helsinki)"
    assert render.timestamp(utc, "en", zone=False, short=True) == "4 Dec 2026 22:15"
    assert render.short_date(date(2025, 6, 18), "en") == "18 Jun 2025"
    assert render.short_date(date(2025, 6, 18), "fi") == "18.6.2025"
    assert render.timestamp(None, "en") == render.DASH


def test_table_values():
    assert render.value_text(None, "fi") == render.value_text("", "en") == render.DASH
    assert (render.value_text(True, "fi"), render.value_text(False, "en")) == ("kyllä", "no")
    assert render.value_text(Decimal("12.30"), "fi") == "12,30" and render.value_text(Decimal("12.30"), "en") == "12.30"
    assert render.value_text(date(2025, 6, 18), "en") == "18 Jun 2025"  # tables: short months
    assert render.value_text("2025-06-18T10:05:00+00:00", "fi") == "18.6.2025 klo 13.05"


def test_labels_need_both_languages_and_fill_placeholders(tmp_path):
    path = tmp_path / "labels.yml"
    path.write_text("text:\n  hello: {en: 'Hello {name}', fi: 'Hei {name}'}\n", encoding="utf-8")
    labels = render.load_labels(path, "text")
    assert labels.text("hello", "fi", name="Maija") == "Hei Maija"
    assert labels.text("new_segment", "en") == "new segment"  # unknown: shown readable, never dropped
    assert labels.in_lang("en") == {"hello": "Hello {name}"}
    path.write_text("text:\n  hello: {en: Hello}\n", encoding="utf-8")  # the file changed: read again
    with pytest.raises(render.LabelError, match=r"labels\.yml text: hello needs a non-empty `fi` and `en`"):
        render.load_labels(path, "text")


LABEL_FILES = ("reports/labels.yml", "retention/labels.yml", "privacy/notice_labels.yml", "privacy/categories.yml",
               "privacy/templates/access_labels.yml")


@pytest.mark.parametrize("name", LABEL_FILES)
def test_every_label_file_has_both_languages(name):
    path = PROJECT_DIR / name
    for section, entries in render.read_yaml(path).items():
        if isinstance(entries, dict):
            render.labels_of(entries, f"{path.name} {section}")


def test_html_is_escaped_markdown_is_not():
    env = render.environment()
    html = env.from_string("{{ x }}")
    assert html.render(x="<b>&") == "&lt;b&gt;&amp;"
    assert env.autoescape("privacy/templates/notice.html.j2") is True
    assert env.autoescape("privacy/templates/notice.md.j2") is False
    # a CSS string (a PDF's footer) is escaped for CSS
    assert render.css_string('A "B" & C</style>') == 'A \\22 B\\22  & C\\3c /style>'
