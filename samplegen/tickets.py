"""Customer-service tickets and their messages (text is filled from templates by the writer)."""

from __future__ import annotations

import numpy as np

from . import catalogue
from .days import DAY, NEVER_TS
from .lifecycle import COLOCATION, PRODUCT_CATEGORY, group_cumsum

TOPIC_P_PERSON = [0.30, 0.25, 0.15, 0.15, 0.15, 0.0]
TOPIC_P_COLOCATION = [0.25, 0.20, 0.10, 0.10, 0.10, 0.25]


def _daytime(rng: np.random.Generator, ts: np.ndarray) -> np.ndarray:
    """Move night-time stamps to the next morning (staff hours; also keeps clear of DST gaps)."""
    sod = ts % DAY
    next_morning = ts - sod + np.where(sod >= 22 * 3600, DAY, 0) + 7 * 3600 + rng.integers(0, 3600, len(ts))
    return np.where((sod < 7 * 3600) | (sod >= 22 * 3600), next_morning, ts)


def make_tickets(rng: np.random.Generator, cust: dict, svc: dict, end: int, export_days: list[int],
                 first_no: int) -> tuple[dict, dict]:
    """Tickets (numbered from ``first_no`` in order of opening) and their messages."""
    nc = len(cust["cust_no"])
    created = cust["created_ts"] // DAY
    known = svc["owner"] >= 0
    last = np.full(nc, -1, dtype=np.int64)
    np.maximum.at(last, svc["owner"][known], np.minimum(svc["term_day"][known], end))
    colo = np.zeros(nc, dtype=bool)
    colo[svc["owner"][known & (PRODUCT_CATEGORY[svc["product"]] == COLOCATION)]] = True
    # Tickets happen while someone is a customer (and a little after the last service ends).
    active_end = np.where(last < 0, created + 30, np.minimum(end, last + 60))
    active_end = np.clip(active_end, created, end)
    years = (active_end - created + 1) / 365.25
    k = np.minimum(rng.poisson(0.15 * years + 0.03), 4)
    owner = np.repeat(np.arange(nc), k)
    open_day = created[owner] + (rng.random(len(owner)) * (active_end - created + 1)[owner]).astype(np.int64)
    # Customer service is busy every day: one ticket opens on each export date, so that no tickets
    # delta is an empty file (the ingest refuses empty files as failed transfers).
    for day in export_days:
        present = np.flatnonzero((created < day) & (cust["del_day"] > day))
        if len(present):
            owner = np.append(owner, rng.choice(present))
            open_day = np.append(open_day, day)
    t = len(owner)
    opened_ts = open_day * DAY + rng.integers(7 * 3600, 21 * 3600, t)
    topic = np.where(colo[owner], rng.choice(6, t, p=TOPIC_P_COLOCATION), rng.choice(6, t, p=TOPIC_P_PERSON))
    n_msg = rng.choice([1, 2, 3, 4], t, p=[0.25, 0.40, 0.20, 0.15])

    m_ticket = np.repeat(np.arange(t), n_msg)
    seq = np.arange(len(m_ticket)) - np.repeat(np.cumsum(n_msg) - n_msg, n_msg)
    gap = np.where(seq == 0, 0, 300 + rng.exponential(6 * 3600, len(m_ticket)).astype(np.int64))
    sent = _daytime(rng, opened_ts[m_ticket] + group_cumsum(gap, n_msg))
    # keep messages in order within a ticket after the night-time shift
    offset = m_ticket.astype(np.int64) * 10**11
    sent = np.maximum.accumulate(sent + offset) - offset
    last_sent = sent[np.cumsum(n_msg) - 1]
    closed = rng.random(t) < 0.85
    closed_ts = _daytime(rng, last_sent + rng.integers(600, 2 * DAY, t))
    closed_ts = np.where(closed & (closed_ts // DAY <= end), closed_ts, NEVER_TS)

    order = np.argsort(opened_ts, kind="stable")
    rank = np.empty(t, dtype=np.int64)
    rank[order] = np.arange(t)
    lang = np.where(cust["lang"][owner] == 2, 1, 0)  # Swedish speakers write in Finnish here
    tickets = {
        "ticket_no": first_no + rank, "owner": owner, "opened_ts": opened_ts, "open_day": opened_ts // DAY,
        "closed_ts": closed_ts, "close_day": closed_ts // DAY,
        "channel": rng.choice(len(catalogue.CHANNELS), t, p=catalogue.CHANNEL_P), "subject": topic * 2 + lang,
    }
    n_topics = len(catalogue.TICKET_TOPICS)
    ml = lang[m_ticket]
    mt = topic[m_ticket] * 2 + ml
    template = np.select([seq == 0, seq == 1], [mt, 2 * n_topics + mt], 4 * n_topics + (seq - 2) * 2 + ml)
    messages = {"ticket_no": tickets["ticket_no"][m_ticket], "seq": seq, "sent_ts": sent,
                "sent_day": sent // DAY, "template": template, "owner": owner[m_ticket]}
    # Drop messages after the last export day (the ticket shows what has happened so far).
    keep = sent // DAY <= end
    messages = {k: v[keep] for k, v in messages.items()}
    keep_t = opened_ts // DAY <= end
    tickets = {k: v[keep_t] for k, v in tickets.items()}
    return tickets, messages


def templates() -> tuple[list[str], list[str]]:
    """Subjects (topic*2 + lang) and message bodies in the index order used by ``make_tickets``."""
    subjects = [s for topic in catalogue.TICKET_TOPICS for s in topic[0:2]]
    first = [s for topic in catalogue.TICKET_TOPICS for s in topic[2:4]]
    replies = [s for topic in catalogue.TICKET_TOPICS for s in topic[4:6]]
    follow = [s for pair in catalogue.TICKET_FOLLOW_UPS for s in pair]
    return subjects, first + replies + follow
