"""Orchestration: simulate the company's history, then write one set of export files per export date."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from . import defects
from .billing import make_billing
from .days import NEVER, from_day, to_day
from .lifecycle import choose_deletions, make_handovers, make_services
from .people import make_customers
from .pools import build_pools
from .tickets import make_tickets
from .writer import FILES, Writer


def generate_exports(out: Path, *, customers: int, seed: int, start: date, end: date,
                     export_days: int = 3, defect_rate: float = 0.01,
                     progress: Callable[[str], None] | None = None) -> dict:
    """Write a history of daily exports into `out` and return the manifest (also out/manifest.json)."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if export_days < 1:
        raise ValueError("export_days must be at least 1")
    if not 0 <= defect_rate <= 0.5:
        raise ValueError("defect_rate must be between 0 and 0.5")
    if to_day(end) - export_days + 1 <= to_day(start):
        raise ValueError("the first export date must come after the start date")
    say = progress or (lambda _msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    start_day, end_day = to_day(start), to_day(end)
    dates = [end_day - export_days + 1 + i for i in range(export_days)]
    first = dates[0]

    say("pools")
    pools = build_pools(seed, rng)
    n_dup = defects.count(defect_rate, round(customers * 0.8), 0.2)
    say(f"customers: {customers} (+{n_dup} duplicates)")
    cust = make_customers(rng, pools, customers, n_dup, start_day, end_day, first)
    svc = make_services(rng, cust, start_day, end_day, defects.count(defect_rate, customers, 0.05))
    say(f"services: {len(svc['svc_no'])}")
    choose_deletions(rng, cust, svc, dates)
    handovers = make_handovers(rng, cust, svc, pools, end_day)
    inv, lines, pay, cases = make_billing(rng, cust, svc, end_day, first,
                                          defects.count(defect_rate, customers, 0.05))
    say(f"billing: {len(inv['inv_no'])} invoices, {len(lines['inv_no'])} lines, "
        f"{len(pay['pay_no'])} payments, {len(cases['case_no'])} collection cases")
    tix, msgs = make_tickets(rng, cust, svc, end_day, dates)
    say(f"tickets: {len(tix['ticket_no'])}")
    plan = defects.plan(rng, defect_rate, customers, first, cust, svc, inv, lines, pay, tix)
    say(f"defects planned: {len(plan)}")

    data = {"strings": pools.strings.finish(), "customers": cust, "services": svc, "handovers": handovers,
            "invoices": inv, "lines": lines, "payments": pay, "cases": cases, "tickets": tix,
            "messages": msgs}
    writer = Writer(out, data, plan)
    try:
        for day in dates:
            for entity in FILES:
                writer.write(entity, day, day == first)
            say(f"export {from_day(day).isoformat()} written")
    finally:
        writer.close()
    missing = [d for d in plan if not d.occurrences]
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
        "defects": [d.manifest() for d in plan],
        "deletions": _deletions(cust, svc, handovers),
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
