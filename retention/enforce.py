"""Retention enforcement: delete or anonymise the records kept past their retention period.

`plan(home)` lists the overdue records of `intermediate.int_retention__records` (vault, read-only) that the
erasure ledger does not hold yet, each with its action: a customer's identifying fields and a service's user
IDs are anonymised (the invoices that refer to them are accounting vouchers with a longer period); invoices,
invoice lines, payments, collection cases, tickets and key handovers are deleted, every version of the row.

`apply(home, actions)` records them in `retention.erasure_ledger` and erases them from the raw layer in one
vault transaction (ingest/erasure.py, the same statements the ingest runs on each new file), then writes
one erasure request list per source system for the owners of the operational systems. Staging and marts
follow at the next build (the CLI rebuilds at once). A second apply finds nothing to do.

Logs carry counts per category and action, never ids or values. The ledger carries pseudonymous keys only;
the request lists carry ids in clear (the owners need them to erase at the source), owner-only.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from ingest.erasure import ACTIONS, SYSTEMS, ensure_ledger, erase
from warehouse.home import Home
from warehouse.pseudonym import key_file, macro_sql, pseudonymous_key, read_key
from warehouse.vault import open_vault

log = logging.getLogger(__name__)


class EnforceError(RuntimeError):
    """Enforcement cannot run: no vault, no pseudonym key or no retention models built yet."""


@dataclass(frozen=True)
class Action:
    record_type: str
    record_id: str  # in clear: only for the erasure request lists, never logged or stored in the vault
    record_key: str
    customer_id: str | None
    category: str
    rule_id: str
    action: str  # delete | anonymise


@dataclass
class EnforceResult:
    actions: list[Action]
    rows_touched: dict[str, int] = field(default_factory=dict)  # raw table -> rows deleted or anonymised
    request_files: list[Path] = field(default_factory=list)


def counts(actions: list[Action]) -> Counter:
    """Records per (category, action): what the CLI prints and the log records."""
    return Counter((a.category, a.action) for a in actions)


def _secret(home: Home) -> bytes:
    path = key_file(home.root)
    if not path.exists():
        raise EnforceError(f"no pseudonym key at {path}: run `warehouse build` first")
    return read_key(path)


def _connect(home: Home, secret: bytes, read_only: bool) -> duckdb.DuckDBPyConnection:
    if not home.vault.exists():
        raise EnforceError(f"no vault at {home.vault}: run `warehouse ingest` and `warehouse build` first")
    con = open_vault(home.vault, read_only=read_only)
    con.execute(macro_sql(secret))  # the erasure statements (ingest/erasure.py) call it
    return con


def plan(home: Home) -> list[Action]:
    """The overdue records not yet erased, with their action; reads the vault only."""
    secret = _secret(home)
    con = _connect(home, secret, read_only=True)
    try:
        if not con.execute("select count(*) from information_schema.tables where table_schema = 'intermediate' "
                           "and table_name = 'int_retention__records'").fetchone()[0]:
            raise EnforceError("the vault has no intermediate.int_retention__records: run `warehouse build` first")
        has_ledger = con.execute("select count(*) from duckdb_tables() where schema_name = 'retention' "
                                 "and table_name = 'erasure_ledger'").fetchone()[0]
        erased = set(con.execute("select record_type, record_key from retention.erasure_ledger").fetchall()
                     ) if has_ledger else set()
        rows = con.execute("""
            select record_type, record_id, customer_id, category, rule_id
            from intermediate.int_retention__records
            where status = 'overdue' and record_id is not null
            order by record_type, record_id""").fetchall()
    finally:
        con.close()
    actions = []
    for record_type, record_id, customer_id, category, rule_id in rows:
        key = pseudonymous_key(secret, record_id)
        if (record_type, key) in erased or record_type not in ACTIONS:
            continue
        actions.append(Action(record_type, record_id, key, customer_id, category, rule_id, ACTIONS[record_type]))
    return actions


def apply(home: Home, actions: list[Action], today: date | None = None) -> EnforceResult:
    """Ledger + raw erasure in one vault transaction, then the erasure request lists."""
    today = today or date.today()
    secret = _secret(home)
    con = _connect(home, secret, read_only=False)
    try:
        ensure_ledger(con)
        con.begin()
        try:
            # `or ignore`: a record erased since the plan was made is not recorded twice
            con.executemany("""
                insert or ignore into retention.erasure_ledger
                    (record_key, record_type, category, rule_id, action, erased_on)
                values (?, ?, ?, ?, ?, ?)""",
                [(a.record_key, a.record_type, a.category, a.rule_id, a.action, today) for a in actions])
            # the whole ledger, not only these actions: also catches rows an older ingest let through
            touched = erase(con)
            # dbt's tables in the vault (billing staging, intermediate) were derived from the rows just erased:
            # they go with them, and the rebuild that follows recreates them. Should it fail, what depends on
            # them fails too, rather than show erased data.
            for schema, table in con.execute("""
                    select schema_name, table_name from duckdb_tables()
                    where database_name = current_database() and schema_name in ('staging', 'intermediate')
                    """).fetchall():
                con.execute(f'drop table "{schema}"."{table}"')
            con.commit()
        except BaseException:
            con.rollback()
            raise
    finally:
        con.close()
    for (category, action), n in sorted(counts(actions).items()):
        log.info("retention enforcement: %s records of %s %sd", n, category, action)
    for table, n in sorted(touched.items()):
        if n:
            log.info("retention enforcement: %s rows deleted or anonymised in %s", n, table)
    result = EnforceResult(actions, touched)
    result.request_files = write_requests(home.reports / "retention", actions, today)
    return result


def write_requests(out_dir: Path, actions: list[Action], today: date) -> list[Path]:
    """erasure-requests-<system>-YYYY-MM-DD.csv per source system, owner-only: ids in clear for the owners."""
    out_dir.mkdir(parents=True, exist_ok=True)
    by_system: dict[str, list[Action]] = {}
    for action in actions:
        by_system.setdefault(SYSTEMS[action.record_type], []).append(action)
    written = []
    for system, mine in sorted(by_system.items()):
        path = out_dir / f"erasure-requests-{system}-{today.isoformat()}.csv"
        # a second apply the same day appends to that day's list rather than lose the first one
        is_new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if is_new:
                writer.writerow(["record_type", "record_id", "action", "rule"])
            writer.writerows([a.record_type, a.record_id, a.action, a.rule_id] for a in mine)
        log.info("retention enforcement: %s erasure requests for %s written to %s", len(mine), system, path.name)
        written.append(path)
    return written
