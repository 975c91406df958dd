"""Erasure by the ledger: delete or anonymise the erased records wherever a row of them can be.

`retention.erasure_ledger` (vault) lists every record erased (by retention enforcement or on a data subject's
request) by record type and pseudonymous key (HMAC of the record id), never by the id or the data. The same
statements run over every version in raw (enforcement, erasure on request) and over the rows of each file
the ingest loads, so an export that still carries an erased record cannot bring it back; and over the
ingest's rejects, whose raw text would otherwise keep the whole line.

Which tables, which rows and which columns is not written here: the application derives the table map from
the ingest configuration (raw tables and their keys) and the data map (which columns identify a person, and
which record types are anonymised rather than deleted): privacy/config.py `erasure_tables`. The statements
call `pseudonymous_key`, the macro of core/pseudonym.py, which the caller defines on its connection.

A row can also land in `ingest.rejects`, whole, as the raw text of a line the ingest could not read. Such a
line is matched field by field (`erase_rejects`): any field of it, or two neighbouring fields joined by `/`
(an invoice line's `invoice_id/line_no`), whose key is in the ledger, of any record type, makes it a line of
an erased record. It keeps its load, file, line, column and reason (the accounting of its file still holds)
and loses its raw text and the value a reason quotes; its record key too when the record was deleted.

A snapshot entity's raw table holds versions (core/schema.py VERSION_COLUMNS). A closed version (superseded by a
later one, not the key's latest) is a record of its own, `<type>_version` with the id `<key>@<valid_from>`, on
the retention rule of superseded values: its spec (`versions_of`) deletes only such versions, never the key's
current one, and the ledger keeps, with its key, the pseudonymous key of the record it was a version of
(`version_of`) and the day it was superseded (`event_on`). A snapshot file dated before that day (a corrected or
late file of an old day) would rebuild the record's states from its date on, the erased version among them: the
ingest drops that record's row from such a file instead (`erase_rows`), so an erased version never comes back.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from core import files
from core.db import transaction
from core.schema import LINEAGE_COLUMNS, VERSION_COLUMNS, row_hash_sql
from core.sql import ident, literal, relation_exists, table_columns

TRIMMED = "' ' || chr(9) || chr(10) || chr(13) || chr(160)"  # what staging's `clean_string` trims
REJECTS = "ingest.rejects"
# Every record with its retention status (the dbt view over int_retention__expiries): what erasure selects from.
RECORDS = "intermediate.int_retention__records"
# What a rejected line is cut at into fields: the CSV delimiters in use (`;` by the contract, `,`, `|`, tab),
# quotes, and JSON's punctuation, so a JSON line gives its keys and values. Cutting a free-text field into
# more pieces only adds candidates; an id holding one of these characters would not be found.
FIELD_SEPARATORS = r"""[;,|\t"'{}\[\]:]"""


def clean_id(column: str) -> str:
    """A raw id cleaned as staging's `clean_string` does: the key must be the one the retention models hash."""
    return f"nullif(trim({column}, {TRIMMED}), '')"


@dataclass(frozen=True)
class RawTable:
    """A raw table as the ingest configuration describes it (what the erasure map is derived from)."""
    system: str
    entity: str
    table: str
    key: tuple[str, ...]
    columns: Mapping[str, str]  # column -> DuckDB type
    versioned: bool = False  # a snapshot entity's table: versions of its records (core/schema.py)

    @property
    def staging_model(self) -> str:
        """The staging model of its current rows (`stg_<system>__<entity>`): the data map's name for it."""
        return f"staging.stg_{self.system}__{self.entity}"


VERSION_SUFFIX = "_version"  # the record type of a versioned record type's closed versions: customer_version
CLOSED_VERSION = "_valid_to is not null and not _is_latest"  # superseded: neither current nor the key's last


def version_record_id(key_sql: str) -> str:
    """SQL of a version's record id: the key's record id, `@`, the day the version became valid (`C0000001@2024-03-01`),
    as the retention models write it."""
    return f"{key_sql} || '@' || strftime(_valid_from, '%Y-%m-%d')"


def versioned_id(record_id: str) -> str:
    """The id of the record a version record (`<key>@<valid_from>`) is a version of."""
    return record_id.rsplit("@", 1)[0]


@dataclass(frozen=True)
class TableErasure:
    """What erasing a record means in one table."""
    table: str
    system: str  # the source system whose owners are asked to erase at the source too
    record_type: str | None  # the type of the table's own records (None: the table only refers to others)
    record_id: str | None  # SQL of a row's record id (cleaned), matching the retention models' record_id
    action: str  # delete | anonymise: what erasing one of its own records does
    # record types whose erasure anonymises this table's rows that refer to them -> SQL of the reference
    references: Mapping[str, str] = field(default_factory=dict)
    identifying: tuple[str, ...] = ()  # the columns anonymising nulls
    # a spec of a versioned table's closed versions (record type `<type>_version`, `record_id` its
    # version_record_id): SQL of the row's key as the record id of the record it is a version of
    versions_of: str | None = None


def _in_ledger(expr: str, record_types: Iterable[str]) -> str:
    types = [t for t in record_types if t != "*"]  # "*": a record of any type
    where = " where record_type in (" + ", ".join(literal(t) for t in types) + ")" if types else ""
    return f"pseudonymous_key({expr}) in (select record_key from retention.erasure_ledger{where})"


def ledger_size(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("select count(*) from retention.erasure_ledger").fetchone()[0]


def erase(con: duckdb.DuckDBPyConnection, tables: Iterable[TableErasure], *, only: str | None = None,
          load_id: int | None = None, rejects: bool = True) -> dict[str, int]:
    """Delete / anonymise the ledger's records in raw (one table `only`, one load, or all) and, with `rejects`,
    in the rejected lines (of that load, or all); rows per table (`ingest.rejects` among them).

    Runs inside the caller's transaction. An anonymised row whose fields are already null is not counted
    again, so a second run reports nothing.
    """
    touched = {}
    scope = f"_load_id = {int(load_id)} and " if load_id is not None else ""
    for spec in tables:
        if (only is not None and spec.table != only) or not relation_exists(con, spec.table, tables_only=True):
            continue
        # a table may have several specs (a versioned table's records and their superseded versions)
        touched[spec.table] = touched.get(spec.table, 0) + _erase_in(con, spec, spec.table, scope)
    if rejects:
        touched[REJECTS] = erase_rejects(con, load_id, tables)
    return touched


def erase_rows(con: duckdb.DuckDBPyConnection, spec: TableErasure, table: str) -> int:
    """The erasure of `spec`'s table applied to `table`, which holds rows of the same columns: the ingest's rows
    of one snapshot file, erased before they are compared with the versions in raw (an erased record's row
    then equals its erased version and makes no new one). Rows touched; inside the caller's transaction.

    For a spec of closed versions the file's rows are not versions: a row is deleted when its record has an
    erased version that was superseded after the file's export date (`_export_date`). Replayed, such a row
    would make that record's state on the file's day again, the erased values among it; without it the
    record is absent that day, as its erased version is (every version of it ending by then was erased
    with it or before: the rule's clock is the day it ended)."""
    if spec.versions_of is None:
        return _erase_in(con, spec, table, "")
    # the daily file is newer than every erased version's end: nothing to hash then
    if not con.execute(f"""
            select count(*) from retention.erasure_ledger
            where record_type = {literal(spec.record_type)}
                and event_on > (select min(_export_date) from {table})""").fetchone()[0]:
        return 0
    return con.execute(f"""
        delete from {table} as file_rows
        where pseudonymous_key({spec.versions_of}) in (
            select ledger.version_of from retention.erasure_ledger as ledger
            where ledger.record_type = {literal(spec.record_type)} and ledger.event_on > file_rows._export_date
        )""").fetchone()[0]


def _erase_in(con: duckdb.DuckDBPyConnection, spec: TableErasure, table: str, scope: str) -> int:
    count = 0
    own = _in_ledger(spec.record_id, [spec.record_type]) if spec.record_type else None
    if own and spec.versions_of is not None:  # closed versions only: never a key's current or last one
        own = f"{CLOSED_VERSION} and {own}"
    if own and spec.action == "delete":
        count += con.execute(f"delete from {table} where {scope}{own}").fetchone()[0]
    anonymised_by = [_in_ledger(expr, [record_type]) for record_type, expr in spec.references.items()]
    if own and spec.action == "anonymise":
        anonymised_by.append(own)
    if anonymised_by and spec.identifying:
        assignments = ", ".join(f"{ident(name)} = null" for name in spec.identifying)
        remaining = " or ".join(f"{ident(name)} is not null" for name in spec.identifying)
        count += con.execute(f"""
            update {table} set {assignments}{_rehash(con, table, spec.identifying)}
            where {scope}({' or '.join(anonymised_by)}) and ({remaining})""").fetchone()[0]
    return count


def _rehash(con: duckdb.DuckDBPyConnection, table: str, nulled: Iterable[str]) -> str:
    """`, _row_hash = …` for a table of versions: an anonymised version's hash is of what it holds now, so that
    no hash of the erased values outlives them, and a later export of the record, erased as it is loaded,
    equals it (core/schema.py VERSION_COLUMNS). Empty for other tables."""
    if table.count(".") != 1:
        return ""
    columns = table_columns(con, table)
    if "_row_hash" not in columns:
        return ""
    system = set(LINEAGE_COLUMNS) | set(VERSION_COLUMNS)
    kept = [c for c in columns if c not in system and c not in set(nulled)]  # nulls are left out of the hash
    return f", _row_hash = {row_hash_sql(kept)}"


def erase_rejects(con: duckdb.DuckDBPyConnection, load_id: int | None = None,
                  tables: Iterable[TableErasure] = ()) -> int:
    """Rejected lines (of one load, or all) that carry the id of an erased record: raw text and quoted value
    removed, record key too for a deleted record; how many lines. Runs inside the caller's transaction.

    The ledger holds keys, not ids, so each field of the line is hashed and looked up, whatever the record
    type: a line is not parsed by its file's header (not kept), and a line the reader rejected for a wrong
    number of fields has them out of place anyway.

    An erased superseded version (a spec of `tables` with `versions_of`) has no id of its own in a line: a
    rejected line of its record (the reject's `record_key`) in a file of its table dated before the day the
    version was superseded held that record's values of then, and loses its text as well.
    """
    if not relation_exists(con, REJECTS, tables_only=True):
        return 0
    scope = f"and load_id = {int(load_id)}" if load_id is not None else ""
    separators = FIELD_SEPARATORS.replace("'", "''")
    con.execute(f"""
        create or replace temp table _erased_rejects as
        with lines as (
            select rowid as row_id,
                list_filter(list_transform(regexp_split_to_array(raw_text, '{separators}'),
                    field -> trim(field, {TRIMMED})), field -> field <> '') as fields
            from {REJECTS} where raw_text is not null {scope}
        ),
        fields as (select row_id, unnest(fields) as field, unnest(range(1, len(fields) + 1)) as i from lines),
        candidates as (
            select row_id, field as id from fields
            union all
            -- invoice_id/line_no; the next field but one too, for JSON puts a key between two values
            select a.row_id, a.field || '/' || coalesce(try_cast(b.field as bigint)::varchar, b.field)
            from fields as a join fields as b on a.row_id = b.row_id and b.i in (a.i + 1, a.i + 2)
        )
        select distinct row_id from candidates
        where pseudonymous_key(id) in (select record_key from retention.erasure_ledger)""")
    for spec in tables:
        if spec.versions_of is None:
            continue
        system, entity = spec.system, spec.table.split(".", 1)[1]
        con.execute(f"""
            insert into _erased_rejects
            select rejects.rowid from {REJECTS} as rejects
            inner join ingest.files as files on files.load_id = rejects.load_id
            inner join retention.erasure_ledger as ledger
                on ledger.record_type = {literal(spec.record_type)}
                -- a reject's composite key is joined with `|`, a record id with `/`
                and ledger.version_of = pseudonymous_key(replace({clean_id('rejects.record_key')}, '|', '/'))
                and ledger.event_on > files.export_date
            where rejects.raw_text is not null and files.system = {literal(system)}
                and files.entity = {literal(entity)} {scope.replace('load_id', 'rejects.load_id')}
            except
            select row_id from _erased_rejects""")
    return con.execute(f"""
        update {REJECTS} set
            raw_text = null,
            reason = regexp_replace(reason, 'string ".*" (to|according)', 'string "…" \\1'),
            record_key = case when pseudonymous_key(replace(record_key, '|', '/')) in (
                select record_key from retention.erasure_ledger where action = 'delete') then null else record_key end
        where rowid in (select row_id from _erased_rejects)""").fetchone()[0]


# --- the journal: an erasure is committed in the vault first, then finished outside it ----------------------
@dataclass(frozen=True)
class Erasure:
    """One record to erase."""
    record_type: str
    record_id: str  # in clear: only for the source systems' request lists, never logged or kept after them
    record_key: str
    customer_id: str | None
    category: str
    rule_id: str
    action: str  # delete | anonymise
    event_on: date | None = None  # the day its own clock's event happened (kept in the ledger, see schema)


def system_of(tables: Iterable[TableErasure]) -> dict[str, str]:
    """record type -> the source system holding its records."""
    return {t.record_type: t.system for t in tables if t.record_type}


def record_erasures(con: duckdb.DuckDBPyConnection, erasures: list[Erasure], tables: list[TableErasure], *,
                    reason: str, today: date, also: Callable[[duckdb.DuckDBPyConnection], None] | None = None
                    ) -> tuple[int, dict[str, int]]:
    """In one vault transaction: the ledger, the erasure in raw and rejects, the journal entry with the
    source systems' request lists still to write, and the dbt tables derived from the erased rows dropped.

    `also` writes what belongs with the erasure in the same transaction (the log of the request it answers).
    Returns (run id, rows touched per table). After the commit the erasure holds whatever happens next; the
    request lists and the rebuild are finished by `write_request_lists` and the next build (the journal
    says what is left), so a crash at any later step is completed by the next run.
    """
    systems = system_of(tables)
    version_types = {t.record_type for t in tables if t.versions_of is not None}
    with transaction(con):
        # `or ignore`: a record erased since the plan was made is not recorded twice
        con.executemany("""
            insert or ignore into retention.erasure_ledger
                (record_key, record_type, category, rule_id, action, erased_on, customer_key, event_on, version_of)
            values (?, ?, ?, ?, ?, ?, pseudonymous_key(?), ?, pseudonymous_key(?))""",
            [(e.record_key, e.record_type, e.category, e.rule_id, e.action, today, e.customer_id, e.event_on,
              versioned_id(e.record_id) if e.record_type in version_types else None)
             for e in erasures])
        touched = erase(con, tables)  # the whole ledger: also rows an older ingest let through
        run_id = con.execute("select coalesce(max(run_id), 0) + 1 from retention.erasure_runs").fetchone()[0]
        con.execute("insert into retention.erasure_runs (run_id, started_at, reason, records) "
                    "values (?, current_timestamp, ?, ?)", [run_id, reason, len(erasures)])
        con.executemany("insert into retention.pending_requests values (?, ?, ?, ?, ?, ?)",
                        [(run_id, systems.get(e.record_type, "unknown"), e.record_type, e.record_id, e.action,
                          e.rule_id) for e in erasures])
        # dbt's tables in the vault (billing staging, intermediate) were derived from the rows just erased: they
        # go with them, and the rebuild recreates them. Should it fail, what depends on them fails too, rather
        # than show erased data.
        for schema, table in con.execute("""
                select schema_name, table_name from duckdb_tables()
                where database_name = current_database() and schema_name in ('staging', 'intermediate')
                """).fetchall():
            con.execute(f"drop table {ident(schema)}.{ident(table)}")
        if also is not None:
            also(con)
    return run_id, touched


def write_request_lists(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[Path]:
    """The journal's unwritten request lists: erasure-requests-<system>-<date>-<run>.csv, owner-only, ids in clear
    for the owners of the source systems. Each file is written whole (a crash leaves it or nothing) and its
    content depends on the run alone, so writing it again after a crash gives the same file; then the ids
    leave the vault's journal."""
    written = []
    runs = con.execute("select run_id, cast(started_at as date) from retention.erasure_runs "
                       "where requests_written_at is null order by run_id").fetchall()
    for run_id, day in runs:
        rows = con.execute("""select system, record_type, record_id, action, rule_id from retention.pending_requests
                              where run_id = ? order by system, record_type, record_id""", [run_id]).fetchall()
        by_system: dict[str, list[tuple]] = {}
        for system, *row in rows:
            by_system.setdefault(system, []).append(row)
        for system, listed in sorted(by_system.items()):
            path = out_dir / f"erasure-requests-{system}-{day.isoformat()}-{run_id}.csv"
            with files.atomic_writer(path) as handle:
                writer = csv.writer(handle)
                writer.writerow(["record_type", "record_id", "action", "rule"])
                writer.writerows(listed)
            written.append(path)
        with transaction(con):
            con.execute("update retention.erasure_runs set requests_written_at = current_timestamp "
                        "where run_id = ?", [run_id])
            con.execute("delete from retention.pending_requests where run_id = ?", [run_id])
    return written


def unpublished_runs(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Erasures the published analytics may still show: the next build must write a fresh analytics file."""
    return [r[0] for r in con.execute(
        "select run_id from retention.erasure_runs where published_at is null order by run_id").fetchall()]


def mark_published(con: duckdb.DuckDBPyConnection, run_ids: list[int]) -> None:
    if run_ids:
        con.execute(f"update retention.erasure_runs set published_at = current_timestamp "
                    f"where run_id in ({', '.join(str(int(r)) for r in run_ids)})")
