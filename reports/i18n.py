# ruff: noqa: RUF001, RUF003 - the labels use real typography: minus signs, en dashes, no-break spaces
"""Labels and number/date formats of the reports, in English and Finnish.

Formats follow each language's conventions: English `€1,234.50`, `12.3%`, `18 June 2025`; Finnish
`1 234,50 €`, `12,3 %`, `18.6.2025`. Finnish separators are no-break spaces so a number never wraps.
"""

from __future__ import annotations

import math
from datetime import date, datetime

LANGS = ("en", "fi")
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

LABELS: dict[str, dict[str, str]] = {
    # Page
    "title": {"en": "Customer churn report", "fi": "Asiakaspoistumaraportti"},
    "company": {"en": "Local Loop Oy", "fi": "Local Loop Oy"},
    "report_month": {"en": "Month", "fi": "Kuukausi"},
    "partial_month": {"en": "Incomplete month: data up to {date}.",
                      "fi": "Keskeneräinen kuukausi: tiedot {date} asti."},
    "data_cutoff": {"en": "Data cut-off", "fi": "Tietojen rajapäivä"},
    "built_at": {"en": "Marts built", "fi": "Tietomallit päivitetty"},
    "generated_at": {"en": "Report generated", "fi": "Raportti luotu"},
    "first_month": {"en": "First month in the data", "fi": "Aineiston ensimmäinen kuukausi"},
    "freshness": {"en": "Data cut-off and freshness", "fi": "Tietojen rajapäivä ja tuoreus"},
    "quality_ok": {"en": "Data quality checks {run_at}: {checks} checks, no errors, {warnings} warnings.",
                   "fi": "Laatutarkistukset {run_at}: {checks} tarkistusta, ei virheitä, {warnings} varoitusta."},
    "quality_bad": {"en": "Data quality checks {run_at}: {errors} errors and {warnings} warnings in {checks} "
                          "checks — read the figures with care.",
                    "fi": "Laatutarkistukset {run_at}: {errors} virhettä ja {warnings} varoitusta {checks} "
                          "tarkistuksessa — tulkitse lukuja varoen."},
    "newest_export": {"en": "Newest export: {source}", "fi": "Uusin tiedosto: {source}"},
    "billing": {"en": "Billing", "fi": "Laskutus"},
    "services": {"en": "Services", "fi": "Palvelut"},
    "involuntary_share": {"en": "Involuntary churn (non-payment) was {share} of the MRR churned in {month}.",
                          "fi": "Tahaton poistuma (maksamattomuus) oli {share} {month_gen} poistuneesta MRR:stä."},
    "page": {"en": "Page", "fi": "Sivu"},
    "confidential": {"en": "Internal — management", "fi": "Sisäinen — johto"},
    # KPI tiles
    "kpis": {"en": "Key figures", "fi": "Tunnusluvut"},
    "customers": {"en": "Customers", "fi": "Asiakkaat"},
    "mrr": {"en": "MRR", "fi": "MRR (kk-laskutus)"},
    "logo_churn_rate": {"en": "Logo churn rate", "fi": "Asiakaspoistuma"},
    "gross_mrr_churn_rate": {"en": "Gross MRR churn", "fi": "MRR-poistuma, brutto"},
    "net_mrr_churn_rate": {"en": "Net MRR churn", "fi": "MRR-poistuma, netto"},
    "grr": {"en": "12-month GRR", "fi": "12 kk GRR"},
    "nrr": {"en": "12-month NRR", "fi": "12 kk NRR"},
    "vs_previous": {"en": "vs {month}", "fi": "vrt. {month}"},
    "pp": {"en": "pp", "fi": "%-yks."},
    "no_previous": {"en": "no previous month", "fi": "ei edellistä kuukautta"},
    "not_available": {"en": "n/a", "fi": "ei saatavilla"},
    # MRR bridge
    "bridge": {"en": "MRR bridge", "fi": "MRR-silta"},
    "bridge_caption": {"en": "How monthly recurring revenue moved from the start to the end of {month}.",
                       "fi": "Kuukausittain toistuvan laskutuksen (MRR) muutos {month_gen} alusta loppuun."},
    "axis_not_zero": {"en": "The value axis does not start at zero.", "fi": "Arvoakseli ei ala nollasta."},
    "start_mrr": {"en": "Start", "fi": "Alku"},
    "new_mrr": {"en": "New", "fi": "Uudet"},
    "expansion_mrr": {"en": "Expansion", "fi": "Kasvu"},
    "reactivation_mrr": {"en": "Reactivation", "fi": "Palanneet"},
    "contraction_mrr": {"en": "Contraction", "fi": "Supistuminen"},
    "churned_mrr": {"en": "Churn", "fi": "Poistuma"},
    "end_mrr": {"en": "End", "fi": "Loppu"},
    # Trends
    "trends": {"en": "24-month trends", "fi": "24 kuukauden kehitys"},
    "mrr_trend": {"en": "MRR at month end", "fi": "MRR kuukauden lopussa"},
    "churn_trend": {"en": "Monthly churn rates", "fi": "Kuukausittaiset poistumat"},
    "churn_mrr_by_type": {"en": "Churned MRR: voluntary and involuntary",
                          "fi": "Poistunut MRR: vapaaehtoinen ja tahaton"},
    "customers_trend": {"en": "Customers at month end", "fi": "Asiakkaat kuukauden lopussa"},
    # Cohorts
    "cohorts": {"en": "Cohort retention", "fi": "Kohorttien pysyvyys"},
    "cohorts_caption": {"en": "Share of each starting cohort still a customer, by months since its first month.",
                        "fi": "Osuus kunkin aloituskuukauden asiakkaista, jotka ovat yhä asiakkaita, "
                              "kuukausina ensimmäisestä kuukaudesta."},
    "cohort_month": {"en": "Cohort (first month)", "fi": "Kohortti (1. kuukausi)"},
    "months_since_start": {"en": "Months since start", "fi": "Kuukautta alusta"},
    "survival": {"en": "Customer survival by tenure", "fi": "Asiakkuuden kesto: eloonjäänti"},
    "survival_caption": {"en": "Kaplan–Meier estimate over all customers up to the data cut-off.",
                         "fi": "Kaplan–Meier-estimaatti kaikista asiakkaista rajapäivään asti."},
    "tenure_months": {"en": "Tenure, months", "fi": "Asiakkuuden kesto, kk"},
    # Segments
    "segments": {"en": "Churn by segment and reason", "fi": "Poistuma segmenteittäin ja syittäin"},
    "segments_caption": {"en": "Bars: average monthly MRR churn over the 12 months to {month}; dots: {month} alone.",
                         "fi": "Palkit: keskimääräinen kuukausittainen MRR-poistuma {month_gen} loppuun "
                               "päättyneiden 12 kuukauden ajalta; pisteet: {month}."},
    "twelve_months": {"en": "12-month average", "fi": "12 kk keskiarvo"},
    "this_month": {"en": "This month", "fi": "Tämä kuukausi"},
    "product_category": {"en": "Product category", "fi": "Tuoteryhmä"},
    "customer_type": {"en": "Customer type", "fi": "Asiakastyyppi"},
    "region": {"en": "Region", "fi": "Alue"},
    "tenure_band": {"en": "Tenure", "fi": "Asiakkuuden kesto"},
    "termination_reason": {"en": "Churned MRR by termination reason, 12 months",
                           "fi": "Poistunut MRR irtisanomisen syyn mukaan, 12 kk"},
    "churn_type": {"en": "Churn type", "fi": "Poistuman tyyppi"},
    "n_customers": {"en": "{n} customers", "fi": "{n} asiakasta"},
    "mrr_churn_rate": {"en": "MRR churn rate", "fi": "MRR-poistuma"},
    # Lost accounts
    "lost_accounts": {"en": "Largest lost accounts", "fi": "Suurimmat menetetyt asiakkaat"},
    "lost_caption": {"en": "Customers who churned in {month}, largest MRR first. Persons are shown only by a short "
                           "form of their pseudonymous key.",
                     "fi": "{month_in} poistuneet asiakkaat, suurin MRR ensin. Henkilöasiakkaista "
                           "näytetään vain pseudonyymiavaimen alku."},
    "account": {"en": "Account", "fi": "Asiakas"},
    "lost_mrr": {"en": "Lost MRR", "fi": "Menetetty MRR"},
    "tenure": {"en": "Tenure", "fi": "Kesto"},
    "months_abbr": {"en": "mo", "fi": "kk"},
    "reasons": {"en": "Reason", "fi": "Syy"},
    "person_key": {"en": "Person", "fi": "Henkilö"},
    "no_lost_accounts": {"en": "No customer churned this month.", "fi": "Yksikään asiakas ei poistunut."},
    "more_lost": {"en": "{n} more lost accounts with {mrr} MRR in total.",
                  "fi": "Lisäksi {n} muuta poistunutta asiakasta, yhteensä {mrr} MRR."},
    # Appendix
    "appendix": {"en": "Appendix: definitions", "fi": "Liite: määritelmät"},
    "no_data": {"en": "No data for this chart.", "fi": "Ei tietoja tähän kuvaajaan."},
    # Segment values
    "broadband": {"en": "Broadband", "fi": "Laajakaista"},
    "colocation": {"en": "Colocation", "fi": "Konesalitila"},
    "ip_transit": {"en": "IP transit", "fi": "IP-transit"},
    "vps": {"en": "Virtual servers", "fi": "Virtuaalipalvelimet"},
    "email": {"en": "Email", "fi": "Sähköposti"},
    "domain": {"en": "Domains", "fi": "Verkkotunnukset"},
    "person": {"en": "Person", "fi": "Henkilö"},
    "business": {"en": "Business", "fi": "Yritys"},
    "voluntary": {"en": "Voluntary", "fi": "Vapaaehtoinen"},
    "involuntary": {"en": "Involuntary (non-payment)", "fi": "Tahaton (maksamattomuus)"},
    "customer_request": {"en": "Customer request", "fi": "Asiakkaan pyyntö"},
    "moved": {"en": "Moved", "fi": "Muutto"},
    "price": {"en": "Price", "fi": "Hinta"},
    "competitor": {"en": "Competitor", "fi": "Kilpailija"},
    "other": {"en": "Other", "fi": "Muu"},
    "non_payment": {"en": "Non-payment", "fi": "Maksamattomuus"},
    "unknown": {"en": "Unknown", "fi": "Tuntematon"},
    "other_segments": {"en": "All others", "fi": "Muut yhteensä"},
}

# The appendix: the churn definitions the marts implement, one paragraph per item.
DEFINITIONS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("Active service and MRR", "A service counts in a month if it is active on the month's last day (in the "
         "cut-off month: on the cut-off date); a customer's MRR (monthly recurring revenue) for the month is the "
         "sum of its active services' monthly fees, excluding VAT."),
        ("Month spine and cut-off", "The months run from the first service ever opened to the month of the "
         "latest export (the data cut-off). Months after the cut-off do not exist, so services still open never "
         "look churned. The cut-off month itself is incomplete unless the cut-off is its last day."),
        ("Movements", "Per customer and month, as ChartMogul defines them: new (first month with MRR), expansion "
         "and contraction (MRR up or down while staying above zero — ending one of two services is "
         "contraction), churn (MRR goes to zero), reactivation (MRR back above zero after churn)."),
        ("MRR bridge", "Start MRR + new + expansion + reactivation − contraction − churn = end MRR, every month."),
        ("Logo churn rate", "Customers churned in the month / customers active at the start of the month."),
        ("Gross MRR churn rate", "(Churn + contraction) / start MRR."),
        ("Net MRR churn rate", "(Churn + contraction − expansion − reactivation) / start MRR. Negative when "
         "growth from existing customers exceeds their losses."),
        ("12-month GRR and NRR", "Gross and net revenue retention on the cohort of customers active 12 months "
         "earlier: gross counts each customer's MRR now at most up to its MRR then; net counts all of it."),
        ("Cohort", "Customers whose first month with MRR is the same month."),
        ("Involuntary churn", "Ended for non-payment: a churn is involuntary when every service the customer "
         "lost in the month ended for non-payment, otherwise voluntary."),
        ("Report month", "Unless a month is asked for, the report shows the latest complete month: the cut-off "
         "month if the cut-off is its last day, otherwise the month before it."),
    ],
    "fi": [
        ("Aktiivinen palvelu ja MRR", "Palvelu lasketaan kuukaudelle, jos se on voimassa kuukauden viimeisenä "
         "päivänä (rajapäivän kuukautena: rajapäivänä); asiakkaan kuukauden MRR (kuukausittain toistuva "
         "laskutus) on sen voimassa olevien palvelujen kuukausimaksujen summa ilman arvonlisäveroa."),
        ("Kuukausiakseli ja rajapäivä", "Kuukaudet alkavat ensimmäisen koskaan avatun palvelun kuukaudesta ja "
         "päättyvät viimeisimmän tiedoston kuukauteen (tietojen rajapäivä). Rajapäivän jälkeisiä kuukausia ei ole, "
         "joten yhä voimassa olevat palvelut eivät koskaan näytä poistuneilta. Rajapäivän kuukausi on "
         "keskeneräinen, ellei rajapäivä ole sen viimeinen päivä."),
        ("Muutokset", "Asiakas- ja kuukausikohtaisesti ChartMogulin määritelmin: uusi (ensimmäinen kuukausi, jolla "
         "on MRR:ää), kasvu ja supistuminen (MRR nousee tai laskee pysyen nollaa suurempana — toisen kahdesta "
         "palvelusta päättyminen on supistumista), poistuma (MRR laskee nollaan), palaaminen (MRR nousee "
         "poistuman jälkeen taas nollaa suuremmaksi)."),
        ("MRR-silta", "Alun MRR + uudet + kasvu + palanneet − supistuminen − poistuma = lopun MRR, joka kuukausi."),
        ("Asiakaspoistuma", "Kuukauden aikana poistuneet asiakkaat / kuukauden alussa aktiiviset asiakkaat."),
        ("MRR-poistuma, brutto", "(Poistuma + supistuminen) / alun MRR."),
        ("MRR-poistuma, netto", "(Poistuma + supistuminen − kasvu − palanneet) / alun MRR. Negatiivinen, kun "
         "nykyisten asiakkaiden kasvu ylittää niiden menetykset."),
        ("12 kk GRR ja NRR", "Brutto- ja nettomääräinen laskutuksen pysyvyys (gross/net revenue retention) 12 "
         "kuukautta aiemmin aktiivisten asiakkaiden joukossa: brutto laskee kunkin asiakkaan nykyisen MRR:n "
         "enintään sen silloiseen MRR:ään asti, netto kokonaan."),
        ("Kohortti", "Asiakkaat, joiden ensimmäinen kuukausi, jolla on MRR:ää, on sama."),
        ("Tahaton poistuma", "Maksamattomuuden vuoksi päättynyt asiakkuus: poistuma on tahaton, kun kaikki "
         "asiakkaan kuukauden aikana menettämät palvelut päättyivät maksamattomuuden vuoksi, muuten vapaaehtoinen."),
        ("Raportin kuukausi", "Ellei kuukautta pyydetä, raportti näyttää viimeisimmän kokonaisen kuukauden: "
         "rajapäivän kuukauden, jos rajapäivä on sen viimeinen päivä, muuten sitä edeltävän kuukauden."),
    ],
}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not one of {', '.join(LANGS)}")
    return lang


def label(key: str, lang: str, **values) -> str:
    """The label in the language; an unknown key (a new segment value) is shown as it is, readable."""
    entry = LABELS.get(key)
    text = entry[lang] if entry else key.replace("_", " ")
    return text.format(**values) if values else text


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


def money(value, lang: str, decimals: int = 0, sign: bool = False) -> str:
    """€1,234 / 1 234 € (decimals=2: €1,234.50 / 1 234,50 €); a dash when missing."""
    if _missing(value):
        return "–"
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
        return "–"
    text = number(float(rate) * 100, lang, decimals, sign)
    return f"{text}{NBSP}%" if lang == "fi" else f"{text}%"


def points(delta, lang: str, decimals: int = 1) -> str:
    """A change of a rate in percentage points: +0.4 pp / +0,4 %-yks."""
    if _missing(delta):
        return "–"
    return f"{number(float(delta) * 100, lang, decimals, sign=True)}{NBSP}{label('pp', lang)}"


def integer(value, lang: str, sign: bool = False) -> str:
    return "–" if _missing(value) else number(float(value), lang, 0, sign)


def long_date(value: date | datetime | None, lang: str) -> str:
    """18 June 2025 / 18.6.2025."""
    if value is None:
        return "–"
    if lang == "fi":
        return f"{value.day}.{value.month}.{value.year}"
    return f"{value.day} {MONTHS['en'][value.month - 1]} {value.year}"


def timestamp(value: datetime | None, lang: str) -> str:
    """18 June 2025 06:12 / 18.6.2025 klo 6.12."""
    if value is None:
        return "–"
    if not isinstance(value, datetime):
        return long_date(value, lang)
    if lang == "fi":
        return f"{long_date(value, lang)} klo {value.hour}.{value.minute:02d}"
    return f"{long_date(value, lang)} {value.hour:02d}:{value.minute:02d}"


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
