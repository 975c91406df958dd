"""Orchestration: simulate the company's history, then write one set of export files per export date."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from . import defects
from .billing import make_billing
from .days import NEVER, from_day, to_day
from .lifecycle import choose_deletions, make_handovers, make_services
from .people import Issued, make_customers
from .pools import build_pools
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


def generate_exports(out: Path, *, customers: int, seed: int, start: date, end: date,
                     export_days: int = 3, defect_rate: float = 0.01,
                     progress: Callable[[str], None] | None = None, block_size: int = BLOCK) -> dict:
    """Write a history of daily exports into `out` and return the manifest (also out/manifest.json).

    Customers are made and written in blocks of `block_size`, each with its own services, billing and
    tickets; a run of one block (up to `block_size` customers) is the same, byte for byte, whatever the
    block size.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if export_days < 1:
        raise ValueError("export_days must be at least 1")
    if not 0 <= defect_rate <= 0.5:
        raise ValueError("defect_rate must be between 0 and 0.5")
    if to_day(end) - export_days + 1 <= to_day(start):
        raise ValueError("the first export date must come after the start date")
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    say = progress or (lambda _msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    start_day, end_day = to_day(start), to_day(end)
    dates = [end_day - export_days + 1 + i for i in range(export_days)]
    first = dates[0]

    say("pools")
    pools = build_pools(seed, rng)
    strings = pools.strings.finish()
    counts = defects.Counts(defect_rate)  # defect counts of the whole run, shared out over the blocks
    numbers, issued = Numbers(), Issued()
    planned: list[defects.Defect] = []
    deletions: list[dict] = []
    n_blocks = -(-customers // block_size)
    writer = Writer(out)
    try:
        for b in range(n_blocks):
            # Block 0 goes on with the pools' generator: a run of one block is what it always was.
            if b > 0:
                rng = np.random.default_rng([seed, b])
            n = min(block_size, customers - b * block_size)
            tag = f"block {b + 1}/{n_blocks}: " if n_blocks > 1 else ""
            n_dup = counts.count("duplicate_person", round(n * 0.8), 0.2)
            say(f"{tag}customers: {n} (+{n_dup} duplicates)")
            cust = make_customers(rng, pools, n, n_dup, start_day, end_day, first, numbers.customer, issued)
            svc = make_services(rng, cust, start_day, end_day, counts.count("unknown_customer_service", n, 0.05),
                                numbers.service)
            say(f"{tag}services: {len(svc['svc_no'])}")
            choose_deletions(rng, cust, svc, dates)
            handovers = make_handovers(rng, cust, svc, pools, end_day, numbers.handover)
            inv, lines, pay, cases = make_billing(rng, cust, svc, end_day, first,
                                                  counts.count("orphan_invoice_line", n, 0.05),
                                                  numbers.invoice, numbers.payment, numbers.case)
            say(f"{tag}billing: {len(inv['inv_no'])} invoices, {len(lines['inv_no'])} lines, "
                f"{len(pay['pay_no'])} payments, {len(cases['case_no'])} collection cases")
            tix, msgs = make_tickets(rng, cust, svc, end_day, dates, numbers.ticket)
            say(f"{tag}tickets: {len(tix['ticket_no'])}")
            plan = defects.plan(rng, counts, n, first, cust, svc, inv, lines, pay, tix)
            say(f"{tag}defects planned: {len(plan)}")

            data = {"strings": strings, "customers": cust, "services": svc, "handovers": handovers,
                    "invoices": inv, "lines": lines, "payments": pay, "cases": cases, "tickets": tix,
                    "messages": msgs}
            writer.write_block(data, plan, dates)
            say(f"{tag}exports {from_day(dates[0]).isoformat()} .. {from_day(dates[-1]).isoformat()} written")
            numbers.advance(data)
            planned += plan
            deletions += _deletions(cust, svc, handovers)
            # Free this block's arrays before the next block makes its own.
            del data, cust, svc, handovers, inv, lines, pay, cases, tix, msgs
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
        "defect_rate": defect_rate,
        "files": sorted(writer.files, key=lambda f: f["path"]),
        "defects": [d.manifest() for d in planned],
        "deletions": deletions,
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    say("manifest written")
    return manifest


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
