"""Monthly invoices, invoice lines, payments and collection cases, built from the service contracts."""

from __future__ import annotations

from datetime import date

import numpy as np

from . import catalogue, identifiers
from .days import DAY, NEVER, NEVER_TS, month_of, month_start, stamp, to_day, ymd
from .lifecycle import OPENING_FEE

VAT_CHANGE = to_day(date(2024, 9, 1))  # 24 % before, 25.5 % from this invoice date on
PAPER_FEE = 290
# Invoice status codes (index into STATUSES)
OPEN, PAID, CREDITED, IN_COLLECTION, WRITTEN_OFF = range(5)
STATUSES = ["open", "paid", "credited", "in_collection", "written_off"]
OUTCOME_STATUS = np.array([PAID, WRITTEN_OFF, CREDITED])  # by collection outcome
CASE_STATUSES = ["paid", "written_off", "cancelled"]


def make_billing(rng: np.random.Generator, cust: dict, svc: dict, end: int, first_export: int, n_orphan: int,
                 first_inv: int, first_pay: int, first_case: int) -> tuple[dict, dict, dict, dict]:
    """Return (invoices, lines, payments, cases) column dicts; their numbers start at the given first ones."""
    nc = len(cust["cust_no"])
    bday = cust["billing_day"]
    known = np.flatnonzero(svc["owner"] >= 0)
    owner = svc["owner"][known]
    b = bday[owner]
    # A service is billed for month m when it is open on that month's invoice date (day b of month m).
    _, _, odom = ymd(svc["open_day"][known])
    m0 = month_of(svc["open_day"][known]) + (odom > b)
    term = np.minimum(svc["term_day"][known], end + 1)
    _, _, tdom = ymd(term)
    m1 = month_of(term) - (tdom <= b)
    _, _, edom = ymd(np.array([end]))
    m_end = month_of(np.array([end]))[0] - (edom[0] < b)
    m1 = np.minimum(m1, m_end)
    n = np.maximum(0, m1 - m0 + 1)
    total = int(n.sum())
    line_svc = np.repeat(known, n)
    line_month = np.repeat(m0, n) + np.arange(total) - np.repeat(np.cumsum(n) - n, n)
    line_owner = svc["owner"][line_svc]
    kind = np.zeros(total, dtype=np.int8)  # 0 monthly fee, 1 opening fee, 2 paper-invoice fee
    unit = svc["fee"][line_svc]

    # One-off opening fee on the first invoice of a new service (no service_id on the line).
    fee = OPENING_FEE[svc["product"][known]]
    opening = (n > 0) & (fee > 0)
    line_svc = np.concatenate([line_svc, known[opening]])
    line_month = np.concatenate([line_month, m0[opening]])
    line_owner = np.concatenate([line_owner, owner[opening]])
    kind = np.concatenate([kind, np.ones(opening.sum(), dtype=np.int8)])
    unit = np.concatenate([unit, fee[opening]])

    inv_day_of_line = month_start(line_month) + bday[line_owner] - 1
    uniq, inv_of_line = np.unique(inv_day_of_line * nc + line_owner, return_inverse=True)
    n_inv = len(uniq)
    inv_owner = uniq % nc
    inv_day = uniq // nc
    inv_month = month_of(inv_day)

    # Payment method per customer; persons paying by bank transfer often get a paper invoice (with a fee).
    method = np.where(cust["business"], np.where(cust["einvoice"], 1, rng.choice([0, 2], nc, p=[0.7, 0.3])),
                      rng.choice(4, nc, p=[0.35, 0.30, 0.25, 0.10]))
    paper = ~cust["business"] & (method == 0) & (rng.random(nc) < 0.5)
    pinv = np.flatnonzero(paper[inv_owner])
    inv_of_line = np.concatenate([inv_of_line, pinv])
    line_svc = np.concatenate([line_svc, np.full(len(pinv), -1)])
    line_month = np.concatenate([line_month, inv_month[pinv]])
    kind = np.concatenate([kind, np.full(len(pinv), 2, dtype=np.int8)])
    unit = np.concatenate([unit, np.full(len(pinv), PAPER_FEE)])

    line_svc_no = np.where(line_svc >= 0, svc["svc_no"][np.maximum(line_svc, 0)], 0)
    order = np.lexsort((line_svc_no, kind, inv_of_line))
    inv_of_line, line_svc, line_month, kind, unit = (
        a[order] for a in (inv_of_line, line_svc, line_month, kind, unit))
    line_no = np.arange(len(order)) - np.searchsorted(inv_of_line, inv_of_line) + 1

    net = np.rint(np.bincount(inv_of_line, weights=unit, minlength=n_inv)).astype(np.int64)
    rate = np.where(inv_day < VAT_CHANGE, 240, 255)  # per mille
    vat = (net * rate + 500) // 1000  # round half up to cents
    created_ts = inv_day * DAY + 6 * 3600 + rng.integers(0, 3600, n_inv)  # nightly billing run

    # Invoice numbers with a gap after each anchor: the orphan lines point at those voided numbers.
    eligible = np.flatnonzero(inv_day <= first_export)
    anchors = np.sort(rng.choice(eligible, min(n_orphan, len(eligible)), replace=False))
    idx = np.arange(n_inv)
    inv_no = first_inv + idx + np.searchsorted(anchors, idx, side="left")

    # Status timeline: (st1 at ts1), then (st2 at ts2); NEVER_TS = has not happened.
    unpaid = cust["defaulter"][inv_owner] & (inv_day >= cust["default_inv1"][inv_owner])
    credited = ~unpaid & (rng.random(n_inv) < 0.004)
    due = inv_day + 14
    m = method[inv_owner]
    r = rng.random(n_inv)
    late = np.where(r < 0.80, -rng.integers(0, 11, n_inv),
                    np.where(r < 0.95, rng.integers(1, 31, n_inv), rng.integers(31, 56, n_inv)))
    paid_day = np.select([m == 2, m == 3], [due, inv_day + rng.integers(0, 3, n_inv)], due + late)
    paid_day = np.maximum(paid_day, inv_day)
    handover = cust["handover"][inv_owner]
    close = cust["close_day"][inv_owner]
    outcome = cust["outcome"][inv_owner]
    # Unpaid invoices not yet due at hand-over are credited when the services are cut off.
    cancelled = unpaid & (inv_day >= handover - 14)
    unpaid &= ~cancelled
    st1 = np.select([unpaid, cancelled | credited], [IN_COLLECTION, CREDITED], PAID)
    day1 = np.select([unpaid, cancelled, credited],
                     [handover, handover, inv_day + rng.integers(1, 21, n_inv)], paid_day)
    st2 = np.where(unpaid, OUTCOME_STATUS[outcome], OPEN)
    day2 = np.where(unpaid, close, NEVER)
    ts1 = np.where(day1 <= end, stamp(rng, np.minimum(day1, end), 7, 22), NEVER_TS)
    ts2 = np.where(day2 <= end, stamp(rng, np.minimum(day2, end), 7, 22), NEVER_TS)
    ts1 = np.maximum(ts1, created_ts + 60)
    ts2 = np.maximum(ts2, ts1 + 60)
    inv = {
        "inv_no": inv_no, "cust_no": cust["cust_no"][inv_owner], "owner": inv_owner, "inv_day": inv_day,
        "net": net, "vat": vat, "total": net + vat, "rate": (rate == 255).astype(np.int8),
        "ref_check": identifiers.reference_check_array(inv_no), "created_ts": created_ts,
        "st1": st1, "ts1": ts1, "day1": ts1 // DAY, "st2": st2, "ts2": ts2, "day2": ts2 // DAY,
    }

    lines = {
        "inv_no": inv_no[inv_of_line], "line_no": line_no, "kind": kind,
        "svc_no": np.where(line_svc >= 0, svc["svc_no"][np.maximum(line_svc, 0)], 0),
        "product": np.where(line_svc >= 0, svc["product"][np.maximum(line_svc, 0)], -1),
        "period_start": month_start(line_month), "period_end": month_start(line_month + 1) - 1,
        "unit": unit, "rate": inv["rate"][inv_of_line], "created_ts": created_ts[inv_of_line],
        "c_day": inv_day[inv_of_line],
    }
    if len(anchors):  # orphan lines: copies of the anchor invoice's first line under the voided number
        first_line = np.searchsorted(inv_of_line, anchors)
        orphan = {k: v[first_line] for k, v in lines.items()}
        orphan["inv_no"] = inv_no[anchors] + 1
        orphan["line_no"] = np.ones(len(anchors), dtype=np.int64)
        lines = {k: np.concatenate([v, orphan[k]]) for k, v in lines.items()}
        lines["orphan"] = np.arange(len(lines["inv_no"])) >= len(order)
    else:
        lines["orphan"] = np.zeros(len(lines["inv_no"]), dtype=bool)

    # Payments: ordinary ones, plus debts later paid through the collection agency (bank transfer).
    paid_direct = (st1 == PAID) & (ts1 < NEVER_TS)
    paid_coll = unpaid & (st2 == PAID) & (ts2 < NEVER_TS)
    p_inv = np.concatenate([np.flatnonzero(paid_direct), np.flatnonzero(paid_coll)])
    p_ts = np.concatenate([ts1[paid_direct], ts2[paid_coll]])
    p_method = np.concatenate([m[paid_direct], np.zeros(paid_coll.sum(), dtype=m.dtype)])
    order = np.lexsort((p_inv, p_ts))
    p_inv, p_ts, p_method = p_inv[order], p_ts[order], p_method[order]
    pay = {
        "pay_no": first_pay + np.arange(len(p_inv), dtype=np.int64), "inv_no": inv_no[p_inv],
        "paid_day": p_ts // DAY, "amount": inv["total"][p_inv], "method": p_method,
        "ref_check": inv["ref_check"][p_inv], "ts": p_ts,
    }

    # Collection cases: one per unpaid invoice handed over on day H.
    c_inv = np.flatnonzero(unpaid & (handover <= end))
    c_inv = c_inv[np.lexsort((inv_no[c_inv], handover[c_inv]))]
    agency_p = catalogue.weights([a[2] for a in catalogue.AGENCIES])
    agency = rng.choice(len(catalogue.AGENCIES), nc, p=agency_p)
    c_owner = inv_owner[c_inv]
    cases = {
        "case_no": first_case + np.arange(len(c_inv), dtype=np.int64), "cust_no": inv["cust_no"][c_inv],
        "inv_no": inv_no[c_inv], "agency": agency[c_owner], "handed_day": handover[c_inv],
        "handed_ts": ts1[c_inv], "amount": inv["total"][c_inv], "outcome": outcome[c_inv],
        "close_day": np.where(ts2[c_inv] < NEVER_TS, ts2[c_inv] // DAY, NEVER), "close_ts": ts2[c_inv],
    }
    return inv, lines, pay, cases
