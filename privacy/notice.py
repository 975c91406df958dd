"""The register description (tietosuojaseloste, GDPR art. 13, 14 and 30), generated from the configuration.

`warehouse privacy-notice` writes it in Finnish (authoritative) and English, as HTML and Markdown, in the
sections of the controller's notice (../shared/seed/tietosuojaseloste.fi.txt): 1 controller, 2 contact,
3 register name, 4 purposes, 5 data content, 6 sources, 7 disclosures, 8 security, 9 rights, and 10 the
retention periods (art. 13(2)(a)). Every statement about the register comes from the files that drive the
warehouse itself, so the notice and the system cannot drift apart:

- register.yml (privacy/config.py `load_register`): controller, contact, register name, the words for the
  purposes (§ 4) and sources (§ 6), security principles (§ 8), rights and where to send requests (§ 9);
- data_map.yml (`load_data_map`): the datasets of § 5 by title, each described by the fideslang categories
  of its personal columns (labels in categories.yml), and which purposes and sources are in use;
- disclosures.yml (`load_disclosures`): the rules, recipients and countries of § 7; the EU/EEA statement is
  derived from the recipients' countries;
- retention/policy.yml (loaded by the caller with retention/policy.py): each category's period, clock and legal basis;
- the warehouse's code, for the technical measures of § 8: each is stated only while a check of what the code
  does holds (`MEASURES`).

notice_labels.yml holds the headings and connecting sentences (labels as core/render.py loads them), and
Finnish for the English-only texts of the configuration (legal bases, safeguards). A category, clock event,
legal basis or safeguard without words is an error naming the file to complete: the notice never guesses. The
notice carries no customer's data: it reads configuration only, never the vault or analytics.
"""

from __future__ import annotations

import hashlib
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import Locale

from core import render
from privacy.config import CONFIG_DIR, NOT_PERSONAL, load_data_map, load_disclosures, load_register

LABELS_DIR = Path(__file__).resolve().parent
TEMPLATES = {".html": "privacy/templates/notice.html.j2", ".md": "privacy/templates/notice.md.j2"}
LANGS = ("fi", "en")
FILE_STEMS = {"fi": "tietosuojaseloste.fi", "en": "privacy-notice.en"}
SECTIONS = tuple(range(1, 11))  # 1-9 as in the controller's notice, 10 the retention periods


class NoticeError(ValueError):
    """The notice cannot be written truthfully: words are missing for something the configuration says."""


# --- what the warehouse does (§ 8) ---------------------------------------------------------------------
def _vault_encrypted() -> bool:
    """The vault is attached with an encryption key (DuckDB's AES-GCM); a plain attach would not be."""
    from core.vault import attach_sql

    return "encryption_key" in attach_sql(Path("vault.duckdb"), "0" * 64)


def _analytics_pseudonymised() -> bool:
    """Pseudonymous keys are HMAC-SHA256 (truncated to 128 bits): RFC 4231 test case 1."""
    from core.pseudonym import pseudonymous_key

    # RFC 4231 test case 2 has a 4-byte key, below what the warehouse accepts; test case 1's 20 bytes pass.
    return (pseudonymous_key(bytes.fromhex("0b" * 20), "Hi There")
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"[:32])


def _owner_only_files() -> bool:
    """A new home's folders and a new key file are closed to group and others."""
    from core.home import Home
    from core.keys import create_key

    with tempfile.TemporaryDirectory() as scratch:
        home = Home(Path(scratch) / "home").create()
        key = home.root / "keys" / "probe.key"
        create_key(key)
        paths = (home.root, home.logs, home.reports, home.tmp, key.parent, key)
        return all(stat.S_IMODE(path.stat().st_mode) & 0o077 == 0 for path in paths)


def _overdue_records_erased() -> bool:
    """Retention enforcement deletes or anonymises every kind of record (the data map's `on_erasure`)."""
    actions = {dataset.on_erasure for dataset in load_data_map(CONFIG_DIR).datasets.values()}
    return bool(actions) and actions <= {"delete", "anonymise"}


# Key in notice_labels.yml `measures` -> the check that the warehouse does what the sentence says.
MEASURES: dict[str, Callable[[], bool]] = {
    "vault_encrypted": _vault_encrypted,
    "analytics_pseudonymised": _analytics_pseudonymised,
    "owner_only_files": _owner_only_files,
}
ERASURE_CHECK = _overdue_records_erased  # § 10: "the data is deleted or anonymised"


# --- labels ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoticeLabels:
    version: str
    text: render.Labels
    categories: render.Labels
    combined: tuple[tuple[frozenset[str], dict[str, str]], ...]
    retention_categories: render.Labels
    clock_events: render.Labels
    measures: render.Labels
    translations: dict[str, str]  # normalised English -> Finnish
    files: tuple[Path, ...]


def _normal(text: str) -> str:
    return " ".join(str(text).split()).casefold().rstrip(".")


def load_labels(directory: Path = LABELS_DIR) -> NoticeLabels:
    """categories.yml and notice_labels.yml; every entry must have both languages."""
    categories_file, labels_file = paths = (directory / "categories.yml", directory / "notice_labels.yml")
    try:
        categories = render.load_labels(categories_file, "categories")
        text, retention_categories, clock_events, measures = (
            render.load_labels(labels_file, part) for part in ("text", "retention_categories", "clock_events",
                                                               "measures"))
    except render.LabelError as exc:
        raise NoticeError(str(exc)) from None
    categories_doc, labels_doc = render.read_yaml(categories_file), render.read_yaml(labels_file)
    combined = tuple((frozenset(entry["categories"]), {lang: entry[lang] for lang in LANGS})
                     for entry in categories_doc.get("combined", []))
    return NoticeLabels(
        version=str(labels_doc["version"]), text=text, categories=categories,
        combined=tuple(sorted(combined, key=lambda item: -len(item[0]))),
        retention_categories=retention_categories, clock_events=clock_events, measures=measures,
        translations={_normal(entry["en"]): " ".join(entry["fi"].split()) for entry in labels_doc["translations"]},
        files=paths)


def translated(english: str, lang: str, labels: NoticeLabels | None = None) -> str:
    """A configuration text written in English (a legal basis, a safeguard) in `lang`, from `translations`;
    the English when no Finnish is recorded (the notice refuses that case, other pages show the original)."""
    text = " ".join(english.split())
    if lang == "en":
        return text
    return (labels or load_labels()).translations.get(_normal(english), text)


# --- the notice -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Disclosure:
    title: str
    description: str
    fields: list[str]
    recipients: list[str]


@dataclass(frozen=True)
class Retention:
    data: str
    period: str
    basis: str


@dataclass(frozen=True)
class Notice:
    lang: str
    t: dict[str, str]
    updated: str
    controller: dict[str, str]
    contact: dict[str, str]
    register_name: str
    purposes: list[str]
    datasets: list[tuple[str, list[str]]]
    sources: list[str]
    disclosures: list[Disclosure]
    transfers: list[str]  # recipients outside the EU/EEA, with country and safeguard; empty: none
    security: list[str]
    measures: list[str]
    rights: str
    requests_to: dict[str, str]
    retention: list[Retention]
    hold: str | None
    hold_basis: str | None
    erased: bool
    versions: str


def period_words(period, lang: str) -> str:
    """P3Y -> '3 vuotta' / '3 years'; P1Y6M -> '1 vuosi ja 6 kuukautta' / '1 year and 6 months'."""
    units = {"fi": (("vuosi", "vuotta"), ("kuukausi", "kuukautta"), ("päivä", "päivää")),
             "en": (("year", "years"), ("month", "months"), ("day", "days"))}[lang]
    parts = [f"{n} {unit[0] if n == 1 else unit[1]}"
             for n, unit in zip((period.years, period.months, period.days), units, strict=True) if n]
    conjunction = " ja " if lang == "fi" else " and "
    return conjunction.join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else parts[0]


def build_notice(lang: str, *, policy, config_dir: Path = CONFIG_DIR, labels_dir: Path = LABELS_DIR) -> Notice:
    """The notice in `lang` from the privacy configuration in `config_dir` and the retention policy (a loaded
    retention.policy.Policy: the caller reads it, so the notice describes the policy the warehouse runs on)."""
    if lang not in LANGS:
        raise NoticeError(f"language {lang!r} is not one of {', '.join(LANGS)}")
    labels = load_labels(labels_dir)
    register = load_register(config_dir)
    data_map = load_data_map(config_dir)
    disclosures = load_disclosures(config_dir, data_map)
    t = labels.text.in_lang(lang)

    def finnish(english: str, what: str) -> str:
        if lang == "en":
            return " ".join(english.split())
        try:
            return labels.translations[_normal(english)]
        except KeyError:
            raise NoticeError(f"no Finnish for {what} {' '.join(english.split())!r}: add it to {labels.files[1]} "
                              "`translations` (en: the text as it stands, fi: its Finnish)") from None

    def describe(categories: Iterable[str], where: str) -> list[str]:
        present = list(dict.fromkeys(c for c in categories if c != NOT_PERSONAL))
        missing = [c for c in present if c not in labels.categories]
        if missing:
            raise NoticeError(f"{where} uses the data categor{'y' if len(missing) == 1 else 'ies'} "
                              f"{', '.join(missing)} without words for the notice: add them to {labels.files[0]}")
        order = list(labels.categories)
        words, done = [], set()
        for category in sorted(present, key=order.index):
            if category in done:
                continue
            combo = next(((members, text) for members, text in labels.combined
                          if category in members and members <= set(present) and not members & done), None)
            members, text = combo or (frozenset([category]), labels.categories[category])
            words.append(text[lang])
            done |= members
        return list(dict.fromkeys(words))

    territories = Locale(lang).territories

    def country(code: str) -> str:
        return territories.get(code.upper(), code)

    datasets = list(data_map.datasets.values())
    used_purposes = {p for d in datasets for p in d.purposes}
    used_sources = {d.source for d in datasets}

    rules = []
    for rule in disclosures.rules.values():
        recipients = [f"{r.name} ({country(r.country)})" for r in disclosures.recipients.values() if r.rule == rule.id]
        rules.append(Disclosure(rule.title[lang], " ".join(rule.description[lang].split()),
                                describe((data_map.category(f) for f in rule.allowed_fields),
                                         f"disclosures.yml rule {rule.id}"), recipients))
    transfers = []
    for recipient in disclosures.recipients.values():
        if recipient.country.upper() in disclosures.eea_countries:
            continue
        if not recipient.safeguard:
            raise NoticeError(f"disclosures.yml: {recipient.name} is in {recipient.country}, outside the EU/EEA, "
                              "without a recorded `safeguard`: record the transfer's safeguard before publishing")
        transfers.append(f"{recipient.name} ({country(recipient.country)}), {t['safeguard']}: "
                         f"{finnish(recipient.safeguard, f'the safeguard of {recipient.name}')}")

    retention = []
    for rule in policy.rules:
        for key, entries, file in ((rule.category, labels.retention_categories, "retention_categories"),
                                   (rule.clock_starts, labels.clock_events, "clock_events")):
            if key not in entries:
                raise NoticeError(f"retention rule {rule.id}: no words for {key!r} in {labels.files[1]} `{file}`")
        retention.append(Retention(
            labels.retention_categories[rule.category][lang],
            f"{period_words(rule.period, lang)} {labels.clock_events[rule.clock_starts][lang]}",
            finnish(rule.legal_basis, f"the legal basis of retention rule {rule.id}")))
    hold = t["retention_hold_collection"] if policy.hold_on_open_collection_case else t["retention_hold_disputes"]
    hold_basis = (finnish(policy.holds_legal_basis, "the legal basis of legal holds")
                  if policy.holds_legal_basis else None)

    measures = []
    for key, check in MEASURES.items():
        if key not in labels.measures:
            raise NoticeError(f"no words for the measure {key!r} in {labels.files[1]} `measures`")
        if check():
            measures.append(labels.measures[key][lang])

    controller = register.controller
    sources = [policy.source, *(config_dir / name for name in ("register.yml", "data_map.yml", "disclosures.yml")),
               *labels.files]
    fingerprint = hashlib.sha256(b"".join(Path(path).read_bytes() for path in sources if path)).hexdigest()[:12]
    return Notice(
        lang=lang, t=t,
        updated=t["updated"].format(date=render.long_date(register.updated, lang)),
        controller={key: str(controller[key]) for key in ("name", "street_address", "postal_code", "city",
                                                           "business_id")},
        contact={"unit": register.contact["unit"][lang], "email": register.contact["email"],
                 "phone": str(register.contact["phone"])},
        register_name=register.register_name[lang],
        purposes=[text[lang] for purpose, text in register.purposes.items() if purpose in used_purposes],
        datasets=[(d.title[lang], describe((d.columns[c] for c in d.personal_columns), f"data_map.yml {d.table}"))
                  for d in datasets if d.personal_columns],
        sources=[text[lang] for source, text in register.sources.items() if source in used_sources],
        disclosures=rules, transfers=transfers,
        security=list(register.security[lang]), measures=measures,
        rights=" ".join(register.rights[lang].split()),
        requests_to={"email": register.requests_to["email"], "postal": register.requests_to["postal"]},
        retention=retention, hold=hold, hold_basis=hold_basis, erased=ERASURE_CHECK(),
        versions=t["versions"].format(register=register.version, data_map=data_map.version,
                                      disclosures=disclosures.version, policy=policy.version,
                                      effective=render.long_date(policy.effective_from, lang), labels=labels.version,
                                      fingerprint=fingerprint),
    )


def render_html(notice: Notice) -> str:
    return render.render(TEMPLATES[".html"], lang=notice.lang, n=notice, t=notice.t)


def render_markdown(notice: Notice) -> str:
    return render.render(TEMPLATES[".md"], lang=notice.lang, n=notice, t=notice.t)


def write_notice(out_dir: Path, langs: Iterable[str] = LANGS, **sources: Any) -> list[Path]:
    """Write `<stem>.html` and `<stem>.md` per language into out_dir; returns the paths.

    `sources`: policy, config_dir, labels_dir as for `build_notice`. Every language is built before
    anything is written, so a missing translation leaves the earlier files as they were.
    """
    notices = [build_notice(lang, **sources) for lang in dict.fromkeys(langs)]
    written = []
    for notice in notices:
        for suffix, template in TEMPLATES.items():
            # whole or not at all: a reader never sees half a notice
            written.append(render.write_page(out_dir / f"{FILE_STEMS[notice.lang]}{suffix}", template,
                                             lang=notice.lang, n=notice, t=notice.t))
    return written
