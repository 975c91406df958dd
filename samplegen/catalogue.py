"""Static reference data: products, data-centre sites, agencies, postal areas and text templates."""

from __future__ import annotations

import numpy as np

# code, name, category, list price (cents/month), opening fee (cents), weight for persons, for businesses
PRODUCTS = [
    ("KUITU100", "Kuitu 100M", "broadband", 2990, 4900, 30, 3),
    ("KUITU300", "Kuitu 300M", "broadband", 3990, 4900, 25, 3),
    ("KUITU1000", "Kuitu 1000M", "broadband", 5490, 4900, 10, 3),
    ("VDSL50", "Kupari VDSL 50M", "broadband", 3490, 4900, 8, 1),
    ("YRITYS100", "Yrityskuitu 100/100", "broadband", 8900, 19900, 0, 18),
    ("YRITYS1000", "Yrityskuitu 1000/1000", "broadband", 24900, 19900, 0, 8),
    ("COLO1U", "Konesalitila 1U", "colocation", 5900, 9900, 0.5, 6),
    ("COLO10U", "Konesalitila 10U", "colocation", 29000, 19900, 0, 5),
    ("COLO42U", "Räkkikaappi 42U", "colocation", 79000, 49000, 0, 3),
    ("TRANSIT1G", "IP-transit 1 Gbit/s", "ip_transit", 45000, 25000, 0, 5),
    ("TRANSIT10G", "IP-transit 10 Gbit/s", "ip_transit", 145000, 25000, 0, 2),
    ("VPS-S", "Virtuaalipalvelin S", "vps", 990, 0, 5, 4),
    ("VPS-M", "Virtuaalipalvelin M", "vps", 1990, 0, 2, 6),
    ("VPS-L", "Virtuaalipalvelin L", "vps", 4900, 0, 0.5, 5),
    ("POSTI", "Sähköposti Perus", "email", 290, 0, 6, 4),
    ("POSTIPRO", "Sähköposti Pro", "email", 690, 0, 2, 8),
    ("DOMAIN-FI", "Verkkotunnus .fi", "domain", 150, 0, 5, 6),
    ("DOMAIN-COM", "Verkkotunnus .com", "domain", 190, 0, 2, 4),
]
CATEGORIES = ["broadband", "colocation", "ip_transit", "vps", "email", "domain"]
# Broadband product a customer moves to when upgrading or downgrading.
SWITCH_TO = {
    "KUITU100": "KUITU300",
    "KUITU300": "KUITU1000",
    "KUITU1000": "KUITU300",
    "VDSL50": "KUITU100",
    "YRITYS100": "YRITYS1000",
    "YRITYS1000": "YRITYS100",
}

REASONS = ["customer_request", "moved", "price", "competitor", "other", "non_payment"]
# Voluntary termination reasons (non_payment comes from collection): broadband customers move house.
REASON_P_BROADBAND = [0.25, 0.30, 0.15, 0.20, 0.10]
REASON_P_OTHER = [0.50, 0.10, 0.15, 0.15, 0.10]

# code, building access-control operator (receives key holders' names and phones), weight
SITES = [("ESP1", "Securitas Oy", 5), ("HEL1", "Avarn Security Oy", 3), ("HEL2", "Securitas Oy", 2),
         ("TRE1", "Avarn Security Oy", 1)]

# name, country, weight, date format: Intrum's system pads day and month ("05.01.2024").
AGENCIES = [("Lindorff Oy", "FI", 5, "%-d.%-m.%Y"), ("Intrum Oy", "FI", 3, "%d.%m.%Y"),
            ("Svea Perintä Oy", "FI", 2, "%-d.%-m.%Y")]

METHODS = ["bank_transfer", "einvoice", "direct_debit", "card"]
CHANNELS = ["email", "phone", "chat", "web"]
CHANNEL_P = [0.40, 0.25, 0.20, 0.15]
LANGUAGES = ["fi", "sv", "en"]

# Faker's fi_FI postcodes are random digits, so postal codes come from real city ranges instead:
# city, first code, last code, step, weight (the company is in Espoo: the capital region dominates).
POSTAL_AREAS = [
    ("Helsinki", 100, 990, 10, 30), ("Espoo", 2100, 2940, 10, 20), ("Vantaa", 1300, 1770, 10, 10),
    ("Kauniainen", 2700, 2700, 10, 1), ("Kirkkonummi", 2400, 2440, 40, 2), ("Tampere", 33100, 33900, 100, 6),
    ("Turku", 20100, 20900, 100, 5), ("Oulu", 90100, 90900, 100, 4), ("Jyväskylä", 40100, 40900, 100, 3),
    ("Lahti", 15100, 15900, 100, 2), ("Kuopio", 70100, 70900, 100, 2), ("Porvoo", 6100, 6500, 100, 2),
    ("Vaasa", 65100, 65800, 100, 1), ("Hämeenlinna", 13100, 13900, 100, 1), ("Lohja", 8100, 8500, 100, 1),
    ("Järvenpää", 4400, 4480, 10, 1), ("Kerava", 4200, 4260, 10, 1), ("Seinäjoki", 60100, 60800, 100, 1),
]

EMAIL_DOMAINS = [("gmail.com", 30), ("localnet.fi", 20), ("hotmail.com", 10), ("outlook.com", 8),
                 ("luukku.com", 5), ("suomi24.fi", 5), ("elisanet.fi", 5), ("icloud.com", 5),
                 ("yahoo.com", 4)]
MOBILE_PREFIXES = ["040", "041", "044", "045", "046", "050"]
# Phone formats as typed by staff: 0 '040 123 4567', 1 '+358 40 1234567', 2 '0401234567',
# 3 '045-1234567', 4 '09 1234 5678' (landline), 5 '+358401234567'.
PHONE_FORMAT_P_PERSON = [0.30, 0.15, 0.25, 0.10, 0.02, 0.18]
PHONE_FORMAT_P_BUSINESS = [0.20, 0.15, 0.15, 0.05, 0.35, 0.10]

COMPANY_WORDS = [
    "Rakennus", "Kiinteistöhuolto", "Tilitoimisto", "Konsultointi", "IT-palvelut", "Kuljetus", "Sähkö",
    "Putkityö", "Hammaslääkäriasema", "Kauppa", "Autokorjaamo", "Media", "Arkkitehdit", "Lakitoimisto",
    "Ohjelmistot", "Logistiikka", "Catering", "Metalli", "Puutarha", "Design", "Data", "Verkkopalvelut",
    "Kone", "Maalaus", "Siivous", "Valokuvaus", "Tekniikka", "Kehitys", "Isännöinti", "Hotelli",
]
COMPANY_PLACES = ["Helsingin", "Espoon", "Vantaan", "Tampereen", "Turun", "Oulun", "Jyväskylän", "Lahden",
                  "Kuopion", "Porvoon", "Uudenmaan", "Pohjolan", "Suomen", "Länsi-Suomen", "Itä-Uudenmaan"]
COMPANY_SUFFIXES = [("Oy", 70), ("Oy Ab", 5), ("Ky", 10), ("Tmi", 8), ("Ab", 3), ("Oyj", 1), ("Osk", 3)]

# Ticket topics: (subject fi, subject en, first message fi, en, reply fi, en). {placeholders} are filled
# from the customer's row: the free text deliberately carries personal data, as real tickets do.
TICKET_TOPICS = [
    ("Yhteys ei toimi", "Connection down",
     "Hei, nettiyhteys on ollut poikki eilisestä asti. Asiakasnumero {customer_id}. Soittakaa numeroon "
     "{phone}. T. {first} {last}",
     "Hi, my internet connection has been down since yesterday. Customer number {customer_id}. Please "
     "call me at {phone}. {first} {last}",
     "Hei {first}, vika on paikallistettu laitetilaan ja korjaus on käynnissä. Pahoittelemme häiriötä.",
     "Hi {first}, the fault is in the equipment room and a technician is on the way. Sorry for the trouble."),
    ("Laskun tarkistus", "Question about my invoice",
     "Laskulla on mielestäni liikaa veloitusta, tarkistaisitteko? {first} {last}, {street}, {postal} {city}",
     "I think I was charged too much on my latest invoice, could you check? {first} {last}, {street}",
     "Hei, tarkistimme laskun ja hyvitämme erotuksen seuraavalla laskulla.",
     "Hello, we checked the invoice and will credit the difference on your next invoice."),
    ("Muutto", "Moving house",
     "Muutan pois osoitteesta {street}, {postal} {city} ensi kuussa. Voiko liittymän siirtää uuteen "
     "osoitteeseen? Puh. {phone}",
     "I am moving out of {street}, {postal} {city} next month. Can the subscription be moved? Tel. {phone}",
     "Hei {first}, liittymän voi siirtää. Lähetä uusi osoite niin tarkistamme saatavuuden.",
     "Hi {first}, yes, send us the new address and we will check availability."),
    ("Nopeampi liittymä", "Faster connection",
     "Haluaisin vaihtaa nopeampaan liittymään. Paljonko se maksaa? {first} {last}",
     "I would like to upgrade to a faster connection. How much is it? {first} {last}",
     "Hei, nopeamman liittymän hinta on hinnaston mukainen, vaihto onnistuu kuun vaihteessa.",
     "Hi, the faster plan follows the price list and we can switch it at the turn of the month."),
    ("Sähköpostiosoitteen muutos", "Change of e-mail address",
     "Vaihtakaa yhteystietoihini uusi sähköpostiosoite: {email}. Terveisin {first} {last}",
     "Please update my contact e-mail to {email}. Regards, {first} {last}",
     "Hei, yhteystiedot on päivitetty.", "Hi, your contact details have been updated."),
    ("Avainkortti konesaliin", "Data-centre key",
     "Tarvitsemme uuden avaimen konesaliin työntekijällemme. Yhteyshenkilö {first} {last}, {phone}",
     "We need a new data-centre key for our technician. Contact {first} {last}, {phone}",
     "Hei, avain on noudettavissa vastaanotosta henkilöllisyystodistusta vastaan.",
     "Hi, the key can be collected from the reception with an ID."),
]
# Follow-up messages (third and fourth message of a ticket), fi and en.
TICKET_FOLLOW_UPS = [("Kiitos nopeasta vastauksesta!", "Thanks for the quick answer!"),
                     ("Ole hyvä! Suljemme tiketin.", "You're welcome, we will close the ticket.")]


def weights(values) -> np.ndarray:
    """Normalise a sequence of non-negative weights into probabilities."""
    w = np.asarray(values, dtype=np.float64)
    return w / w.sum()


def postal_table() -> tuple[list[str], list[str], np.ndarray]:
    """Postal codes, their cities and sampling probabilities (a city's weight spread over its codes)."""
    codes, cities, w = [], [], []
    for city, first, last, step, weight in POSTAL_AREAS:
        area = range(first, last + 1, step)
        for code in area:
            codes.append(f"{code:05d}")
            cities.append(city)
            w.append(weight / len(area))
    return codes, cities, weights(w)
