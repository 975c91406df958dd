"""Every table the warehouse itself keeps in the vault, created in one place before anything reads it.

dbt's models read several of them as sources (the load log, the erasure ledger, the rectifications, the
objections), the commands write the others (audits, quality history, request logs, the enforcement journal).
`ensure_vault_schema` runs before every ingest and build, so no model or command ever finds one missing, and
columns added since a vault was made are added to it (DuckDB has `add column if not exists`).
The raw tables are the ingest configuration's: `ensure_raw_tables` takes their columns from it. A snapshot
entity's raw table holds versions (slowly changing dimension type 2, `VERSION_COLUMNS`), a delta entity's every
row of every file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import duckdb

from core.sql import ident, literal, table_columns

DDL = """
create schema if not exists ingest;
-- the load log: one row per file version seen (loaded, refused); file_bytes + file_mtime_ns spare re-hashing
create table if not exists ingest.files (
    load_id bigint primary key, system varchar, entity varchar, source_file varchar,
    file_hash varchar, file_bytes bigint, file_mtime_ns bigint, export_date date, mode varchar,
    status varchar, rows_read bigint, rows_loaded bigint, rows_rejected bigint, blank_lines bigint,
    reason varchar, loaded_at timestamp default current_timestamp, rows_erased bigint,
    warnings varchar[],  -- the schema drift a file was loaded with (column names only)
    -- of rows_loaded: rows that made a new version (a delta: all) / that did not (same as the key's version)
    rows_changed bigint, rows_unchanged bigint
);
-- one row per snapshot entity migrated from every snapshot's rows to versions (ingest/versions.py)
create table if not exists ingest.migrations (
    raw_table varchar primary key, migrated_at timestamp not null, rows_before bigint not null,
    versions bigint not null
);
-- every rejected row: file, line, column, reason, the raw text (cleared when its record is erased)
create table if not exists ingest.rejects (
    load_id bigint, source_file varchar, line bigint, column_name varchar,
    error_type varchar, reason varchar, raw_text varchar, record_key varchar
);

create schema if not exists retention;
-- every record erased (retention enforcement, erasure on request), by pseudonymous key only
create table if not exists retention.erasure_ledger (
    record_key varchar not null,
    record_type varchar not null,
    category varchar,
    rule_id varchar,
    action varchar not null,
    erased_on date not null,
    primary key (record_type, record_key)
);
-- the journal of erasures: what is still to finish after the vault commit (request lists, republishing)
create table if not exists retention.erasure_runs (
    run_id bigint primary key,
    started_at timestamptz not null,
    reason varchar not null,            -- retention | request
    records bigint not null,
    requests_written_at timestamptz,    -- the erasure request lists for the source systems
    published_at timestamptz            -- analytics rebuilt without the erased records
);
-- what the source systems' owners must erase too, ids in clear until the lists are written (vault only)
create table if not exists retention.pending_requests (
    run_id bigint not null, system varchar not null, record_type varchar not null, record_id varchar not null,
    action varchar not null, rule_id varchar
);
-- the audit history (figures per category per audit)
create table if not exists retention.audits (
    run_id integer not null,
    run_at timestamptz not null,
    as_of_date date,
    policy_version varchar,
    category varchar not null,
    held bigint not null,
    overdue bigint not null,
    due_soon bigint not null,
    on_hold bigint not null,
    oldest_overdue_on date,
    primary key (run_id, category)
);

create schema if not exists privacy;
-- data subjects' requests (access, erasure, objection, look-ups), never the identifier or the answer
create table if not exists privacy.access_requests (
    request_id varchar primary key,
    requested_at timestamptz not null,
    identifier_type varchar not null,
    verified_by varchar not null,
    request_ref varchar,
    subject_key varchar,
    subject_keys varchar[],
    found boolean not null,
    outcome varchar not null,
    datasets integer not null,
    rows bigint not null
);
-- corrections of personal data (art. 16): the audit trail, values in clear (the vault is encrypted)
create table if not exists privacy.rectifications (
    id bigint primary key,
    recorded_at timestamp with time zone not null,
    request_ref varchar not null,
    recorded_by varchar not null,
    customer_id varchar not null,
    dataset varchar not null,
    column_name varchar not null,
    record_id varchar,
    source_value varchar,
    old_value varchar,
    new_value varchar
);
-- objections to direct marketing (art. 21): applied over the CRM's marketing consent
create table if not exists privacy.objections (
    id bigint primary key,
    recorded_at timestamptz not null,
    request_ref varchar not null,
    recorded_by varchar not null,
    customer_id varchar not null,
    scope varchar not null
);

create schema if not exists runs;
-- every published build with the fingerprint of what it was built from: the daily job skips a build that
-- would be built from the same inputs (no new file, no change of configuration, models or corrections)
create table if not exists runs.builds (
    published_at timestamptz not null,
    inputs varchar not null,
    full_refresh boolean not null
);

create schema if not exists quality;
create table if not exists quality.check_results (
    run_id varchar, run_at timestamptz, suite varchar, expectation varchar, severity varchar,
    success boolean, unexpected_count bigint, example_keys varchar[], description varchar, raised boolean
);
"""

# Columns added after vaults were made: (table, column, type)
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ingest.files", "warnings", "varchar[]"),
    # the erased record's customer (pseudonymous key) and the day of its own clock's event (a ticket closed, a
    # key returned, a case closed): the customer relationship's end must not move back when they are deleted
    ("retention.erasure_ledger", "customer_key", "varchar"),
    ("retention.erasure_ledger", "event_on", "date"),
    ("ingest.files", "rows_changed", "bigint"),
    ("ingest.files", "rows_unchanged", "bigint"),
    # of an erased superseded version (`<type>_version`, core/erasure.py): the pseudonymous key of the record it
    # was a version of; with event_on, the day it was superseded, it keeps a snapshot of an older day from
    # bringing it back
    ("retention.erasure_ledger", "version_of", "varchar"),
)

# Lineage of every raw row: the file version (load), file, physical line and export date it came from. In a
# snapshot entity's table: of the file that introduced the version.
LINEAGE_COLUMNS: dict[str, str] = {"_load_id": "bigint", "_source_file": "varchar", "_line": "bigint",
                                   "_export_date": "date"}
# A snapshot entity's raw table keeps versions, not every snapshot's rows: per key a new version only when the
# row differs from the key's version before, valid from the export date of the snapshot that first listed it
# until (`_valid_to`, exclusive) the export date of the first snapshot that listed it differently or not at
# all. The newest version of each key has `_is_latest`, so the current state (and the keys deleted at the
# source, their last version with `_valid_to` the day they vanished) is read without a window over history.
VERSION_COLUMNS: dict[str, str] = {
    "_row_hash": "uhugeint",  # row_hash of the data columns as stored: compared with a file's rows, not rehashed
    "_valid_from": "date",  # export date of the snapshot that made this version
    "_valid_to": "date",  # export date of the first snapshot without it (changed or gone); null while current
    "_ended_load_id": "bigint",  # the load that closed it (the snapshot of `_valid_to`)
    "_is_latest": "boolean",  # the key's newest version (current, or the last one of a key deleted at source)
}


def ensure_vault_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)
    for table, column, kind in ADDED_COLUMNS:
        con.execute(f"alter table {table} add column if not exists {ident(column)} {kind}")


def row_hash_sql(columns: Iterable[str], alias: str | None = None) -> str:
    """SQL of a row's content hash over its data columns (`_row_hash`): md5 of `name<RS>value` for each non-null
    value, joined by <US> in the order of the names. md5, not DuckDB's `hash()`: the hash is kept, and must not
    change with a DuckDB release. Null values are left out, so a column newly configured (null in every stored
    version) changes no hash, nor does the order of the configuration; a value is never confused with another
    column's or with null. (1M customer rows: 1.0 s, against 0.3 s for `hash()`.)"""
    prefix = f"{alias}." if alias else ""
    parts = ", ".join(f"{literal(name + chr(30))} || cast({prefix}{ident(name)} as varchar)"
                      for name in sorted(columns))
    return f"md5_number(concat_ws(chr(31), {parts}))"


def has_versions(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether a raw table has the version columns (a snapshot entity's table in the layout of versions)."""
    return "_valid_from" in table_columns(con, table)


class OldLayout(RuntimeError):
    """A snapshot entity's raw table still holds every snapshot's rows: it is migrated before it is written."""


def ensure_raw_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, Mapping[str, str]],
                      versioned: Collection[str] = ()) -> None:
    """One raw table per source entity with its configured columns and the lineage columns, and the version
    columns for the tables of snapshot entities (`versioned`); newly configured columns are added to existing
    tables. An existing snapshot table without versions is the migration's to convert (ingest/versions.py),
    never to be given empty version columns here: that would make every row of every snapshot current."""
    for table, columns in tables.items():
        schema = table.split(".")[0]
        con.execute(f"create schema if not exists {schema}")
        extra = {**LINEAGE_COLUMNS, **(VERSION_COLUMNS if table in versioned else {})}
        spec = ", ".join(f"{ident(name)} {kind}" for name, kind in {**columns, **extra}.items())
        con.execute(f"create table if not exists {table} ({spec})")
        if table in versioned and not has_versions(con, table):
            raise OldLayout(f"{table} holds every snapshot's rows (the layout before versions): migrate it first")
        for name, kind in columns.items():
            con.execute(f"alter table {table} add column if not exists {ident(name)} {kind}")
    # DDL goes to the database file now, not only to the write-ahead log: DuckDB 1.5.5 was seen failing to
    # replay a WAL holding ALTER TABLE after a kill -9 ("GetDefaultDatabase with no default database set").
    con.execute("checkpoint")
