# ruff: noqa: RUF002, RUF003 - real typography: minus signs, en dashes, no-break spaces
"""Rendering: the one Jinja environment of every page the warehouse writes, its labels and its fi/en formats.

**Pages.** Each feature keeps its templates in `<package>/templates/` and names them from the project folder
(`render("reports/templates/churn.html.j2", lang="fi", ...)`). One environment renders them all: HTML
templates (`*.html.j2`) are escaped, Markdown ones (`*.md.j2`) are not; an undefined variable is an error.
`write_page` writes a page whole or not at all, owner-only (core/files.py). The filters take the page's
language from its `lang`:

| filter | shows |
|---|---|
| `t` | a label entry `{en: ..., fi: ...}` in the page's language (plain text passes as it is) |
| `num`, `signed` | a whole number: `1,234` / `1 234`; with its sign, `±0` for none |
| `date`, `short_date`, `timestamp` | `18 June 2025` / `18.6.2025`; `18 Jun 2025` (tables); a time as below |
| `value` | any value of a data table: a dash when missing, yes/no, dates, times, exact decimals |
| `css_string` | text inside a quoted CSS string (a page footer of a PDF) |

Every template also sees `dash` (shown for a missing value) and `local_zone` (the zone times are shown in).

**Labels.** Each feature keeps its words beside its templates in YAML, one entry per key with both
languages, `key: {en: ..., fi: ...}`, `{placeholders}` filled in when asked: `load_labels(path, section)`.
An entry without both languages is refused when loaded, naming the file.

**Formats** follow each language's conventions: English `€1,234.50`, `12.3%`, `18 June 2025`; Finnish
`1 234,50 €`, `12,3 %`, `18.6.2025`, with no-break spaces so a number never wraps. **Times** are shown in
Helsinki and say so, on every page alike: `18 June 2025 06:12 (Europe/Helsinki)` /
`18.6.2025 klo 6.12 (Europe/Helsinki)`. An aware time is converted; a naive one is already Helsinki
wall-clock time (the warehouse's convention for the sources' timestamps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from markupsafe import Markup

from core import files
from core.home import PROJECT_DIR

LANGS = ("en", "fi")
LOCAL_ZONE = "Europe/Helsinki"  # the warehouse's clock: where its people and customers are
LOCAL_TZ = ZoneInfo(LOCAL_ZONE)
NBSP = "\u00a0"
MINUS = "\u2212"  # a real minus sign: a hyphen is too short next to digits
DASH = "\u2013"  # shown for a missing value

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "fi": ["tammikuu", "helmikuu", "maaliskuu", "huhtikuu", "toukokuu", "kesäkuu", "heinäkuu", "elokuu",
           "syyskuu", "lokakuu", "marraskuu", "joulukuu"],
}
MONTHS_SHORT = {
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "fi": ["tammi", "helmi", "maalis", "huhti", "touko", "kesä", "heinä", "elo", "syys", "loka", "marras",
           "joulu"],
}
POINTS = {"en": "pp", "fi": "%-yks."}  # percentage points
YES_NO = {"en": ("yes", "no"), "fi": ("kyllä", "ei")}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not one of {', '.join(LANGS)}")
    return lang


# --- labels ---------------------------------------------------------------------------------------------
class LabelError(ValueError):
    """A label file lacks words: the message names the file, the section and the key."""


class Labels(Mapping[str, Mapping[str, Any]]):
    """Words in both languages: key -> {en: ..., fi: ...}, read like a dict."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]]):
        self.entries = entries

    def __getitem__(self, key: str) -> Mapping[str, Any]:
        return self.entries[key]

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def text(self, key: str, lang: str, **values) -> str:
        """The words for `key` in `lang`, placeholders filled in; an unknown key (a new segment value) is shown
        as it is, readable."""
        entry = self.entries.get(key)
        text = entry[lang] if entry else key.replace("_", " ")
        return text.format(**values) if values else text

    def in_lang(self, lang: str) -> dict[str, Any]:
        """Every entry in one language: what a template reads as `t.title`."""
        return {key: entry[lang] for key, entry in self.entries.items()}


def _version(path: Path) -> tuple[Path, int, int]:
    """What tells one version of a file from the next: a changed file is read again."""
    stat = Path(path).stat()
    return Path(path).resolve(), stat.st_mtime_ns, stat.st_size


def read_yaml(path: Path) -> Any:
    """A YAML file of words or settings, read once per version of the file (shared: read it, never change it)."""
    return _read_yaml(*_version(path))


@cache
def _read_yaml(path: Path, _mtime: int, _size: int) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def labels_of(entries: Mapping[str, Any], source: str) -> Labels:
    """`entries` as Labels; every entry must have non-empty words in every language."""
    for key, entry in entries.items():
        if not isinstance(entry, Mapping) or any(_empty(entry.get(lang)) for lang in LANGS):
            raise LabelError(f"{source}: {key} needs a non-empty `fi` and `en`")
    return Labels(entries)


def load_labels(path: Path, section: str | None = None) -> Labels:
    """The labels of a YAML file, or of one section (a top-level key) of it; checked once per version."""
    return _load_labels(*_version(path), section)


@cache
def _load_labels(path: Path, mtime: int, size: int, section: str | None) -> Labels:
    document = _read_yaml(path, mtime, size)
    entries = document if section is None else document[section]
    return labels_of(entries, f"{path.name} {section}" if section else path.name)


def _empty(words) -> bool:
    return not words or (isinstance(words, str) and not words.strip())


def pick(entry, lang: str):
    """A label entry {en: ..., fi: ...} in `lang` (else English, else a dash); plain text as it is."""
    if isinstance(entry, Mapping):
        return entry.get(lang) or entry.get("en") or DASH
    return entry


# --- numbers ----------------------------------------------------------------------------------------------
def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: float, lang: str, decimals: int = 0, sign: bool = False) -> str:
    """1,234.5 (en) or 1 234,5 (fi); `sign` adds + to positive numbers (for changes)."""
    text = f"{abs(value):,.{decimals}f}"
    if lang == "fi":
        text = text.replace(",", NBSP).replace(".", ",")
    if round(value, decimals) < 0:
        text = MINUS + text
    elif sign and round(value, decimals) > 0:
        text = "+" + text
    return text


def integer(value, lang: str, sign: bool = False) -> str:
    return DASH if _missing(value) else number(float(value), lang, 0, sign)


def signed(value, lang: str) -> str:
    """A change in a count: +1,234 / −5 / ±0."""
    return DASH if _missing(value) else "±0" if not value else integer(value, lang, sign=True)


def money(value, lang: str, decimals: int = 0, sign: bool = False) -> str:
    """€1,234 / 1 234 € (decimals=2: €1,234.50 / 1 234,50 €); a dash when missing."""
    if _missing(value):
        return DASH
    text = number(float(value), lang, decimals, sign)
    if lang == "fi":
        return f"{text}{NBSP}€"
    # English puts the euro sign after the sign: −€1,234, +€56.
    if text[0] in (MINUS, "+"):
        return f"{text[0]}€{text[1:]}"
    return f"€{text}"


def percent(rate, lang: str, decimals: int = 1, sign: bool = False) -> str:
    """A rate 0..1 as 12.3% (en) or 12,3 % (fi); a dash when missing."""
    if _missing(rate):
        return DASH
    text = number(float(rate) * 100, lang, decimals, sign)
    return f"{text}{NBSP}%" if lang == "fi" else f"{text}%"


def points(delta, lang: str, decimals: int = 1) -> str:
    """A change of a rate in percentage points: +0.4 pp / +0,4 %-yks."""
    if _missing(delta):
        return DASH
    return f"{number(float(delta) * 100, lang, decimals, sign=True)}{NBSP}{POINTS[lang]}"


# --- dates and times ---------------------------------------------------------------------------------------
def long_date(value: date | datetime | None, lang: str) -> str:
    """18 June 2025 / 18.6.2025."""
    return _date(value, lang, MONTHS)


def short_date(value: date | datetime | None, lang: str) -> str:
    """18 Jun 2025 / 18.6.2025: for tables and lists, where a long month name would widen every row."""
    return _date(value, lang, MONTHS_SHORT)


def _date(value: date | datetime | None, lang: str, month_names: dict[str, list[str]]) -> str:
    if value is None:
        return DASH
    if lang == "fi":
        return f"{value.day}.{value.month}.{value.year}"
    return f"{value.day} {month_names['en'][value.month - 1]} {value.year}"


def local_time(value: datetime) -> datetime:
    """The time on a Helsinki clock: an aware time converted, a naive one taken as Helsinki wall-clock time."""
    return value.astimezone(LOCAL_TZ) if value.tzinfo is not None else value


def timestamp(value: datetime | date | None, lang: str, *, zone: bool = True, short: bool = False) -> str:
    """18 June 2025 06:12 (Europe/Helsinki) / 18.6.2025 klo 6.12 (Europe/Helsinki).

    For tables: `zone=False` leaves the zone out where the heading or the page names it once, `short=True`
    abbreviates the month (18 Jun 2025 06:12)."""
    if value is None:
        return DASH
    day = short_date if short else long_date
    if not isinstance(value, datetime):
        return day(value, lang)
    value = local_time(value)
    text = (f"{day(value, lang)} klo {value.hour}.{value.minute:02d}" if lang == "fi"
            else f"{day(value, lang)} {value.hour:02d}:{value.minute:02d}")
    return f"{text} ({LOCAL_ZONE})" if zone else text


def month_name(value: date, lang: str) -> str:
    """June 2025 / kesäkuu 2025."""
    return f"{MONTHS[lang][value.month - 1]} {value.year}"


def month_forms(value: date, lang: str) -> dict[str, str]:
    """The month in the forms the labels need: Finnish inflects it (toukokuu, toukokuun, Toukokuussa)."""
    name = month_name(value, lang)
    if lang != "fi":
        return {"month": name, "month_gen": name, "month_in": f"In {name}"}
    # Every Finnish month name ends in -kuu: genitive -kuun, inessive -kuussa.
    base, year = name.split(" ")
    return {"month": name, "month_gen": f"{base}n {year}", "month_in": f"{base.capitalize()}ssa {year}"}


def month_short(value: date, lang: str) -> str:
    """Jun 2025 / kesä 2025 (chart axes)."""
    return f"{MONTHS_SHORT[lang][value.month - 1]} {value.year}"


def month_iso(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}"


def value_text(value: Any, lang: str) -> str:
    """A value of a data table as a reader expects it: a dash when missing, yes/no, dates and times in the
    language, short (times without the zone: the page names it once), decimals exactly as held (12,30 / 12.30)."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return YES_NO[lang][0 if value else 1]
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:  # an instant inside a JSON value
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, date):
        return timestamp(value, lang, zone=False, short=True)
    if isinstance(value, Decimal | float):
        text = str(value)
        return text.replace(".", ",") if lang == "fi" else text
    return str(value)


def css_string(text: str) -> Markup:
    """Text for inside a double-quoted CSS string (the content of a PDF's page footer): the page's escaping
    does not apply there, so the string's own escapes do."""
    plain = text.unescape() if isinstance(text, Markup) else str(text)  # joined by the page: escaped for HTML
    escaped = "".join(f"\\{ord(c):x} " if c in '"\\<\n' else c for c in plain)
    return Markup(escaped)


# --- the environment ---------------------------------------------------------------------------------------
def _in_page_language(format_value):
    """A formatting function as a filter that takes the language of the page it renders."""
    @pass_context
    def apply(context, value, *args, **kwargs):
        return format_value(value, context["lang"], *args, **kwargs)
    return apply


@cache
def environment() -> Environment:
    """The one environment: templates named from the project folder; HTML escaped, Markdown not."""
    env = Environment(
        loader=FileSystemLoader(PROJECT_DIR),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), disabled_extensions=("md", "md.j2"),
                                     default_for_string=True, default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update({
        "t": _in_page_language(pick),
        "num": _in_page_language(integer),
        "signed": _in_page_language(signed),
        "date": _in_page_language(long_date),
        "short_date": _in_page_language(short_date),
        "timestamp": _in_page_language(timestamp),
        "value": _in_page_language(value_text),
        "css_string": css_string,
    })
    env.tests["structured"] = lambda value: isinstance(value, list | tuple | dict)
    env.globals.update(dash=DASH, local_zone=LOCAL_ZONE)
    return env


def render(template: str, *, lang: str, **variables: Any) -> str:
    """Render `template` (named from the project folder) in `lang`."""
    return environment().get_template(template).render(lang=check_lang(lang), **variables)


def write_page(path: Path, template: str, *, lang: str, **variables: Any) -> Path:
    """Render and write a page, whole or not at all, owner-only."""
    return files.write_text(path, render(template, lang=lang, **variables))
