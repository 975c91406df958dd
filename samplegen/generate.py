"""Orchestration: simulate the company's history and its daily changes, then write one set of export files
per export date."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np

from . import changes, defects
from .billing import make_billing
from .days import NEVER, from_day, to_day
from .lifecycle import make_handovers, make_services
from .people import Issued, make_customers
from .pools import build_pools
from .rates import RATES
from .tickets import make_tickets
from .writer import Writer

# Customers generated and written at a time: memory grows with the block, not with the run.
BLOCK = 50_000


@dataclass
class Numbers:
    """The next free running number of each key, carried from block to block so keys stay unique."""

    customer: int = 100001
    service: int = 10000001
    handover: int = 1000001
    invoice: int = 1000001
    payment: int = 100000001
    case: int = 1000001
    ticket: int = 1000001

    def advance(self, data: dict) -> None:
        """Move past every number the block used, gaps included (unknown customers, voided invoices)."""
        def past(current: int, *columns: np.ndarray) -> int:
            return max([current - 1, *(int(c.max()) for c in columns if len(c))]) + 1

        self.customer = past(self.customer, data["customers"]["cust_no"], data["services"]["cust_no"])
        self.service = past(self.service, data["services"]["svc_no"])
        self.handover = past(self.handover, data["handovers"]["handover_no"])
        self.invoice = past(self.invoice, data["invoices"]["inv_no"], data["lines"]["inv_no"])
        self.payment = past(self.payment, data["payments"]["pay_no"])
        self.case = past(self.case, data["cases"]["case_no"])
        self.ticket = past(self.ticket, data["tickets"]["ticket_no"])


def generate_exports(out: Path, *, customers: int, seed: int, start: date, end: date, days: int = 3,
                     static_days: bool = False, change_rate: float = 1.0, defect_rate: float = 0.01,
                     progress: Callable[[str], None] | None = None, block_size: int = BLOCK) -> dict:
    """Write `days` consecutive daily exports up to `end` into `out`; return the manifest (also
    out/manifest.json).

    The first export carries the whole history since `start`; each later one that day's changes: the
    snapshots change where customers join, move, change phone, e-mail or consent, are erased, and where
    services open, change and end (rates.py); the deltas carry the day's billing and tickets.
    `change_rate` multiplies the customer-record rates of rates.py (tests use it to see many changes in a
    small sample). `static_days`: nothing happens after the first day; days 2..N repeat its snapshots byte
    for byte and their deltas are empty, for benchmarks of unchanged data.

    Customers are made and written in blocks of `block_size`, each with its own services, billing and
    tickets; a run of one block (up to `block_size` customers) is the same, byte for byte, whatever the
    block size.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    if not 0 <= defect_rate <= 0.5:
        raise ValueError("defect_rate must be between 0 and 0.5")
    if to_day(end) - days + 1 <= to_day(start):
        raise ValueError("the first export date must come after the start date")
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    rates = RATES.scaled(change_rate)
    say = progress or (lambda _msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    start_day = to_day(start)
    dates = [to_day(end) - days + 1 + i for i in range(days)]
    first = dates[0]
    # Static days: the history stops at the first export; the later dates only repeat it.
    end_day, live_dates = (first, [first]) if static_days else (dates[-1], dates)

    say("pools")
    pools = build_pools(seed, rng)
    strings = pools.strings.finish()
    counts = defects.Counts(defect_rate)  # defect counts of the whole run, shared out over the blocks
    numbers, issued = Numbers(), Issued()
    planned: list[defects.Defect] = []
    deletions: list[dict] = []
    counts_by_day = [{} for _ in dates[1:]]
    n_blocks = -(-customers // block_size)
    writer = Writer(out)
    try:
        for b in range(n_blocks):
            # Block 0 goes on with the pools' generator: a run of one block is what it always was.
            if b > 0:
                rng = np.random.default_rng([seed, b])
            # The day-to-day changes draw from a generator of their own: services and billing do not depend on them.
            change_rng = np.random.default_rng([seed, b, 1])
            n = min(block_size, customers - b * block_size)
            tag = f"block {b + 1}/{n_blocks}: " if n_blocks > 1 else ""
            n_dup = counts.count("duplicate_person", round(n * 0.8), 0.2)
            say(f"{tag}customers: {n} (+{n_dup} duplicates)")
            cust = make_customers(rng, pools, n, n_dup, start_day, end_day, first, numbers.customer, issued)
            svc = make_services(rng, cust, start_day, end_day, counts.count("unknown_customer_service", n, 0.05),
                                numbers.service)
            say(f"{tag}services: {len(svc['svc_no'])}")
            changes.choose_deletions(change_rng, cust, svc, live_dates, rates)
            edits = changes.make_changes(change_rng, pools, cust, live_dates, rates)
            say(f"{tag}customer-record changes: {len(edits['idx'])}")
            handovers = make_handovers(rng, cust, svc, pools, end_day, numbers.handover)
            inv, lines, pay, cases = make_billing(rng, cust, svc, end_day, first,
                                                  counts.count("orphan_invoice_line", n, 0.05),
                                                  numbers.invoice, numbers.payment, numbers.case)
            say(f"{tag}billing: {len(inv['inv_no'])} invoices, {len(lines['inv_no'])} lines, "
                f"{len(pay['pay_no'])} payments, {len(cases['case_no'])} collection cases")
            tix, msgs = make_tickets(rng, cust, svc, end_day, live_dates, numbers.ticket)
            say(f"{tag}tickets: {len(tix['ticket_no'])}")
            plan = defects.plan(rng, counts, n, first, cust, svc, inv, lines, pay, tix)
            say(f"{tag}defects planned: {len(plan)}")

            data = {"strings": strings, "customers": cust, "changes": edits, "services": svc,
                    "handovers": handovers, "invoices": inv, "lines": lines, "payments": pay, "cases": cases,
                    "tickets": tix, "messages": msgs}
            writer.write_block(data, plan, dates, static_days)
            say(f"{tag}exports {from_day(dates[0]).isoformat()} .. {from_day(dates[-1]).isoformat()} written")
            numbers.advance(data)
            planned += plan
            deletions += _deletions(cust, svc, handovers)
            # Snapshot rows with a defect of the first export only: written clean from the second day on.
            corrected = {"services": np.array([int(d.key[1:]) for d in plan
                                               if d.entity == "services" and d.scope == "first"], dtype=np.int64)}
            _add(counts_by_day, changes.day_counts(dates, cust, edits, svc, handovers, corrected, static_days))
            # Free this block's arrays before the next block makes its own.
            del data, cust, edits, svc, handovers, inv, lines, pay, cases, tix, msgs
        if static_days:
            writer.repeat_snapshots(dates, planned)
    finally:
        writer.close()
    missing = [d for d in planned if not d.occurrences]
    if missing:
        raise RuntimeError(f"{len(missing)} planned defects were not written (first: {missing[0].kind})")

    manifest = {
        "seed": seed,
        "customers": customers,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "export_dates": [from_day(d).isoformat() for d in dates],
        "static_days": static_days,
        "change_rate": change_rate,
        "defect_rate": defect_rate,
        # Chance per customer and month of each change of a customer record, as used (rates.py).
        "rates": {} if static_days else asdict(rates),
        "files": sorted(writer.files, key=lambda f: f["path"]),
        # What each snapshot after the first adds, changes and removes, and why, by entity.
        "changes": [{"date": from_day(d).isoformat(), **c} for d, c in zip(dates[1:], counts_by_day, strict=True)],
        "defects": [d.manifest() for d in planned],
        "deletions": deletions,
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    say("manifest written")
    return manifest


def _add(total: list[dict], block: list[dict]) -> None:
    """Add a block's counts by day, entity and kind to those of the earlier blocks."""
    for t, b in zip(total, block, strict=True):
        for entity, kinds in b.items():
            mine = t.setdefault(entity, {})
            for kind, n in kinds.items():
                mine[kind] = mine.get(kind, 0) + n


def _deletions(cust: dict, svc: dict, handovers: dict) -> list[dict]:
    """Rows that vanish from a later snapshot because the customer was erased at the source."""
    out = []
    deleted = np.flatnonzero(cust["del_day"] < NEVER)
    for i in deleted:
        day = int(cust["del_day"][i])
        stamp = f"{from_day(day):%Y%m%d}"
        rows = [("customers", defects.key("customers", cust["cust_no"][i]), f"crm/customers_{stamp}.csv")]
        rows += [("services", defects.key("services", s), f"services/services_{stamp}.csv")
                 for s in svc["svc_no"][(svc["owner"] == i) & (svc["open_day"] < day)]]
        held = (handovers["owner"] == i) & (handovers["signed_day"] < day)
        rows += [("key_handovers", defects.key("key_handovers", h), f"services/key_handovers_{stamp}.csv")
                 for h in handovers["handover_no"][held]]
        for entity, k, path in rows:
            out.append({"entity": entity, "key": k, "deleted_on": from_day(day).isoformat(),
                        "first_absent_in": path, "reason": "customer erased at the source"})
    return out
