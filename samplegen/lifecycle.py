"""Service contracts over time: openings, churn, up/downgrades, non-payment and key handovers."""

from __future__ import annotations

import numpy as np

from . import catalogue, rates
from .days import NEVER, NEVER_TS, month_of, month_start, stamp, ymd

PRODUCT_CODES = [p[0] for p in catalogue.PRODUCTS]
PRODUCT_CATEGORY = np.array([catalogue.CATEGORIES.index(p[2]) for p in catalogue.PRODUCTS])
PRICE = np.array([p[3] for p in catalogue.PRODUCTS], dtype=np.int64)
OPENING_FEE = np.array([p[4] for p in catalogue.PRODUCTS], dtype=np.int64)
BROADBAND, COLOCATION = catalogue.CATEGORIES.index("broadband"), catalogue.CATEGORIES.index("colocation")
NON_PAYMENT, OTHER = catalogue.REASONS.index("non_payment"), catalogue.REASONS.index("other")
SWITCH_TO = np.array([PRODUCT_CODES.index(catalogue.SWITCH_TO.get(code, code)) for code in PRODUCT_CODES])
# Outcome of a collection case: 0 paid, 1 written off, 2 cancelled (the invoice is credited).
OUTCOME_P = [0.55, 0.35, 0.10]


def group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group of a grouped (repeat-expanded) array."""
    total = np.cumsum(values)
    starts = (np.cumsum(counts) - counts)[counts > 0]
    return total - np.repeat(total[starts] - values[starts], counts[counts > 0])


def _churn(rng: np.random.Generator, product: np.ndarray, opened: np.ndarray, end: int):
    """Termination day (NEVER if still active at `end`) and voluntary reason for each service.

    Piecewise-constant monthly hazard: higher in the first year, and by product category.
    """
    cat = PRODUCT_CATEGORY[product]
    h1 = np.array([rates.CHURN[c][0] for c in catalogue.CATEGORIES])[cat]
    h2 = np.array([rates.CHURN[c][1] for c in catalogue.CATEGORIES])[cat]
    e = rng.exponential(1.0, len(product))
    months = np.where(e < 12 * h1, e / h1, 12 + (e - 12 * h1) / h2)
    term = opened + np.maximum(1, (months * 30.44).astype(np.int64))
    reason = np.where(cat == BROADBAND, rng.choice(5, len(product), p=catalogue.REASON_P_BROADBAND),
                      rng.choice(5, len(product), p=catalogue.REASON_P_OTHER))
    return np.where(term > end, NEVER, term), reason


def _fee(rng: np.random.Generator, product: np.ndarray, business: np.ndarray) -> np.ndarray:
    """List price with campaign discounts, and negotiated discounts on large business contracts."""
    price = PRICE[product]
    r = rng.random(len(product))
    discount = np.where(r < 0.10, 0.10, np.where(r < 0.15, 0.20, 0.0))
    negotiated = business & (price >= 20000) & (rng.random(len(product)) < 0.4)
    discount = np.where(negotiated, rng.integers(5, 31, len(product)) / 100, discount)
    return (np.round(price * (1 - discount) / 10) * 10).astype(np.int64)


def make_services(rng: np.random.Generator, cust: dict, start: int, end: int, n_unknown: int,
                  first_no: int) -> dict:
    """Service contracts of all customers plus defaulters' collection timeline (``cust`` gains columns).

    Service numbers start at ``first_no``.
    """
    nc = len(cust["cust_no"])
    business = cust["business"]
    k = cust["n_services"]
    owner = np.repeat(np.arange(nc), k)
    first = (np.cumsum(k) - k)[k > 0]
    gaps = rng.exponential(540.0, len(owner)).astype(np.int64)
    gaps[first] = 0
    opened = cust["first_open"][owner] + group_cumsum(gaps, k)
    keep = opened <= end
    owner, opened = owner[keep], opened[keep]
    p_person = catalogue.weights([p[5] for p in catalogue.PRODUCTS])
    p_business = catalogue.weights([p[6] for p in catalogue.PRODUCTS])
    b = business[owner]
    product = np.where(b, rng.choice(len(PRICE), len(owner), p=p_business),
                       rng.choice(len(PRICE), len(owner), p=p_person))
    term, reason = _churn(rng, product, opened, end)

    # Up/downgrades: a broadband service ends with reason 'other' and another product opens the same day.
    switch = (PRODUCT_CATEGORY[product] == BROADBAND) & (term < NEVER) & (rng.random(len(owner)) < rates.SWITCH_SHARE)
    reason[switch] = OTHER
    s_owner, s_opened, s_product = owner[switch], term[switch], SWITCH_TO[product[switch]]
    s_term, s_reason = _churn(rng, s_product, s_opened, end)
    switched = np.arange(len(owner) + len(s_owner)) >= len(owner)  # opened as an up/downgrade
    owner = np.concatenate([owner, s_owner])
    opened = np.concatenate([opened, s_opened])
    product = np.concatenate([product, s_product])
    term = np.concatenate([term, s_term])
    reason = np.concatenate([reason, s_reason])
    fee = _fee(rng, product, business[owner])

    # Non-payment: from day D the customer stops paying; ~60 days after the first unpaid due date the
    # debt goes to collection (day H) and every service still active is terminated for non_payment.
    last = np.full(nc, -1, dtype=np.int64)
    np.maximum.at(last, owner, np.minimum(term, end))
    first_open = cust["first_open"]
    valid = last - first_open > 90
    default_day = first_open + 60 + (rng.random(nc) * np.maximum(last - first_open - 60, 1)).astype(np.int64)
    bday = cust["billing_day"]
    _, _, dom = ymd(default_day)
    inv1 = month_start(month_of(default_day) + (dom > bday)) + bday - 1  # first invoice not paid
    handover = inv1 + 14 + 60 + rng.integers(0, 8, nc)
    active = np.zeros(nc, dtype=bool)
    np.logical_or.at(active, owner, (opened <= inv1[owner]) & (term > inv1[owner]))
    defaulter = (rng.random(nc) < np.where(business, 0.015, 0.03)) & valid & active & (cust["dup_of"] < 0)
    d = defaulter[owner]
    keep = ~(d & (opened >= handover[owner]))  # no new orders once the debt is in collection
    cut = d & (term > handover[owner]) & (handover[owner] <= end)
    term = np.where(cut, handover[owner], term)
    reason = np.where(cut, NON_PAYMENT, reason)
    owner, opened, product, term, reason, fee, switched = (
        a[keep] for a in (owner, opened, product, term, reason, fee, switched))
    cust["defaulter"] = defaulter
    cust["default_inv1"] = np.where(defaulter, inv1, NEVER)
    cust["handover"] = np.where(defaulter, handover, NEVER)
    cust["outcome"] = rng.choice(3, nc, p=OUTCOME_P)
    delay = np.select([cust["outcome"] == 0, cust["outcome"] == 1],
                      [rng.integers(20, 300, nc), rng.integers(180, 720, nc)], rng.integers(5, 60, nc))
    cust["close_day"] = np.where(defaulter, handover + delay, NEVER)

    # Services the CRM does not know (a defect): owner -1, customer numbers above every real one of the
    # block (the next block's numbers start above these).
    if n_unknown:
        u_open = rng.integers(start, end + 1, n_unknown)
        u_product = rng.choice(len(PRICE), n_unknown, p=p_business)
        u_term, u_reason = _churn(rng, u_product, u_open, end)
        owner = np.concatenate([owner, np.full(n_unknown, -1)])
        opened = np.concatenate([opened, u_open])
        product = np.concatenate([product, u_product])
        term = np.concatenate([term, u_term])
        reason = np.concatenate([reason, u_reason])
        fee = np.concatenate([fee, PRICE[u_product]])
        switched = np.concatenate([switched, np.zeros(n_unknown, dtype=bool)])
    cust_no = np.where(owner >= 0, cust["cust_no"][np.maximum(owner, 0)],
                       cust["cust_no"][-1] + 7 * (1 + np.cumsum(owner < 0)))

    s = len(owner)
    open_ts = stamp(rng, opened, 8, 17)
    term_ts = np.where(term < NEVER, stamp(rng, np.minimum(term, NEVER - 1), 8, 17), NEVER_TS)
    term_ts = np.where(term == opened, np.maximum(term_ts, open_ts + 60), term_ts)
    order = np.lexsort((product, owner, open_ts))
    svc = {
        "owner": owner, "cust_no": cust_no, "product": product, "fee": fee, "open_day": opened,
        "term_day": term, "reason": reason, "open_ts": open_ts, "term_ts": term_ts, "switched": switched,
    }
    svc = {key: v[order] for key, v in svc.items()}
    svc["svc_no"] = first_no + np.arange(s, dtype=np.int64)
    cat = PRODUCT_CATEGORY[svc["product"]]
    site_p = catalogue.weights([w for *_, w in catalogue.SITES])
    has_site = (cat == COLOCATION) | (cat == catalogue.CATEGORIES.index("vps"))
    svc["site"] = np.where(has_site, rng.choice(len(catalogue.SITES), s, p=site_p), -1)
    svc["r"] = rng.integers(0, 1 << 40, s)  # feeds circuit IDs, rack positions and IP prefixes in SQL
    return svc


def make_handovers(rng: np.random.Generator, cust: dict, svc: dict, pools, end: int, first_no: int) -> dict:
    """Data-centre keys signed out by colocation customers; returned at the latest when the contract ends."""
    colo = np.flatnonzero((PRODUCT_CATEGORY[svc["product"]] == COLOCATION) & (svc["owner"] >= 0))
    k = 1 + np.minimum(rng.poisson(0.8, len(colo)), 3)
    rows = np.repeat(colo, k)
    n = len(rows)
    opened, term = svc["open_day"][rows], svc["term_day"][rows]
    window = np.minimum(term, end) - opened
    signed = opened + (rng.random(n) * (window + 1)).astype(np.int64)
    returned = np.minimum(signed + 1 + rng.exponential(120.0, n).astype(np.int64), term)
    returned = np.where(returned > end, NEVER, returned)
    owner = svc["owner"][rows]
    contact = rng.random(n) < 0.3  # the customer's contact person, otherwise an employee
    male = rng.random(n) < 0.7
    employee_first = np.where(male, pools.first_male.sample(rng, n), pools.first_female.sample(rng, n))
    h = {
        "owner": owner,
        "site": svc["site"][rows],
        "key_no": rng.integers(1, 10000, n),
        "first_name": np.where(contact, cust["first_name"][owner], employee_first),
        "last_name": np.where(contact, cust["last_name"][owner], pools.last.sample(rng, n)),
        "phone_prefix": rng.integers(0, len(catalogue.MOBILE_PREFIXES), n),
        "phone_number": rng.integers(0, 10**7, n),
        "phone_fmt": rng.choice([0, 1, 2, 3, 5], n),
        "signed_day": signed,
        "returned_day": returned,
    }
    order = np.lexsort((rows, signed))
    h = {key: v[order] for key, v in h.items()}
    h["handover_no"] = first_no + np.arange(n, dtype=np.int64)
    return h
