"""Customers: persons and businesses with names, HETU / Y-tunnus, addresses and contact details.

Everything is an integer or pooled-string column; the text of emails, phones and addresses is put
together in SQL by the writer.
"""

from __future__ import annotations

import numpy as np

from . import catalogue, identifiers
from .days import DAY, from_ymd, stamp, ymd
from .pools import Pools


class Issued:
    """HETUs and Y-tunnus numbers of earlier blocks of a run: a later block must not give them out again."""

    def __init__(self) -> None:
        # Sorted, for _among: birth day * 1000 + individual number (as in _hetu), and Y-tunnus bases.
        self.hetu = np.empty(0, dtype=np.int64)
        self.ytunnus = np.empty(0, dtype=np.int64)

    def add(self, c: dict) -> None:
        person = ~c["business"]
        self.hetu = np.sort(np.concatenate([self.hetu, c["birth_day"][person] * 1000 + c["hetu_nnn"][person]]))
        self.ytunnus = np.sort(np.concatenate([self.ytunnus, c["ytunnus_base"][~person]]))


def _among(values: np.ndarray, issued: np.ndarray) -> np.ndarray:
    """Which values occur in the sorted array ``issued`` (np.isin would sort it again on every call)."""
    if not len(issued):
        return np.zeros(len(values), dtype=bool)
    return issued[np.minimum(np.searchsorted(issued, values), len(issued) - 1)] == values


def make_customers(rng: np.random.Generator, pools: Pools, n: int, n_dup: int, start: int, end: int,
                   first_export: int, first_no: int, issued: Issued) -> dict[str, np.ndarray]:
    """Return customer columns sorted by creation time; ``n_dup`` extra rows re-register existing persons.

    Customer numbers start at ``first_no``; HETUs and Y-tunnus numbers avoid those in ``issued``, and the
    block's own are added to it.
    """
    c: dict[str, np.ndarray] = {}
    business = rng.random(n) < 0.2
    c["business"] = business
    male = rng.random(n) < 0.5
    c["male"] = male
    c["lang"] = np.where(business, rng.choice(3, n, p=[0.92, 0.05, 0.03]),
                         rng.choice(3, n, p=[0.90, 0.07, 0.03])).astype(np.int8)
    prospect = rng.random(n) < 0.02  # registered, never ordered anything
    prospect[0] = False
    span = end - start + 1
    u = rng.random(n)
    # Growth: most customers register following a density rising over time, a few uniformly; the first
    # service opens up to three weeks after registration (it may not have opened yet at the end).
    t = np.where(rng.random(n) < 0.15, u, u ** (1 / 1.7))
    created = start + np.minimum((t * span).astype(np.int64), span - 1)
    first_open = created + rng.integers(0, 22, n)
    created[0] = first_open[0] = start  # the company's first service opened on the start day
    c["first_open"] = first_open
    c["created_ts"] = stamp(rng, created)
    c["n_services"] = np.where(prospect, 0, np.where(business, rng.choice([1, 2, 3], n, p=[0.40, 0.35, 0.25]),
                                                     rng.choice([1, 2, 3], n, p=[0.72, 0.21, 0.07])))

    sv = c["lang"] == 1
    first_fi = np.where(male, pools.first_male.sample(rng, n), pools.first_female.sample(rng, n))
    first_sv = np.where(male, pools.sv_first_male.sample(rng, n), pools.sv_first_female.sample(rng, n))
    c["first_name"] = np.where(sv, first_sv, first_fi)
    c["last_name"] = np.where(sv, pools.sv_last.sample(rng, n), pools.last.sample(rng, n))
    c["company_name"] = np.where(business, pools.companies.sample(rng, n), -1)

    _hetu(rng, c, created, ~business, issued.hetu)
    _ytunnus(rng, c, business, issued.ytunnus)
    _contact(rng, pools, c, business)
    c["consent"] = (rng.random(n) < 0.45).astype(np.int8)
    # An update of the record (a changed marketing consent, say) some time before the first export, for some
    # of the customers there by then; changes after it are changes.py's.
    created_day = c["created_ts"] // DAY
    upd_day = created_day + (rng.random(n) * (np.maximum(first_export, created_day) + 1 - created_day)).astype(np.int64)
    upd_ts = np.maximum(stamp(rng, upd_day), c["created_ts"] + 60)
    c["upd_ts"] = np.where((rng.random(n) < 0.3) & (created_day <= first_export), upd_ts, c["created_ts"])
    c["billing_day"] = rng.integers(1, 29, n)
    c["dup_of"] = np.full(n, -1, dtype=np.int64)

    if n_dup:
        c = _duplicates(rng, c, n_dup, first_export, end)
    order = np.argsort(c["created_ts"], kind="stable")
    c = {k: v[order] for k, v in c.items()}
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    c["dup_of"] = np.where(c["dup_of"] >= 0, rank[np.maximum(c["dup_of"], 0)], -1)
    c["cust_no"] = first_no + np.arange(len(order), dtype=np.int64)
    issued.add(c)
    return c


def _hetu(rng: np.random.Generator, c: dict, created: np.ndarray, person: np.ndarray, taken: np.ndarray) -> None:
    n = len(created)
    age_years = np.minimum(18 + rng.gamma(2.0, 12.0, n), 95)
    birth = created - (age_years * 365.25).astype(np.int64)
    year, month, dom = ymd(birth)
    sign = np.where(year >= 2000, 7 + rng.choice(6, n, p=[0.6] + [0.08] * 5),
                    1 + rng.choice(6, n, p=[0.85] + [0.03] * 5))
    persons = np.flatnonzero(person)
    if len(persons) >= 50:
        # '+' (born in the 1800s) is only kept so that every century sign in use is exercised:
        # such customers would be over 120, so it stays a tiny share of the oldest persons.
        k_plus = max(2, len(persons) // 5000)
        oldest = persons[np.argsort(-age_years[persons], kind="stable")[:k_plus]]
        year[oldest] = 1899 - rng.integers(0, 3, k_plus)
        dom[oldest] = np.minimum(dom[oldest], 28)
        birth[oldest] = from_ymd(year[oldest], month[oldest], dom[oldest])
        sign[oldest] = 0
        # Every newer century sign appears at least twice whenever that century has enough persons.
        for base, signs in ((1, range(2, 7)), (7, range(8, 13))):
            for s in signs:
                have = np.count_nonzero(sign[persons] == s)
                pool = persons[sign[persons] == base]
                if have < 2 and len(pool) > 10:
                    sign[rng.choice(pool, 2 - have, replace=False)] = s
    male = c["male"]
    nnn = 2 + 2 * rng.integers(0, 449, n) + male  # odd for men, even for women: 002-899
    while True:  # unique DDMMYY+NNN among persons, also those of earlier blocks
        key = birth[persons] * 1000 + nnn[persons]
        _, first = np.unique(key, return_index=True)
        clash = np.ones(len(persons), dtype=bool)
        clash[first] = False
        clash |= _among(key, taken)
        if not clash.any():
            break
        redo = persons[clash]
        nnn[redo] = 2 + 2 * rng.integers(0, 449, len(redo)) + male[redo]
    ddmmyy = dom * 10000 + month * 100 + year % 100
    c["birth_day"] = np.where(person, birth, 0)
    c["hetu_sign"] = np.where(person, sign, -1).astype(np.int8)
    c["hetu_nnn"] = nnn
    c["hetu_check"] = identifiers.hetu_check_index_array(ddmmyy, nnn)


def _ytunnus(rng: np.random.Generator, c: dict, business: np.ndarray, taken: np.ndarray) -> None:
    n = len(business)
    base = rng.integers(100000, 3300000, n)
    check = identifiers.ytunnus_check_array(base)
    idx = np.flatnonzero(business)
    while True:  # skip numbers that are never issued, and keep them unique (also across blocks)
        _, first = np.unique(base[idx], return_index=True)
        bad = np.ones(len(idx), dtype=bool)
        bad[first] = False
        bad |= (check[idx] < 0) | _among(base[idx], taken)
        if not bad.any():
            break
        redo = idx[bad]
        base[redo] = rng.integers(100000, 3300000, len(redo))
        check[redo] = identifiers.ytunnus_check_array(base[redo])
    c["ytunnus_base"] = base
    c["ytunnus_check"] = check
    c["einvoice"] = business & (rng.random(n) < 0.45)


def _contact(rng: np.random.Generator, pools: Pools, c: dict, business: np.ndarray) -> None:
    n = len(business)
    codes, cities, postal_p = pools.postal_codes, pools.postal_cities, pools.postal_p
    postal = rng.choice(len(codes), n, p=postal_p)
    c["postal_code"], c["city"] = codes[postal], cities[postal]
    c["street"] = pools.streets.sample(rng, n)
    c["house"] = np.minimum(rng.geometric(0.07, n), 199)
    # 0 house only, 1 stair and flat ('12 A 5'), 2 row house ('3 as 2'), 3 stair only ('10 B')
    c["apt_kind"] = np.where(business, rng.choice([0, 3], n, p=[0.8, 0.2]),
                             rng.choice([0, 1, 2], n, p=[0.35, 0.55, 0.10])).astype(np.int8)
    c["stair"] = rng.integers(0, 4, n).astype(np.int8)
    c["apt"] = rng.integers(1, 80, n)
    # Billing address: 0 same as delivery, 1 another street address, 2 a PO box (businesses)
    c["bill_kind"] = np.where(business, rng.choice([0, 1, 2], n, p=[0.75, 0.08, 0.17]),
                              rng.choice([0, 1], n, p=[0.95, 0.05])).astype(np.int8)
    c["bill_street"] = pools.streets.sample(rng, n)
    c["bill_house"] = np.minimum(rng.geometric(0.07, n), 199)
    bill_postal = rng.choice(len(codes), n, p=postal_p)
    c["bill_postal_code"], c["bill_city"] = codes[bill_postal], cities[bill_postal]
    c["po_box"] = rng.integers(1, 1000, n)
    c["phone_prefix"] = rng.integers(0, len(catalogue.MOBILE_PREFIXES), n).astype(np.int8)
    c["phone_number"] = rng.integers(0, 10**7, n)
    c["landline"] = rng.integers(2 * 10**7, 10**8, n)
    c["phone_fmt"] = np.where(business, rng.choice(6, n, p=catalogue.PHONE_FORMAT_P_BUSINESS),
                              rng.choice(6, n, p=catalogue.PHONE_FORMAT_P_PERSON)).astype(np.int8)
    # Email: persons 0 first.last, 1 firstlast, 2 first_last, 3 initial.last;
    # businesses 0 first.last@company, 1 info@company, 2 a personal address at a free domain.
    c["email_kind"] = np.where(business, rng.choice([0, 1, 2], n, p=[0.70, 0.15, 0.15]),
                               rng.choice(4, n, p=[0.5, 0.2, 0.1, 0.2])).astype(np.int8)
    c["email_digits"] = np.where(rng.random(n) < 0.25, rng.integers(1, 100, n), -1)
    c["email_domain"] = rng.choice(len(catalogue.EMAIL_DOMAINS), n,
                                   p=catalogue.weights([w for _, w in catalogue.EMAIL_DOMAINS]))
    c["email_mixed"] = rng.random(n) < 0.08  # typed with capitals, e.g. Matti.Virtanen@Gmail.com


def _duplicates(rng: np.random.Generator, c: dict, n_dup: int, first_export: int, end: int) -> dict:
    """The same person registered again later: same HETU and name, slightly different address/phone."""
    created_day = c["created_ts"] // DAY
    candidates = np.flatnonzero(~c["business"] & (c["n_services"] > 0) & (created_day <= first_export - 60))
    if len(candidates) == 0:
        return c
    orig = np.sort(rng.choice(candidates, min(n_dup, len(candidates)), replace=False))
    k = len(orig)
    d = {key: v[orig].copy() for key, v in c.items()}
    gap = rng.integers(30, np.maximum(31, first_export - created_day[orig]))
    day = np.minimum(created_day[orig] + gap, first_export - 1)
    d["created_ts"] = stamp(rng, day)
    d["upd_ts"] = d["created_ts"]
    d["first_open"] = np.minimum(day + rng.integers(0, 15, k), end)
    d["n_services"] = np.ones(k, dtype=np.int64)
    d["house"] = d["house"] + rng.integers(1, 4, k)
    d["apt"] = d["apt"] % 79 + 1
    d["phone_fmt"] = ((d["phone_fmt"] + rng.integers(1, 6, k)) % 6).astype(np.int8)
    d["phone_number"] = np.where(rng.random(k) < 0.4, rng.integers(0, 10**7, k), d["phone_number"])
    d["dup_of"] = orig
    return {key: np.concatenate([c[key], d[key]]) for key in c}
