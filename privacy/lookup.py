"""From a pseudonymous key back to its record, for those allowed (the privacy officer, billing staff).

The quality page and the retention audit name records by their pseudonymous keys (HMAC of the record id,
core/pseudonym.py): `find(con, key)` finds which record a key stands for, among every record the
retention models know (customers, services, invoices, invoice lines, payments, collection cases, tickets, key
handovers, and the superseded versions of customers, services and key handovers, `<key>@<valid_from>`:
`intermediate.int_retention__records`). The application logs each look-up like an access request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from core.erasure import RECORDS
from core.sql import relation_exists

KEY = re.compile(r"[0-9a-f]{32}")


class LookupError_(ValueError):
    pass


@dataclass(frozen=True)
class Match:
    record_type: str
    record_id: str
    customer_id: str | None
    category: str
    status: str


def find(con: duckdb.DuckDBPyConnection, key: str) -> list[Match]:
    """The records whose pseudonymous key is `key` (the caller defines `pseudonymous_key` on `con`)."""
    key = key.strip().lower()
    if not KEY.fullmatch(key):
        raise LookupError_("a pseudonymous key is 32 hexadecimal digits")
    if not relation_exists(con, RECORDS):
        raise LookupError_(f"the vault has no {RECORDS}: run `warehouse build` first")
    rows = con.execute(f"""
        select record_type, record_id, customer_id, category, status from {RECORDS}
        where record_key = ? order by record_type, record_id""", [key]).fetchall()
    return [Match(*row) for row in rows]
