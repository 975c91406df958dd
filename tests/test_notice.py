"""The register description (`warehouse privacy-notice`): covers the controller's notice, follows the configuration.

Fast: configuration only, no database. The controller's notice (../shared/seed/tietosuojaseloste.fi.txt,
authoritative, and its English translation privacy-notice.en.md) is parsed here: its numbered headings and the
facts it states (read out of its text where a pattern can find them) must appear in the generated notice, in
the same section. Drift tests change a copy of one configuration file and check that the notice follows.
"""

from __future__ import annotations

import html
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import cli

from privacy.config import CONFIG_DIR, NOT_PERSONAL, load_data_map, load_disclosures, load_register
from privacy.notice import (
    FILE_STEMS,
    LABELS_DIR,
    MEASURES,
    NoticeError,
    build_notice,
    load_labels,
    period_words,
    render_html,
    render_markdown,
    write_notice,
)
from retention.policy import CLOCK_EVENTS, DEFAULT_POLICY, Period, load_policy

POLICY = load_policy()

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed"
SEED_FI = SEED / "tietosuojaseloste.fi.txt"
SEED_EN = SEED / "privacy-notice.en.md"
CONFIG_FILES = ("register.yml", "data_map.yml", "disclosures.yml")


# --- helpers ----------------------------------------------------------------------------------------------
def norm(text: str) -> str:
    """Compare text as a reader does: entities decoded, whitespace collapsed, case and the hyphen of a
    shared compound part ignored ("avaus ja irtisanomispäivä" in the seed = "avaus- ja irtisanomispäivä")."""
    text = html.unescape(text).replace("\xa0", " ")
    text = re.sub(r"(\w)- ", r"\1 ", text)
    return " ".join(text.split()).casefold()


def sections(text: str, heading: str) -> dict[int, tuple[str, str]]:
    """Number -> (heading, body) for the numbered headings `heading` (a regex: group 1 number, 2 title)."""
    matches = list(re.finditer(heading, text, re.MULTILINE))
    assert matches, f"no headings matching {heading!r}"
    return {int(m[1]): (m[2].strip(), text[m.end():(matches[i + 1].start() if i + 1 < len(matches) else None)])
            for i, m in enumerate(matches)}


def seed_fi() -> dict[int, tuple[str, str]]:
    assert SEED_FI.exists(), f"the controller's notice {SEED_FI} is missing: the generated notice must cover it"
    return sections(SEED_FI.read_text(encoding="utf-8"), r"^(\d{1,2})\.\s+(\S.*?)\s*$")


def seed_en() -> dict[int, tuple[str, str]]:
    assert SEED_EN.exists(), f"the English translation {SEED_EN} is missing"
    return sections(SEED_EN.read_text(encoding="utf-8"), r"^(\d{1,2})\. \*\*(.+?)\*\*")


def generated(markdown: str) -> dict[int, tuple[str, str]]:
    return sections(markdown, r"^## (\d{1,2})\. (.+)$")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = False

    def handle_starttag(self, tag, attrs):
        self.skip = tag in ("style", "title")

    def handle_endtag(self, tag):
        self.skip = False

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return "".join(parser.parts)


def extract(pattern: str, text: str, group: int = 1) -> str:
    """What `pattern` finds in `text`, its lines joined (the seed wraps sentences)."""
    match = re.search(pattern, " ".join(text.split()))
    assert match, f"the seed no longer says {pattern!r}"
    return " ".join(match[group].split())


def config_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "privacy"
    folder.mkdir()
    for name in CONFIG_FILES:
        shutil.copy(CONFIG_DIR / name, folder / name)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {path.name} exactly once"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> dict[str, dict[str, str]]:
    """The notices of the shipped configuration, as written to disk: lang -> {"md": text, "html": text}."""
    out = tmp_path_factory.mktemp("notice")
    paths = write_notice(out, policy=POLICY)
    assert sorted(p.name for p in paths) == sorted(f"{FILE_STEMS[lang]}{suffix}" for lang in ("fi", "en")
                                                   for suffix in (".html", ".md"))
    return {lang: {kind: (out / f"{FILE_STEMS[lang]}.{kind}").read_text(encoding="utf-8") for kind in ("md", "html")}
            for lang in ("fi", "en")}


# --- the notice covers the controller's notice ---------------------------------------------------------------
@pytest.mark.parametrize("lang", ["fi", "en"])
def test_every_section_heading_of_the_seed_in_order(shipped, lang):
    seed = seed_fi() if lang == "fi" else seed_en()
    assert sorted(seed) == list(range(1, 10))
    md, page = shipped[lang]["md"], norm(html_text(shipped[lang]["html"]))
    ours = generated(md)
    for number, (heading, _) in seed.items():
        assert norm(ours[number][0]) == norm(heading), f"§ {number}: {ours[number][0]!r} is not {heading!r}"
    positions = [page.find(norm(f"{number}. {heading}")) for number, (heading, _) in sorted(seed.items())]
    assert -1 not in positions, "a heading of the seed is missing from the HTML"
    assert positions == sorted(positions), "the HTML's sections are not in the seed's order"
    assert 10 in ours, "the retention periods (art. 13(2)(a)) follow the seed's sections"


def _assert_in(facts: dict[int, list[str]], seed: dict, md: str, page: str) -> None:
    ours = generated(md)
    for number, items in facts.items():
        for fact in items:
            assert norm(fact) in norm(seed[number][1]), f"test error: the seed's § {number} does not say {fact!r}"
            assert norm(fact) in norm(ours[number][1]), f"§ {number} of the notice does not say {fact!r}"
            assert norm(fact) in page, f"the HTML does not say {fact!r}"


def test_finnish_notice_states_the_seeds_facts(shipped):
    seed = seed_fi()
    s1, s2, s4, s6, s7, s8, s9 = (seed[n][1] for n in (1, 2, 4, 6, 7, 8, 9))
    name, street, town = (line.strip() for line in s1.strip().splitlines()[:3])
    facts = {
        1: [name, street, town.split()[0], town.split()[1], extract(r"y-tunnus\s+(\S+)", s1, 0)],
        2: [part.strip() for part in s2.strip().split(",")],  # unit, email, phone
        3: [seed[3][1].strip()],
        5: ["etu- ja sukunimi", "puhelinnumero", "sähköpostiosoite", "henkilötunnus", "laskutus", "perintä",
            "tuotteet ja palvelut", "avaus- ja irtisanomispäivä", "käyttäjätunnukset", "muut tunnisteet"],
        6: [extract(r"saadaan suoraan (asiakkaalta)", s6), extract(r"(asiakkuuden luomisen)", s6),
            extract(r"(palvelun tilaamisen)", s6)],
        7: [extract(r"luovuttaa (.+?) palvelun", s7),  # subcontractors and partners
            extract(r"henkilötiedot \((.+?)\)", s7),  # what the access-control operator gets
            extract(r"yhteydessä (kiinteistön kulunvalvonnan ylläpitäjälle)", s7),
            extract(r"luovutetaan (perintää hoitavalle yritykselle)", s7),
            extract(r"(EU:n tai ETA:n ulkopuolelle)", s7)],
        8: [sentence + "." for sentence in s8.strip().rstrip(".").split(". ")],
        9: [*(sentence + "." for sentence in s9.strip().split(". ")[:2]),  # the rights
            extract(r"([\w.]+@[\w.]+\w)", s9), extract(r"osoitteeseen (.+?)\.?\s*$", s9)],
    }
    md, html_page = shipped["fi"]["md"], shipped["fi"]["html"]
    page = norm(html_text(html_page))
    _assert_in(facts, seed, md, page)
    # § 4: every purpose of the seed, whatever its case ending: each word's stem.
    purposes = extract(r"käytetään (.+)\.", s4)
    ours = norm(generated(md)[4][1])
    for word in re.findall(r"\w{5,}", purposes):
        assert norm(word[:6]) in ours, f"§ 4 does not name the seed's purpose word {word!r}"
    # The date line is the seed's, with the date of this configuration (register.yml `updated`).
    assert extract(r"(Päivitetty) \S+", SEED_FI.read_text(encoding="utf-8")) in md
    updated = load_register().updated
    assert norm(f"Päivitetty {updated.day}.{updated.month}.{updated.year}") in norm(md)


def test_english_notice_states_the_translations_facts(shipped):
    seed = seed_en()
    s1, s2, s4, s6, s7, s8, s9 = (seed[n][1] for n in (1, 2, 4, 6, 7, 8, 9))
    facts = {
        1: [part.strip(" —.\n") for part in re.split(r",|\. ", s1) if part.strip(" —.\n")],
        2: [part.strip(" —.\n") for part in s2.split(",")],
        3: [seed[3][1].strip(" —.\n")],
        5: ["first and last name", "phone number", "email address", "personal identity code",
            "debt-collection", "products and services", "opening and termination date", "user IDs"],
        6: [extract(r"from the customer", s6, 0), extract(r"when (.+?) and ", s6),
            extract(r" and (a service is ordered)", s6)],
        7: [extract(r"disclosed to (subcontractors and partners)", s7),
            extract(r"personal data \((.+?)\)", s7),
            extract(r"disclosed to the (operator of the building's access control)", s7),
            extract(r"disclosed to the (company handling the collection)", s7),
            extract(r"(outside the EU or the EEA)", s7)],
        8: [sentence + "." for sentence in " ".join(s8.split()).strip(" —.").split(". ")],
        9: [extract(r"— (The data subject .+? corrected\.)", s9), extract(r"(Identity must be proven .+?\.)", s9),
            extract(r"([\w.]+@[\w.]+\w)", s9), extract(r"signed letter to (.+?)\.\s*$", s9)],
    }
    md = shipped["en"]["md"]
    page = norm(html_text(shipped["en"]["html"]))
    _assert_in(facts, seed, md, page)
    ours = norm(generated(md)[4][1])
    for word in re.findall(r"\w{5,}", extract(r"used to (.+)\.", s4)):
        assert norm(word[:6]) in ours, f"§ 4 does not name the translation's purpose word {word!r}"
    updated = load_register().updated
    assert norm(f"Updated {updated.day} {updated:%B %Y}") in norm(md)


def test_html_is_self_contained_and_print_friendly(shipped):
    for lang in ("fi", "en"):
        page = shipped[lang]["html"]
        assert f'<html lang="{lang}">' in page
        assert not re.search(r"https?://|<script|<link|<img|src=|@import|url\(", page)
        assert "@media print" in page and "@page" in page


def test_the_notice_holds_no_customer_data(shipped):
    """Only the controller's public contact data: no other email, phone or HETU."""
    for lang in ("fi", "en"):
        for text in shipped[lang].values():
            assert set(re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+\w", text)) == {"helpdesk@localnet.fi"}
            assert not re.search(r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b", text)
            # Numbers standing alone (not inside the hex fingerprint): only the controller's.
            numbers = set(re.findall(r"(?<![\w-])\+?\d[\d -]{7,}\d(?![\w-])", text))
            assert numbers <= {"0456-383370", "0723069-3", "728/2003"}


# --- the notice follows the configuration ----------------------------------------------------------------
def test_retention_period_change_reaches_both_languages(tmp_path):
    policy = tmp_path / "policy.yml"
    shutil.copy(DEFAULT_POLICY, policy)
    before_fi = render_markdown(build_notice("fi", policy=load_policy(policy)))
    assert "2 vuotta asiakaspalvelupyynnön sulkemisesta" in before_fi
    edit(policy, "clock_starts: ticket_closed\n    period: P2Y", "clock_starts: ticket_closed\n    period: P18M")
    fi = render_markdown(build_notice("fi", policy=load_policy(policy)))
    en = render_markdown(build_notice("en", policy=load_policy(policy)))
    assert "18 kuukautta asiakaspalvelupyynnön sulkemisesta" in generated(fi)[10][1]
    assert "2 vuotta asiakaspalvelupyynnön" not in fi
    assert "18 months after the customer-service ticket was closed" in generated(en)[10][1]
    assert "18 kuukautta" in html_text(render_html(build_notice("fi", policy=load_policy(policy))))


def test_policy_path_from_the_environment(tmp_path):
    policy = tmp_path / "policy.yml"
    shutil.copy(DEFAULT_POLICY, policy)
    edit(policy, "clock_starts: key_returned\n    period: P1Y", "clock_starts: key_returned\n    period: P30D")
    result = cli(tmp_path / "home", "privacy-notice", "--lang", "en", env={"WAREHOUSE_RETENTION_POLICY": str(policy)})
    assert result.exit_code == 0, result.output
    page = tmp_path / "home" / "reports" / "privacy" / "privacy-notice.en.md"
    assert "30 days after the key was returned" in page.read_text(encoding="utf-8")


def test_period_words():
    assert [period_words(Period.parse(p), "fi") for p in ("P1Y", "P3Y", "P18M", "P1M", "P1D", "P1Y6M", "P1Y1M1D")] == [
        "1 vuosi", "3 vuotta", "18 kuukautta", "1 kuukausi", "1 päivä", "1 vuosi ja 6 kuukautta",
        "1 vuosi, 1 kuukausi ja 1 päivä"]
    assert [period_words(Period.parse(p), "en") for p in ("P1Y", "P6Y", "P30D", "P2Y3M")] == [
        "1 year", "6 years", "30 days", "2 years and 3 months"]


def test_changed_legal_basis_needs_its_finnish(tmp_path):
    policy = tmp_path / "policy.yml"
    shutil.copy(DEFAULT_POLICY, policy)
    edit(policy, "two years, for handling complaints", "24 months, for handling complaints")
    assert "24 months, for handling complaints" in render_markdown(build_notice("en", policy=load_policy(policy)))
    with pytest.raises(NoticeError, match=r"no Finnish for the legal basis of retention rule customer_service_tickets"
                                          r".*notice_labels\.yml"):
        build_notice("fi", policy=load_policy(policy))


def test_no_hold_on_collection_cases(tmp_path):
    policy = tmp_path / "policy.yml"
    shutil.copy(DEFAULT_POLICY, policy)
    edit(policy, "open_collection_case: true", "open_collection_case: false")
    fi = build_notice("fi", policy=load_policy(policy))
    assert "perintäasia" not in fi.hold and "riita-asia" in fi.hold


def test_non_eea_recipient_is_named_with_its_safeguard(tmp_path):
    config = config_copy(tmp_path)
    fi_before = render_markdown(build_notice("fi", policy=POLICY, config_dir=config))
    assert "Tietoja ei siirretä EU:n tai ETA:n ulkopuolelle" in generated(fi_before)[7][1]
    edit(config / "disclosures.yml", "  - {name: Maventa Oy, rule: subcontracting, country: FI}\n",
         "  - {name: Maventa Oy, rule: subcontracting, country: FI}\n"
         "  - {name: Cloudmail Inc., rule: subcontracting, country: US, safeguard: standard contractual clauses}\n")
    fi = generated(render_markdown(build_notice("fi", policy=POLICY, config_dir=config)))[7][1]
    en = generated(render_markdown(build_notice("en", policy=POLICY, config_dir=config)))[7][1]
    assert "Tietoja siirretään EU:n tai ETA:n ulkopuolelle seuraaville vastaanottajille" in fi
    assert "Tietoja ei siirretä" not in fi
    assert ("Cloudmail Inc. (Yhdysvallat), suojatoimi: Euroopan komission hyväksymät vakiotietosuojalausekkeet"
            in fi)
    assert "Cloudmail Inc. (United States), safeguard: standard contractual clauses" in en
    assert "Data is not transferred" not in en
    # Listed with the other recipients of its rule, too.
    assert "Maventa Oy (Suomi), Cloudmail Inc. (Yhdysvallat)" in fi


def test_non_eea_recipient_without_safeguard_or_words_is_refused(tmp_path):
    config = config_copy(tmp_path)
    edit(config / "disclosures.yml", "  - {name: Maventa Oy, rule: subcontracting, country: FI}\n",
         "  - {name: Maventa Oy, rule: subcontracting, country: FI}\n"
         "  - {name: Cloudmail Inc., rule: subcontracting, country: US}\n")
    with pytest.raises(NoticeError, match=r"Cloudmail Inc\..*outside the EU/EEA, without a recorded `safeguard`"):
        build_notice("en", policy=POLICY, config_dir=config)
    edit(config / "disclosures.yml", "country: US}", "country: US, safeguard: a promise}")
    assert "Cloudmail Inc. (United States), safeguard: a promise" in render_markdown(
        build_notice("en", policy=POLICY, config_dir=config))
    with pytest.raises(NoticeError, match=r"no Finnish for the safeguard of Cloudmail Inc\."):
        build_notice("fi", policy=POLICY, config_dir=config)


def test_dataset_title_and_purposes_follow_the_data_map(tmp_path):
    config = config_copy(tmp_path)
    edit(config / "data_map.yml", "title: {en: Invoices, fi: Laskut}",
         "title: {en: Invoices and credit notes, fi: Laskut ja hyvityslaskut}")
    edit(config / "data_map.yml", "purposes: [essential.service, essential.service.operations.support, "
         "marketing.communications,\n", "purposes: [essential.service, essential.service.operations.support,\n")
    fi = generated(render_markdown(build_notice("fi", policy=POLICY, config_dir=config)))
    en = generated(render_markdown(build_notice("en", policy=POLICY, config_dir=config)))
    assert "**Laskut ja hyvityslaskut:** laskutus-, maksu- ja perintätiedot" in fi[5][1]
    assert "**Laskut:**" not in fi[5][1]
    assert "**Invoices and credit notes:**" in en[5][1]
    assert "markkinointi" not in fi[4][1] and "marketing" not in en[4][1]
    assert "asiakaspalvelu" in fi[4][1]


def test_register_facts_and_escaping_follow_register_yml(tmp_path):
    config = config_copy(tmp_path)
    edit(config / "register.yml", "phone: 0456-383370", "phone: 09-1234567")
    edit(config / "register.yml", "fi: Local Loop Oy:n asiakasrekisteri}",
         'fi: "Local Loop Oy:n <asiakas> & rekisteri"}')
    notice = build_notice("fi", policy=POLICY, config_dir=config)
    page = render_html(notice)
    assert "puhelin 09-1234567" in page and "0456-383370" not in page
    assert "Local Loop Oy:n &lt;asiakas&gt; &amp; rekisteri" in page


def test_a_category_without_words_is_refused(tmp_path):
    config = config_copy(tmp_path)
    edit(config / "data_map.yml", "      message_count: system.operations\n",
         "      message_count: system.operations\n      mood: user.biometric\n")
    with pytest.raises(NoticeError, match=r"staging\.stg_crm__tickets uses the data category user\.biometric"
                                          r".*categories\.yml"):
        build_notice("en", policy=POLICY, config_dir=config)


def test_labels_of_categories_and_combinations(tmp_path):
    labels = load_labels()
    data_map = load_data_map()
    used = {category for dataset in data_map.datasets.values() for category in dataset.columns.values()}
    missing = sorted(used - {NOT_PERSONAL} - set(labels.categories))
    assert not missing, f"data categories without fi/en words in privacy/categories.yml: {missing}"
    for category, words in labels.categories.items():
        assert words["fi"].strip() and words["en"].strip(), category
    for members, _ in labels.combined:
        assert members <= set(labels.categories), f"a combination names an unlabelled category: {members}"
    # A label file with a category lacking a language is refused when loaded.
    folder = tmp_path / "labels"
    shutil.copytree(LABELS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "templates", "__pycache__"))
    edit(folder / "categories.yml", "user.contact.email: {fi: sähköpostiosoite, en: email address}",
         "user.contact.email: {fi: sähköpostiosoite}")
    with pytest.raises(NoticeError, match=r"user\.contact\.email needs a non-empty `fi` and `en`"):
        load_labels(folder)


def test_descriptions_combine_and_order_labels(shipped):
    fi = generated(shipped["fi"]["md"])
    assert ("**Henkilö- ja yhteystiedot:** etu- ja sukunimi, yrityksen nimi ja Y-tunnus, henkilötunnus, "
            "sähköpostiosoite, puhelinnumero, postiosoite") in fi[5][1]
    assert "**Luovutettavat tiedot:** etu- ja sukunimi, puhelinnumero\n" in fi[7][1]
    # Identifiers last; lineage and status columns (system.operations) never.
    assert all(words.rstrip().endswith("asiakasnumero ja muut tunnisteet")
               for words in re.findall(r"\*\*(?:Laskut|Perintä|Konesalin avaimet):\*\* (.+)", fi[5][1]))


def test_words_for_every_retention_category_clock_event_and_legal_basis():
    labels = load_labels()
    assert set(labels.retention_categories) >= set(CLOCK_EVENTS)
    assert set(labels.clock_events) >= {event for events in CLOCK_EVENTS.values() for event in events}
    policy = load_policy(DEFAULT_POLICY)
    for rule in policy.rules:
        assert " ".join(rule.legal_basis.split()).casefold().rstrip(".") in labels.translations, rule.id
    assert " ".join(policy.holds_legal_basis.split()).casefold().rstrip(".") in labels.translations


def test_every_recipient_country_has_a_name():
    disclosures = load_disclosures()
    for lang in ("fi", "en"):
        notice = build_notice(lang, policy=POLICY)
        listed = " ".join(r for rule in notice.disclosures for r in rule.recipients)
        for recipient in disclosures.recipients.values():
            assert f"{recipient.name} (" in listed
            assert f"({recipient.country})" not in listed, "a country shown as its code"


# --- § 8: measures stated from what the warehouse does ---------------------------------------------------
def test_measures_hold_for_the_shipped_code(shipped):
    labels = load_labels()
    assert set(MEASURES) == set(labels.measures)
    for key, check in MEASURES.items():
        assert check(), f"the warehouse no longer does what § 8 says: {key}"
        assert norm(labels.measures[key]["fi"]) in norm(generated(shipped["fi"]["md"])[8][1])
        assert norm(labels.measures[key]["en"]) in norm(generated(shipped["en"]["md"])[8][1])


def test_a_measure_the_code_no_longer_takes_is_not_stated(monkeypatch):
    monkeypatch.setitem(MEASURES, "vault_encrypted", lambda: False)
    notice = build_notice("fi", policy=POLICY)
    assert not any("salattu" in measure for measure in notice.measures)
    assert len(notice.measures) == len(MEASURES) - 1


# --- the command -----------------------------------------------------------------------------------------
def test_cli_writes_the_notice_and_names_missing_words(tmp_path):
    home = tmp_path / "home"
    result = cli(home, "privacy-notice", "--lang", "fi")
    assert result.exit_code == 0, result.output
    folder = home / "reports" / "privacy"
    assert sorted(p.name for p in folder.iterdir()) == ["tietosuojaseloste.fi.html", "tietosuojaseloste.fi.md"]
    assert str(folder / "tietosuojaseloste.fi.html") in result.output.replace("\n", "")

    out = tmp_path / "out"
    result = cli(home, "privacy-notice", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert len(list(out.iterdir())) == 4

    policy = tmp_path / "policy.yml"
    shutil.copy(DEFAULT_POLICY, policy)
    edit(policy, "two years, for handling complaints", "24 months, for handling complaints")
    result = cli(home, "privacy-notice", "--out", str(tmp_path / "bad"),
                 env={"WAREHOUSE_RETENTION_POLICY": str(policy)})
    assert result.exit_code == 3
    assert "no Finnish for the legal basis" in result.output
    assert not (tmp_path / "bad").exists(), "nothing is written when one language cannot be"
