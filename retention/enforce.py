"""Retention enforcement: which records are kept past their retention period, and what erasing each means.

`plan(settings, secret)` lists the overdue records of `intermediate.int_retention__records` (vault, read-only)
that the erasure ledger does not hold yet, each with its action (the data map's: a customer's identifying
fields and a service's user IDs are anonymised, since the invoices that refer to them are accounting vouchers
with a longer period; invoices, lines, payments, collection cases, tickets and key handovers are deleted, and so
are the superseded versions of customers, services and key handovers, whole, the current version staying).
The application (warehouse/pipeline.py) records them with core/erasure.py, which also finishes a killed
enforcement: the request lists for the source systems, the fresh analytics build.

Logs carry counts per category and action, never ids or values.
"""

from __future__ import annotations

from collections import Counter

import duckdb

from core.erasure import RECORDS, Erasure, TableErasure
from core.pseudonym import pseudonymous_key
from core.sql import relation_exists


class EnforceError(RuntimeError):
    """Enforcement cannot run: no vault, no pseudonym key or no retention models built yet."""


def counts(erasures: list[Erasure]) -> Counter:
    """Records per (category, action): what the command prints and the log records."""
    return Counter((e.category, e.action) for e in erasures)


def actions_by_type(tables: list[TableErasure]) -> dict[str, str]:
    return {t.record_type: t.action for t in tables if t.record_type}


def plan(con: duckdb.DuckDBPyConnection, secret: bytes, tables: list[TableErasure]) -> list[Erasure]:
    """The overdue records not yet erased, with their action; reads the vault only."""
    if not relation_exists(con, RECORDS):
        raise EnforceError(f"the vault has no {RECORDS}: run `warehouse build` first")
    erased = set(con.execute("select record_type, record_key from retention.erasure_ledger").fetchall())
    rows = con.execute(f"""
        select record_type, record_id, customer_id, category, rule_id,
            case when clock_event <> 'relationship_ended' then clock_started_on end
        from {RECORDS}
        where status = 'overdue' and record_id is not null
        order by record_type, record_id""").fetchall()
    actions = actions_by_type(tables)
    planned = []
    for record_type, record_id, customer_id, category, rule_id, event_on in rows:
        key = pseudonymous_key(secret, record_id)
        if (record_type, key) in erased or record_type not in actions:
            continue
        planned.append(Erasure(record_type, record_id, key, customer_id, category, rule_id, actions[record_type],
                               event_on))
    return planned
