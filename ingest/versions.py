"""Snapshot entities kept as versions (slowly changing dimension type 2) in their raw tables.

The CRM and the service system send a full snapshot every day. Keeping every row of every snapshot made the raw
layer, and every model deriving current state from it, grow with the days the warehouse has run, and kept a
copy of every person's data for every day. A snapshot entity's raw table (same name, so erasure, the data map
and the dbt sources keep working) holds versions instead (core/schema.py VERSION_COLUMNS): per key a new
version only when its row differs from the key's version before, closed (`_valid_to`) on the export date of
the first snapshot that lists it differently or not at all (deleted at the source). Lineage (`_load_id`,
`_source_file`, `_line`, `_export_date`) is of the file that introduced the version.

This is done inside the ingest's per-file transaction (ingest/load.py), not by dbt snapshots: a failed load or a
`kill -9` then leaves the versions as they were, exactly as it leaves the rest of the vault, and a file's
accounting (rows changed + unchanged + rejected = read) is written with the versions it made.

`apply_snapshot` applies one file's rows as the snapshot of its export date D. The snapshots in effect are one
per export date (per file name its newest loaded version, per date the newest load), and the versions change
only on their dates, so a key's state on D is the version valid on D. Replacing D's state with the file's:

- the keys whose state on D does not change (the same content, and not a version D's earlier file introduced)
  are left alone: an identical snapshot writes nothing;
- for the others (new, changed, vanished, or introduced by a file this one corrects) the versions from D on
  are rebuilt from their states on D and on every later snapshot date, those reconstructed from the versions
  valid on each date. For the newest day (the daily case) that is: close the version valid before, open one
  from the file; for a corrected newest file: undo what its earlier version did, then the same; for an older
  day (corrected, or arriving late) only the keys whose state that day changed are replayed over the days
  after it, each of which is a full snapshot of its own and keeps its states.

Unreadable is not deleted: a key whose row in the file was rejected (its `record_key` in ingest.rejects) is
listed, with the content last read of it, on D and on a later date alike: its version stays open, and a key
that had vanished is listed again (what staging showed of such a key from every snapshot's rows).

`migrate` converts a vault of the layout before (every row of every snapshot) once: per entity, in one
transaction, it replays the snapshots that counted (the newest version of each file name, newest per export
date: what staging read) through `apply_snapshot` into a new table that then replaces the old one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import duckdb

from core import faults
from core.db import transaction
from core.erasure import clean_id
from core.schema import LINEAGE_COLUMNS, VERSION_COLUMNS, has_versions, row_hash_sql
from core.sql import ident, literal, relation_exists, table_columns
from ingest.config import Entity

log = logging.getLogger(__name__)

DATA_TEMP = "_versions_file"  # the file's rows: one per key, with its key and hash
UNREADABLE = "_versions_unreadable"  # keys the file lists on a rejected line
STATES = "_versions_states"  # per key to rebuild: its state on D (and the version valid before D)
TIMELINE = "_versions_timeline"  # per key to rebuild: its state on D and every later snapshot date
NEW_VERSIONS = "_versions_new"  # the versions to insert, their content copied before any is deleted
LAST_READ = "_versions_last_read"  # per key: its newest version before D (the state an unreadable row keeps)


@dataclass(frozen=True)
class Snapshot:
    """A snapshot in effect: its export date and the load (file version) that is that date's snapshot."""
    export_date: date
    load_id: int
    source_file: str


def key_sql(entity: Entity, alias: str | None = None) -> str:
    """A row's key as staging compares keys (trimmed text, empty -> null), composite keys joined with `|` as a
    reject's `record_key` is; null when any part is missing."""
    prefix = f"{alias}." if alias else ""
    parts = [clean_id(f"cast({prefix}{ident(k)} as varchar)") for k in entity.key]
    if len(parts) == 1:
        return parts[0]
    missing = " or ".join(f"{part} is null" for part in parts)
    return f"case when {missing} then null else concat_ws('|', {', '.join(parts)}) end"


def applied_snapshots(con: duckdb.DuckDBPyConnection, entity: Entity, rows_in: str | None = None) -> list[Snapshot]:
    """The snapshots in effect, oldest first: per file name its newest loaded version, per export date the newest
    of those. `rows_in`: only loads with rows in that table (the layout before, where staging took a file version
    without rows for a failed export, not for a day when every row vanished)."""
    with_rows = (f"and load_id in (select distinct _load_id from {rows_in})" if rows_in else "")
    return [Snapshot(*row) for row in con.execute(f"""
        select export_date, load_id, source_file from (
            select export_date, load_id, source_file from ingest.files
            where system = ? and entity = ? and status = 'loaded'
            qualify row_number() over (partition by source_file order by load_id desc) = 1
        )
        where true {with_rows}
        qualify row_number() over (partition by export_date order by load_id desc) = 1
        order by export_date""", [entity.system, entity.entity]).fetchall()]


def apply_snapshot(con: duckdb.DuckDBPyConnection, entity: Entity, table: str, rows: str, snapshot: Snapshot,
                   applied: Iterable[Snapshot]) -> int:
    """Make `rows` (a table of the file's readable rows: data and lineage columns, erased already) the snapshot
    `snapshot` (its export date D, its load) in the version table `table`; `applied`: the snapshots in effect
    before this file (the one it replaces on its date, if any, among them). Inside the caller's transaction.
    Returns the file's rows that made a version (rows changed); the others were the same as their key's
    version, or a key's earlier line.

    A key's state on a snapshot date is its row there; where its row was rejected, the last version read of it
    (unreadable is not deleted: it is listed, with the content it last had); else none (absent).
    """
    data = list(entity.columns)
    day = literal(snapshot.export_date.isoformat()) + "::date"
    others = [s for s in applied if s.export_date != snapshot.export_date]
    before = [s for s in others if s.export_date < snapshot.export_date]
    previous = literal(before[-1].export_date.isoformat()) + "::date" if before else None
    later = [s for s in others if s.export_date > snapshot.export_date]
    key = key_sql(entity)
    valid_on = "_valid_from <= {0} and (_valid_to is null or _valid_to > {0})".format

    # A key's later line wins (as staging took it); rows without a key are rejects already (MISSING KEY).
    con.execute(f"""
        create or replace temp table {DATA_TEMP} as
        select *, {key} as _key, {row_hash_sql(data)} as _row_hash
        from {rows}
        where {key} is not null
        qualify row_number() over (partition by {key} order by _line desc) = 1""")
    con.execute(f"""
        create or replace temp table {UNREADABLE} as
        select distinct {clean_id('record_key')} as _key from ingest.rejects
        where load_id = {int(snapshot.load_id)} and record_key is not null
        except
        select _key from {DATA_TEMP}""")
    con.execute("create or replace temp table _versions_dates (export_date date, load_id bigint, source_file varchar)")
    con.executemany("insert into _versions_dates values (?, ?, ?)",
                    [(s.export_date, s.load_id, s.source_file) for s in [*later, snapshot]])
    # The last version read of a key before D (of the unreadable keys here, of the keys to rebuild below).
    con.execute(f"create or replace temp table {LAST_READ} (_key varchar, _row_hash uhugeint, _valid_from date)")
    _last_read(con, table, key, day, UNREADABLE)

    # The keys to rebuild: their state on D changes, or their version on D is one D's earlier file made.
    # A version valid on the snapshot before D ("kept"), if any, may continue past D or end there.
    kept_sql = (f"select {key} as _key, _row_hash, _valid_from from {table} where {valid_on(previous)}"
                if previous else "select null::varchar as _key, null::uhugeint as _row_hash, null::date as _valid_from"
                " where false")
    con.execute(f"""
        create or replace temp table {STATES} as
        with
        old_state as (select {key} as _key, _row_hash, _valid_from from {table} where {valid_on(day)}),
        new_state as (
            select _key, _row_hash, 'file' as source, null::date as source_from from {DATA_TEMP}
            union all
            select _key, _row_hash, 'version', _valid_from from {LAST_READ}
        ),
        changed as (
            select _key, new_state._row_hash as new_hash, new_state.source, new_state.source_from
            from old_state full outer join new_state using (_key)
            where old_state._row_hash is distinct from new_state._row_hash or old_state._valid_from = {day}
        )
        select changed.*, kept._row_hash as kept_hash, kept._valid_from as kept_from
        from changed left join ({kept_sql}) as kept using (_key)""")
    if not _count(con, STATES):
        _ended_by(con, table, day, snapshot.load_id)
        _drop_temps(con)
        return 0
    _last_read(con, table, key, day, f"(select _key from {STATES} anti join {LAST_READ} using (_key))")

    # Each key's state on D and on every later snapshot date, reconstructed from the version valid on it. A key
    # rejected on a later date had a version there only if a readable row made it (its file, a line): else its
    # state there is the last one read, on D or after, or before D.
    state = "{{'hash': {0}._row_hash, 'source': 'version', 'source_from': {0}._valid_from}}".format
    con.execute(f"""
        create or replace temp table {TIMELINE} as
        with
        versions as (
            select {key} as _key, _row_hash, _valid_from, _valid_to, _load_id, _line from {table}
            where {key} in (select _key from {STATES})
        ),
        listed as (
            select states._key, {day} as export_date, false as rejected,
                {{'hash': states.new_hash, 'source': states.source, 'source_from': states.source_from}} as state
            from {STATES} as states
            union all
            select states._key, dates.export_date,
                rejects._key is not null
                and not (versions._load_id is not distinct from dates.load_id and versions._line is not null),
                {state('versions')}
            from {STATES} as states
            cross join _versions_dates as dates
            left join versions
                on states._key = versions._key and versions._valid_from <= dates.export_date
                and (versions._valid_to is null or versions._valid_to > dates.export_date)
            left join (
                select distinct load_id, {clean_id('record_key')} as _key from ingest.rejects
                where load_id in (select load_id from _versions_dates) and record_key is not null
            ) as rejects on rejects.load_id = dates.load_id and rejects._key = states._key
            where dates.export_date > {day}
        ),
        resolved as (
            select listed._key, listed.export_date,
                case when not listed.rejected then listed.state else coalesce(
                    last_value(case when not listed.rejected and listed.state.hash is not null then listed.state end
                        ignore nulls) over (
                        partition by listed._key order by listed.export_date
                        rows between unbounded preceding and 1 preceding
                    ),
                    case when last_read._key is not null then {state('last_read')} end,
                    {{'hash': null::uhugeint, 'source': null::varchar, 'source_from': null::date}}
                ) end as state
            from listed left join {LAST_READ} as last_read using (_key)
        ),
        marked as (
            select resolved._key, resolved.export_date, resolved.state,
                resolved.state.hash is distinct from coalesce(
                    lag(resolved.state.hash) over by_date,
                    case when row_number() over by_date = 1 then states.kept_hash end
                ) as starts
            from resolved inner join {STATES} as states using (_key)
            window by_date as (partition by resolved._key order by resolved.export_date)
        ),
        runs as (
            select _key, export_date, state, starts,
                sum(starts::int) over (partition by _key order by export_date) as run
            from marked
        )
        select _key, run, min(export_date) as starts_on, arg_min(state, export_date) as state
        from runs
        group by _key, run""")
    con.execute(f"""
        create or replace temp table _versions_runs as
        select timeline.*, lead(starts_on) over (partition by _key order by starts_on) as ends_on
        from {TIMELINE} as timeline""")

    # The new versions' content, copied before the versions it comes from are deleted. The file's rows make
    # the versions starting on D, with their lines. A version starting later (only after a correction or a late
    # file) is copied from the version valid on that date; its lineage is that version's when it started on that
    # date. Else the row there was rejected, or the same as a version now split (made by an earlier file,
    # perhaps the one this file replaces): the snapshot of that date introduced the version, on a line not known.
    columns = ", ".join(ident(c) for c in [*data, *LINEAGE_COLUMNS])
    own_file = f"runs.starts_on = {day}"

    def lineage(alias: str, own: str) -> str:
        return f"""
            case when {own} then {alias}._load_id else dates.load_id end as _load_id,
            case when {own} then {alias}._source_file else dates.source_file end as _source_file,
            case when {own} then {alias}._line end as _line,
            runs.starts_on as _export_date"""

    con.execute(f"""
        create or replace temp table {NEW_VERSIONS} as
        select {', '.join(f'file.{ident(c)}' for c in data)}, {lineage('file', own_file)},
            runs.state.hash as _row_hash, runs.starts_on as _valid_from, runs.ends_on as _valid_to,
            {own_file} as _from_file
        from _versions_runs as runs
        inner join {DATA_TEMP} as file using (_key)
        inner join _versions_dates as dates on dates.export_date = runs.starts_on
        where runs.run > 0 and runs.state.hash is not null and runs.state.source = 'file'""")
    if _count(con, "_versions_runs where run > 0 and state.hash is not null and state.source = 'version'"):
        con.execute(f"""
            insert into {NEW_VERSIONS}
            select {', '.join(f'version.{ident(c)}' for c in data)},
                {lineage('version', 'version._valid_from = runs.starts_on')},
                runs.state.hash, runs.starts_on, runs.ends_on, false
            from _versions_runs as runs
            inner join {table} as version
                on {key_sql(entity, 'version')} = runs._key and version._valid_from = runs.state.source_from
            inner join _versions_dates as dates on dates.export_date = runs.starts_on
            where runs.run > 0 and runs.state.hash is not null and runs.state.source = 'version'""")

    # The version valid before D continues through its run on D, if D's state is its own; else ends on D.
    con.execute(f"""
        update {table} as version set
            _valid_to = coalesce(runs.ends_on, case when runs._key is null then {day} end),
            _ended_load_id = dates.load_id
        from {STATES} as states
        left join _versions_runs as runs on runs._key = states._key and runs.run = 0
        left join _versions_dates as dates
            on dates.export_date = coalesce(runs.ends_on, case when runs._key is null then {day} end)
        where states.kept_from is not null and {key_sql(entity, 'version')} = states._key
            and version._valid_from = states.kept_from""")
    con.execute(f"""
        delete from {table}
        where _valid_from >= {day} and {key} in (select _key from {STATES})""")
    con.execute(f"""
        insert into {table} ({columns}, _row_hash, _valid_from, _valid_to, _ended_load_id, _is_latest)
        select {', '.join(f'new.{ident(c)}' for c in [*data, *LINEAGE_COLUMNS])}, new._row_hash, new._valid_from,
            new._valid_to, dates.load_id, false
        from {NEW_VERSIONS} as new left join _versions_dates as dates on dates.export_date = new._valid_to""")
    # Each rebuilt key's newest version is its latest (current, or the last of a key deleted at the source).
    con.execute(f"""
        update {table} as version set _is_latest = version._valid_from = newest.valid_from
        from (
            select {key} as _key, max(_valid_from) as valid_from from {table}
            where {key} in (select _key from {STATES}) group by all
        ) as newest
        where {key_sql(entity, 'version')} = newest._key
            and version._is_latest is distinct from (version._valid_from = newest.valid_from)""")
    _ended_by(con, table, day, snapshot.load_id)
    changed = _count(con, f"{NEW_VERSIONS} where _from_file")
    _drop_temps(con)
    return changed


def _last_read(con: duckdb.DuckDBPyConnection, table: str, key: str, day: str, keys: str) -> None:
    """Adds to LAST_READ the newest version before D of each key in `keys` (a relation of `_key`)."""
    con.execute(f"""
        insert into {LAST_READ}
        select {key}, _row_hash, _valid_from from {table}
        where _valid_from < {day} and {key} in (select _key from {keys})
        qualify row_number() over (partition by {key} order by _valid_from desc) = 1""")


def _drop_temps(con: duckdb.DuckDBPyConnection) -> None:
    """The file's rows in clear and what was derived from them are not kept past the file (nor their memory)."""
    for name in (DATA_TEMP, UNREADABLE, STATES, TIMELINE, NEW_VERSIONS, LAST_READ, "_versions_runs",
                 "_versions_dates"):
        con.execute(f"drop table if exists temp.main.{name}")


def _ended_by(con: duckdb.DuckDBPyConnection, table: str, day: str, load_id: int) -> None:
    """Versions that end on D were ended by this file (a corrected file takes over the closings of the one it
    replaces, of keys absent from both)."""
    con.execute(f"update {table} set _ended_load_id = {int(load_id)} "
                f"where _valid_to = {day} and _ended_load_id is distinct from {int(load_id)}")


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return con.execute(f"select count(*) from {relation}").fetchone()[0]


# --- the one-time migration from every snapshot's rows to versions ------------------------------------------
def migrate(con: duckdb.DuckDBPyConnection, entities: Iterable[Entity]) -> list[str]:
    """Convert every snapshot entity's raw table still in the layout before versions; the tables migrated.

    One transaction per entity: a kill at any point leaves the old table or the new one (and its record in
    `ingest.migrations`), and the next run migrates what is left. Also fills the accounting columns added
    with versions for the load log's rows from before (a delta's rows all changed; a refusal has none).
    """
    migrated = []
    for entity in entities:
        table = entity.raw_table
        if entity.mode != "snapshot" or not relation_exists(con, table, tables_only=True) \
                or has_versions(con, table):
            continue
        _migrate(con, entity)
        migrated.append(table)
    con.execute("""
        update ingest.files set
            rows_changed = case when mode = 'delta' and status = 'loaded' then rows_loaded else 0 end,
            rows_unchanged = 0
        where rows_changed is null and (mode = 'delta' or status <> 'loaded')""")
    return migrated


def _migrate(con: duckdb.DuckDBPyConnection, entity: Entity) -> None:
    table = entity.raw_table
    schema, name = table.split(".")
    building = f"{schema}.{ident('_migrating_' + name)}"
    data = {c: t for c, t in entity.columns.items()}
    spec = ", ".join(f"{ident(c)} {t}" for c, t in {**data, **LINEAGE_COLUMNS, **VERSION_COLUMNS}.items())
    existing = set(table_columns(con, table))
    # a column configured since the old table was made is null in its rows, as the ingest would have added it
    select = ", ".join(ident(c) if c in existing else f"null::{t} as {ident(c)}"
                       for c, t in {**data, **LINEAGE_COLUMNS}.items())
    log.info("migrating %s from every snapshot's rows to versions", table)
    with transaction(con):
        rows_before = _count(con, table)
        con.execute(f"drop table if exists {building}")
        con.execute(f"create table {building} ({spec})")
        applied: list[Snapshot] = []
        for snapshot in applied_snapshots(con, entity, rows_in=table):
            con.execute(f"create or replace temp table _versions_old_file as "
                        f"select {select} from {table} where _load_id = {snapshot.load_id}")
            apply_snapshot(con, entity, building, "_versions_old_file", snapshot, applied)
            applied.append(snapshot)
        # A file version of before: the rows that made a version that is still there changed, the rest not
        # (a version superseded by a corrected file made none that lasted).
        con.execute(f"""
            update ingest.files as files set
                rows_changed = coalesce(made.versions, 0),
                rows_unchanged = files.rows_loaded - coalesce(made.versions, 0)
            from (select load_id from ingest.files where system = ? and entity = ?) as mine
            left join (select _load_id, count(*) as versions from {building} group by all) as made
                on made._load_id = mine.load_id
            where files.load_id = mine.load_id""", [entity.system, entity.entity])
        versions = _count(con, building)
        # Drop and create, not rename: DuckDB 1.5.5 was seen failing to replay ALTER TABLE from its WAL after a
        # kill -9 (core/schema.py); the versions are few, copying them is cheap.
        con.execute(f"drop table {table}")
        con.execute(f"create table {table} ({spec})")
        con.execute(f"insert into {table} select * from {building}")
        con.execute(f"drop table {building}")
        con.execute("insert or replace into ingest.migrations values (?, current_timestamp, ?, ?)",
                    [table, rows_before, versions])
        faults.point("migrate.before_commit")
    faults.point("migrate.after_commit")
    con.execute("checkpoint")  # the swap goes to the database file now, not only to the write-ahead log
    log.info("migrated %s: %s rows of every snapshot -> %s versions", table, rows_before, versions)
