"""What changes from one daily export to the next besides the service lifecycle: customer records that
change (moves, phone numbers, e-mail addresses, marketing consent) and customers erased at the source.

A customer's record is a base row (its state up to the first export) and one version per day on which it
changed, each carrying every column as it is from that day on. An unchanged customer thus has one row of
values and is written the same, byte for byte, in every snapshot.
"""

from __future__ import annotations

import numpy as np

from . import billing, catalogue
from .days import DAY, NEVER, stamp
from .lifecycle import group_cumsum
from .pools import Pools
from .rates import Rates

MOVE, PHONE, EMAIL, CONSENT = 1, 2, 4, 8
KINDS = {MOVE: "moved", PHONE: "phone_changed", EMAIL: "email_changed", CONSENT: "consent_changed"}
# The customer columns each kind of change sets.
FIELDS = {
    MOVE: ["street", "house", "apt_kind", "stair", "apt", "postal_code", "city"],
    PHONE: ["phone_prefix", "phone_number", "landline", "phone_fmt"],
    EMAIL: ["email_kind", "email_digits", "email_domain", "email_mixed"],
    CONSENT: ["consent"],
}
_SPAN = 1 << 32  # key of a change: customer index * _SPAN + day


def choose_deletions(rng: np.random.Generator, cust: dict, svc: dict, days: list[int], rates: Rates) -> None:
    """Customers erased at the source on one of the days after the first export (`cust` gains `del_day`).

    Only ex-customers qualify: no service for a year before the first export, no debt, no duplicate record.
    """
    nc = len(cust["cust_no"])
    cust["del_day"] = np.full(nc, NEVER, dtype=np.int64)
    if len(days) < 2 or rates.deletion <= 0:
        return
    first = days[0]
    known = svc["owner"] >= 0
    last_end = np.full(nc, -1, dtype=np.int64)
    np.maximum.at(last_end, svc["owner"][known], svc["term_day"][known])
    created_day = cust["created_ts"] // DAY
    has_dup = np.zeros(nc, dtype=bool)
    has_dup[cust["dup_of"][cust["dup_of"] >= 0]] = True
    candidates = np.flatnonzero((last_end < first - 365) & (created_day < first - 30) & ~cust["defaulter"]
                                & (cust["dup_of"] < 0) & ~has_dup)
    k = min(len(candidates), max(1, int(rng.binomial(nc * (len(days) - 1), rates.per_day("deletion")))))
    chosen = np.sort(rng.choice(candidates, k, replace=False))
    cust["del_day"][chosen] = rng.choice(days[1:], k)


def make_changes(rng: np.random.Generator, pools: Pools, cust: dict, days: list[int], rates: Rates) -> dict:
    """The customer records' changes on the days after the first export, one row per customer and day.

    Columns: `idx` (customer), `day`, `ts` (the new updated_at), `kinds` (bits MOVE | PHONE | EMAIL |
    CONSENT) and every column of FIELDS as it is from that day on (earlier changes carried forward).
    A change falls on a day the customer is in the snapshots before and after it (created before, not
    yet deleted), and always alters what the snapshot shows for its kind.
    """
    nc = len(cust["cust_no"])
    business = cust["business"]
    created_day = cust["created_ts"] // DAY
    # Days a customer can change on: in the snapshot the day before and on the day itself.
    lo = np.maximum(days[-1] - len(days) + 2, created_day + 1)
    window = np.maximum(0, np.minimum(days[-1], cust["del_day"] - 1) - lo + 1)

    chance = {MOVE: np.where(business, rates.per_day("move_business"), rates.per_day("move_person")),
              PHONE: rates.per_day("phone"), EMAIL: rates.per_day("email"), CONSENT: rates.per_day("consent")}
    events: dict[int, dict[str, np.ndarray]] = {}
    for kind, p in chance.items():
        k = rng.binomial(window, p)
        idx = np.repeat(np.arange(nc), k)
        day = lo[idx] + (rng.random(len(idx)) * window[idx]).astype(np.int64)
        keys = np.unique(idx * _SPAN + day)  # at most one change of a kind per customer and day, in order
        idx = keys // _SPAN
        events[kind] = {"key": keys, "idx": idx, "day": keys % _SPAN,
                        "counts": np.bincount(idx, minlength=nc)}
    _moves(rng, pools, cust, events[MOVE])
    _phones(rng, cust, events[PHONE])
    _emails(rng, cust, events[EMAIL])
    e = events[CONSENT]
    e["consent"] = (cust["consent"][e["idx"]] + group_cumsum(np.ones(len(e["idx"]), dtype=np.int64),
                                                             e["counts"])) % 2

    keys = np.unique(np.concatenate([e["key"] for e in events.values()]))
    idx = keys // _SPAN
    out = {"idx": idx, "day": keys % _SPAN, "kinds": np.zeros(len(keys), dtype=np.int8)}
    out["ts"] = stamp(rng, out["day"])
    for kind, e in events.items():
        for column in FIELDS[kind]:
            out[column] = cust[column][idx]
        if not len(e["key"]):
            continue
        # The kind's latest change on or before each day that has a change of any kind.
        pos = np.searchsorted(e["key"], keys, side="right") - 1
        at = np.maximum(pos, 0)
        has = (pos >= 0) & (e["idx"][at] == idx)
        out["kinds"][has & (e["key"][at] == keys)] |= kind
        for column in FIELDS[kind]:
            out[column] = np.where(has, e[column][at], out[column]).astype(out[column].dtype)
    return out


def _previous(values: np.ndarray, base: np.ndarray, e: dict) -> np.ndarray:
    """Each change's value before it: the customer's previous change of the kind, or the base row."""
    prev = base[e["idx"]].copy()
    same = np.flatnonzero(e["idx"][1:] == e["idx"][:-1]) + 1
    prev[same] = values[same - 1]
    return prev


def _moves(rng: np.random.Generator, pools: Pools, cust: dict, e: dict) -> None:
    """A new delivery address (a billing address of its own stays; a PO box moves with the postal code)."""
    n = len(e["idx"])
    business = cust["business"][e["idx"]]
    e["street"] = pools.streets.sample(rng, n)
    e["house"] = np.minimum(rng.geometric(0.07, n), 199)
    e["apt_kind"] = np.where(business, rng.choice([0, 3], n, p=[0.8, 0.2]),
                             rng.choice([0, 1, 2], n, p=[0.35, 0.55, 0.10])).astype(np.int8)
    e["stair"] = rng.integers(0, 4, n).astype(np.int8)
    e["apt"] = rng.integers(1, 80, n)
    postal = rng.choice(len(pools.postal_codes), n, p=pools.postal_p)
    e["postal_code"], e["city"] = pools.postal_codes[postal], pools.postal_cities[postal]
    while True:  # a move to the same street and house number would not show: take the next house
        same = ((e["street"] == _previous(e["street"], cust["street"], e))
                & (e["house"] == _previous(e["house"], cust["house"], e)))
        if not same.any():
            break
        e["house"][same] = e["house"][same] % 199 + 1


def _phones(rng: np.random.Generator, cust: dict, e: dict) -> None:
    """A new number (never the previous one), typed in the format of whoever takes it down."""
    n = len(e["idx"])
    i = e["idx"]
    business = cust["business"][i]
    e["phone_prefix"] = rng.integers(0, len(catalogue.MOBILE_PREFIXES), n).astype(cust["phone_prefix"].dtype)
    e["phone_number"] = (cust["phone_number"][i] + group_cumsum(rng.integers(1, 10**7, n), e["counts"])) % 10**7
    e["landline"] = 2 * 10**7 + (cust["landline"][i] - 2 * 10**7
                                 + group_cumsum(rng.integers(1, 8 * 10**7, n), e["counts"])) % (8 * 10**7)
    e["phone_fmt"] = np.where(business, rng.choice(6, n, p=catalogue.PHONE_FORMAT_P_BUSINESS),
                              rng.choice(6, n, p=catalogue.PHONE_FORMAT_P_PERSON)).astype(np.int8)


def _emails(rng: np.random.Generator, cust: dict, e: dict) -> None:
    """A new address: persons move to another domain; businesses to another kind of address."""
    n = len(e["idx"])
    i = e["idx"]
    business = cust["business"][i]
    n_domains = len(catalogue.EMAIL_DOMAINS)
    e["email_domain"] = (cust["email_domain"][i] + group_cumsum(rng.integers(1, n_domains, n), e["counts"])
                         ) % n_domains
    business_kind = (cust["email_kind"][i] + group_cumsum(rng.integers(1, 3, n), e["counts"])) % 3
    e["email_kind"] = np.where(business, business_kind, rng.choice(4, n, p=[0.5, 0.2, 0.1, 0.2])).astype(np.int8)
    e["email_digits"] = np.where(rng.random(n) < 0.25, rng.integers(1, 100, n), -1)
    e["email_mixed"] = rng.random(n) < 0.08


def versions(cust: dict, changes: dict, columns: list[str]) -> dict[str, np.ndarray]:
    """Every version of every customer row: `columns` plus `ver` (0 = the base row), and the days
    `ver_from` (inclusive) and `ver_to` (exclusive) between which a snapshot shows it."""
    nc = len(cust["cust_no"])
    idx = changes["idx"]
    out = {c: np.concatenate([cust[c], changes[c] if c in changes else cust[c][idx]]) for c in columns
           if c not in ("idx", "upd_ts")}
    out["idx"] = np.concatenate([np.arange(nc), idx])
    out["upd_ts"] = np.concatenate([cust["upd_ts"], changes["ts"]])
    out["ver"] = np.concatenate([np.zeros(nc, dtype=np.int8), np.ones(len(idx), dtype=np.int8)])
    out["ver_from"] = np.concatenate([np.zeros(nc, dtype=np.int64), changes["day"]])
    order = np.lexsort((out["ver_from"], out["idx"]))
    out = {k: v[order] for k, v in out.items()}
    following = np.append(out["idx"][1:] == out["idx"][:-1], False)
    out["ver_to"] = np.where(following, np.append(out["ver_from"][1:], NEVER), NEVER)
    return out


def day_counts(days: list[int], cust: dict, changes: dict, svc: dict, handovers: dict,
               corrected: dict[str, np.ndarray], static: bool = False) -> list[dict]:
    """What each snapshot after the first adds, changes and removes, and why (counts by kind), by entity.

    `corrected`: keys (numbers) of snapshot rows the first export wrote with a defect of that export only;
    they are written clean from the second day on, a change the warehouse sees like any other.
    `static`: the later days repeat the first day's snapshots, so every count is 0.
    """
    created = cust["created_ts"] // DAY
    del_day = cust["del_day"]
    owner_del = np.where(svc["owner"] >= 0, del_day[np.maximum(svc["owner"], 0)], NEVER)
    ho_del = del_day[handovers["owner"]]
    out = []
    for i, d in enumerate(days[1:]):
        on_day = changes["day"] == d
        kinds = changes["kinds"][on_day]
        customers = {"added": int(np.count_nonzero((created == d) & (del_day > d))),
                     "changed": int(np.count_nonzero(on_day)),
                     "removed": int(np.count_nonzero((del_day == d) & (created < d)))}
        customers |= {name: int(np.count_nonzero(kinds & kind)) for kind, name in KINDS.items()}

        live = owner_del > d
        opened = (svc["open_day"] == d) & live
        ended = (svc["term_day"] == d) & live
        changed = ended & (svc["open_day"] < d)
        fixed = np.isin(svc["svc_no"], corrected.get("services", [])) if i == 0 else np.zeros_like(changed)
        services = {"added": int(np.count_nonzero(opened)), "changed": int(np.count_nonzero(changed | fixed)),
                    "removed": int(np.count_nonzero((owner_del == d) & (svc["open_day"] < d))),
                    "opened": int(np.count_nonzero(opened)),
                    "product_changed": int(np.count_nonzero(opened & svc["switched"])),
                    "terminated": int(np.count_nonzero(ended)), "corrected": int(np.count_nonzero(fixed))}

        live = ho_del > d
        signed = (handovers["signed_day"] == d) & live
        returned = (handovers["returned_day"] == d) & live
        keys = {"added": int(np.count_nonzero(signed)),
                "changed": int(np.count_nonzero(returned & (handovers["signed_day"] < d))),
                "removed": int(np.count_nonzero((ho_del == d) & (handovers["signed_day"] < d))),
                "signed_out": int(np.count_nonzero(signed)), "returned": int(np.count_nonzero(returned))}
        vat = len(catalogue.PRODUCTS) if d == billing.VAT_CHANGE else 0
        products = {"added": 0, "changed": vat, "removed": 0, "vat_changed": vat}
        day = {"customers": customers, "services": services, "key_handovers": keys, "products": products}
        out.append({e: dict.fromkeys(kinds, 0) for e, kinds in day.items()} if static else day)
    return out
