"""Load export files into the vault's raw layer.

Promises, per file:
- DuckDB's own readers parse it with the configured types (no Python row loops);
- it loads in one transaction: a failure or a `kill -9` leaves nothing of it behind;
- its rows are accounted for: lines in the file = rows loaded + rows rejected (+ blank lines), or the file
  is refused (an unterminated quote, for one, silently swallows the lines after it);
- rejected rows keep file, line (the physical line, past rejected and blank lines), column, reason and raw
  text in `ingest.rejects`;
- a value with more decimals than its DECIMAL(p,s) holds is such a reject, never rounded (`0,005` in a
  DECIMAL(14,2) column); in a CSV file found in the same read, and the rows located by a second read only
  when some were held back;
- whatever keeps it from being read (our refusals, DuckDB's reader, the csv module, the operating system, a
  header over HEADER_LIMIT, a symbolic link out of the inbox) refuses this file, named with the problem in
  ingest.files, and the other files still load;
- a header that differs from the configured columns loads with `warnings` naming the columns, or is refused,
  as the entity's `schema_drift` says; files no entity claims come back as `unrecognised`;
- the erasure ledger applies to its rows and to its rejects (ingest/erasure.py): an erased record does not
  come back, not even as the raw text of a line that could not be read;
- a file is identified by its content hash: the same content twice changes nothing, a corrected file under
  the same name is a new version that replaces the earlier one;
- a snapshot's rows become versions (ingest/versions.py), in the same transaction: a row the same as its key's
  version writes nothing (rows_unchanged), a new or changed one makes a version (rows_changed), a key gone from
  the snapshot is closed as deleted at the source; rows read = changed + unchanged + rejected. A delta's rows
  are appended, all changed.

Printed messages and logs name files, lines, columns and reasons, never the values themselves.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import hashlib
import logging
import mmap
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from core import faults
from core.db import transaction
from core.erasure import REJECTS, TableErasure, erase, erase_rejects, erase_rows, ledger_size
from core.files import empty_folder, private_folder
from core.pseudonym import macro_sql
from core.schema import ensure_raw_tables, ensure_vault_schema
from ingest import versions
from ingest.config import Entity, decimal_spec

log = logging.getLogger(__name__)

CHUNK = 8 << 20
HEADER_LIMIT = 1 << 20  # a header line longer than this is not a header: the file is refused
# JSON escapes every control character inside strings, so this byte never occurs in a valid JSON line:
# reading JSONL as one-column "CSV" with it as the delimiter gives one row per line, with its number.
JSONL_DELIMITER = "\x1f"
TOO_MANY_DECIMALS = "TOO MANY DECIMALS"  # error_type of a value with more decimals than its DECIMAL(p,s) holds
ROWS = "_ingest_rows"  # temp table: a snapshot file's rows, before they become versions (ingest/versions.py)


class RefusedFile(Exception):
    """The file cannot be read as configured; nothing of it is loaded."""


# What reading one file can raise: each refuses that file (named, with the problem) and the others still load.
# ValueError covers UnicodeError and the configuration's ConfigError (a file name without an export date).
READ_ERRORS = (RefusedFile, ValueError, csv.Error, OSError, duckdb.Error)


@dataclass
class FileResult:
    source_file: str
    entity: str | None  # None: an unrecognised file, which no entity claims
    file_hash: str | None  # None: refused before its content was read, or unrecognised
    status: str  # loaded | unchanged | refused | unrecognised
    rows_read: int = 0  # = rows_loaded + rows_rejected = rows_changed + rows_unchanged + rows_rejected
    rows_loaded: int = 0  # rows read without a problem
    rows_rejected: int = 0
    # Of rows_loaded: rows that made a new version of their key (a delta's rows: all), and rows that did not (the
    # same as their key's version, a key's earlier line in the file, or a row of an erased record).
    rows_changed: int = 0
    rows_unchanged: int = 0
    blank_lines: int = 0
    rows_erased: int = 0  # of rows_loaded: erased by the retention ledger right after loading
    rejects_erased: int = 0  # of rows_rejected: lines of erased records, their raw text removed by the ledger
    load_id: int | None = None
    reason: str | None = None
    # Schema drift the configuration lets load: columns of the contract missing from the header (loaded as
    # NULL), header columns no configuration reads (not loaded). Column names only, never values.
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def message(self) -> str | None:
        """The line to show an operator about this file, naming it, if there is anything to say."""
        if self.status == "refused":
            return self.reason
        if self.status == "unrecognised":
            return f"{self.source_file}: {self.reason}"
        if self.warnings:
            return f"{self.source_file}: {'; '.join(self.warnings)}"
        return None


@dataclass(frozen=True)
class FileScan:
    sha256: str
    size: int
    lines: int
    mtime_ns: int
    undecodable: str | None = None  # where the UTF-8 copy stopped: bytes not valid in the file's encoding


def scan_file(path: Path, encoding: str = "utf-8", utf8_copy: Path | None = None) -> FileScan:
    """Content hash and physical line count in one pass over the bytes.

    With `utf8_copy`, the same pass writes the file there as UTF-8, decoded from `encoding`, and counts the
    decoded lines: each file is read once, not once to hash and again to transcode (the 1M invoice lines from a
    cold page cache, one run each: 111 s to ingest with two passes, 96 s with one). Python's C codecs
    plus DuckDB's UTF-8 reader are 4x faster than DuckDB's encodings extension (measured: 1M ISO-8859-15
    invoice lines, 0.8 s against 3.5 s). Bytes that do not decode end the copy, and `undecodable` says on
    which line, for the load to refuse the file; the hash still covers every byte.
    """
    digest, size, newlines, last = hashlib.sha256(), 0, 0, b""
    decoder = codecs.getincrementaldecoder(encoding)() if utf8_copy else None
    text_newlines, text_last, undecodable = 0, "", None
    mtime_ns = path.stat().st_mtime_ns
    copy = utf8_copy.open("w", encoding="utf-8", newline="") if utf8_copy else nullcontext()
    with path.open("rb") as handle, copy as sink:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
            if decoder and not undecodable:
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line = text_newlines + chunk[:exc.start].count(b"\n") + 1
                    undecodable = f"line {line}: bytes that are not valid {encoding}: wrong encoding?"
                    continue
                text_newlines += text.count("\n")
                text_last = text[-1:] or text_last
                sink.write(text)
        if decoder and not undecodable:
            sink.write(decoder.decode(b"", final=True))
    if decoder and not undecodable:
        lines = text_newlines + (1 if text_last and text_last != "\n" else 0)
    else:
        lines = newlines + (1 if size and last != b"\n" else 0)
    return FileScan(digest.hexdigest(), size, lines, mtime_ns, undecodable)


def blank_line_numbers(path: Path) -> list[int]:
    """1-based numbers of empty lines; DuckDB's reader skips them without a word."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        starts = [m.start() for m in re.finditer(rb"(?m)^\r?$", data) if m.start() < len(data)]
        # Number lines by counting newlines before each blank line's start, in one forward walk.
        numbers, line, pos = [], 1, 0
        for start in starts:
            line += data[pos:start].count(b"\n")
            pos = start
            numbers.append(line)
    return numbers


def ensure_schema(con: duckdb.DuckDBPyConnection, entities: Iterable[Entity]) -> None:
    """The load log, the rejects table, the ledger (core/schema.py) and one raw table per entity: versions for a
    snapshot entity, a table in the layout before migrated to them first (once, resumable)."""
    entities = list(entities)
    ensure_vault_schema(con)
    versions.migrate(con, entities)
    ensure_raw_tables(con, {entity.raw_table: entity.columns for entity in entities},
                      versioned={entity.raw_table for entity in entities if entity.mode == "snapshot"})


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _json_path(field: str) -> str:
    return _sql_str(f'$."{field}"')


def _read_header(path: Path, entity: Entity) -> list[str]:
    """The header's column names; a header that cannot be one (too long, not text, not CSV) refuses the file.

    At most HEADER_LIMIT bytes are read: a file without line breaks (50 MB of anything) is refused naming line
    1, not read into memory whole nor handed to Python's csv module, whose field limit would raise instead.
    """
    with path.open("rb") as handle:
        first = handle.readline(HEADER_LIMIT + 1)
    if len(first) > HEADER_LIMIT:
        raise RefusedFile(f"line 1: the header is longer than {HEADER_LIMIT >> 20} MiB: not a header of this export")
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise RefusedFile(f"line 1: the header is not valid {entity.encoding} (byte {exc.start + 1})") from exc
    dialect = entity.dialect
    try:
        fields = next(csv.reader([text], delimiter=dialect.delimiter, quotechar=dialect.quote), [])
    except csv.Error as exc:  # its messages name the problem, never the content
        raise RefusedFile(f"line 1: the header is not readable as CSV ({exc})") from exc
    header = [name.strip() for name in fields]
    if len(header) == 1 and any(sep in text for sep in ",;\t|" if sep != dialect.delimiter):
        raise RefusedFile(f"line 1: the header is not separated by {dialect.delimiter!r}: wrong delimiter")
    return header


class FileLoader:
    """Loads one file version of one entity inside the caller's transaction.

    Line numbers: the reader's output rows are numbered in read order (`_read`). Lines the reader drops — its
    own rejects and, in a CSV file, blank lines — are "skipped"; every other line is an output row. A row
    read k-th lies on physical line k + header + (skipped lines before it), which `_renumber_lines` applies
    to the loaded rows and `_place_held_rows` to the rows our own checks held back (JSON that is not an
    object, values that do not cast, decimals the type would round), so each reject carries its real line.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, entity: Entity, path: Path, source_file: str,
                 load_id: int, export_date: date, erasure: list[TableErasure], has_key: bool = False):
        # `path` is the file in UTF-8 (the export itself, or its transcoded copy).
        self.con, self.entity, self.path = con, entity, path
        self.source_file, self.load_id, self.export_date = source_file, load_id, export_date
        self.header_lines = 1 if entity.format == "csv" else 0
        self.reader_columns: dict[str, str] = {}  # positional alias -> header name, for reject messages
        self.blank_lines = 0
        self.blank_rows = 0  # JSONL: blank lines come out of the one-column reader as rows of NULL
        self.erasure = erasure  # what erasing a record means in each table (the ledger is applied per load)
        self.has_key = has_key  # `pseudonymous_key` is defined on the connection
        self.decimals = {name: spec for name, kind in entity.columns.items() if (spec := decimal_spec(kind))}
        self.csv_reader: Callable[[bool], str] | None = None  # the typed read_csv, for a second pass
        self.decimal_values: dict[str, str] = {}  # CSV: warehouse name of a decimal column -> its read alias
        self.loaded_aliases: list[str] = []  # CSV: the read aliases of every column loaded
        self.warnings: list[str] = []  # schema drift the configuration lets load
        # A delta's rows go to its raw table; a snapshot's to a temp table first, then become versions.
        self.table = entity.raw_table if entity.mode == "delta" else ROWS

    # --- reading -------------------------------------------------------------------------------------
    def _reader_options(self, store_rejects: bool = True) -> str:
        rejects = ("store_rejects=true, rejects_table='_ingest_reject_errors', rejects_scan='_ingest_reject_scans'"
                   if store_rejects else "ignore_errors=true")
        return f"encoding='utf-8', auto_detect=false, {rejects}"

    def _csv_select(self) -> str:
        entity, dialect = self.entity, self.entity.dialect
        header = _read_header(self.path, entity)
        by_source = {source: name for name, source in entity.source_names.items()}
        missing = [name for name in entity.required if entity.source_names[name] not in header]
        if missing:
            raise RefusedFile(f"line 1: missing required column(s) {', '.join(missing)}")
        self._check_drift(header)
        # Read every header column: configured ones with their type, anything else as text (then dropped).
        # Decimals are read wider (_read_type), so that digits the configured scale would round are seen.
        read_types = {f"c{i}": _read_type(entity.columns.get(by_source.get(h, ""), "VARCHAR"))
                      for i, h in enumerate(header)}
        position = {by_source[h]: f"c{i}" for i, h in enumerate(header) if h in by_source}
        select = ", ".join(
            (f'{position[name]}::{kind} as "{name}"' if name in self.decimals else f'{position[name]} as "{name}"')
            if name in position else f'null::{kind} as "{name}"' for name, kind in entity.columns.items())
        self.decimal_values = {name: position[name] for name in self.decimals if name in position}
        self.loaded_aliases = list(position.values())
        struct = "{" + ", ".join(f"'{col}': '{kind}'" for col, kind in read_types.items()) + "}"
        # Rejects name the column as the export's header does, not as the positional alias.
        self.reader_columns = {f"c{i}": h for i, h in enumerate(header)}

        def reader(store_rejects: bool) -> str:
            return f"""
                select *, row_number() over () as _read
                from read_csv({_sql_str(str(self.path))}, columns={struct}, header=true,
                    delim={_sql_str(dialect.delimiter)}, quote={_sql_str(dialect.quote)},
                    escape={_sql_str(dialect.escape)}, decimal_separator={_sql_str(dialect.decimal_separator)},
                    dateformat={_sql_str(dialect.date_format)},
                    timestampformat={_sql_str(dialect.timestamp_format)}, {self._reader_options(store_rejects)})"""

        self.csv_reader = reader
        fits = " and ".join(_fits(alias, self.decimals[name][1]) for name, alias in self.decimal_values.items())
        # One scan: rows with a decimal the type would round are left out here, and found again only when the
        # accounting shows rows missing (_hold_decimals).
        return f"""
            select {select}, _read + {self.header_lines} as _line
            from ({reader(True)})
            {f"where {fits}" if fits else ""}"""

    def _check_drift(self, header: list[str]) -> None:
        """Columns of the configuration missing from the header, and header columns it does not read: each kind
        is a warning or refuses the file, as the entity's `schema_drift` says."""
        drift = self.entity.schema_drift
        sources = set(self.entity.source_names.values())
        found = {
            "missing": ([s for s in self.entity.source_names.values() if s not in header], drift.missing_columns,
                        "loaded as empty"),
            "unexpected": ([h for h in header if h not in sources], drift.unexpected_columns, "not loaded"),
        }
        refusals = []
        for kind, (columns, action, effect) in found.items():
            if not columns:
                continue
            if action == "refuse":
                refusals.append(f"{kind} column(s) {_names(columns)} (schema_drift.{kind}_columns: refuse)")
            else:
                self.warnings.append(f"{kind} column(s) {_names(columns)}: {effect}")
        if refusals:
            raise RefusedFile("line 1: " + "; ".join(refusals))

    def _decimal_errors(self, wide_values: dict[str, str]) -> list[str]:
        """Per decimal column (name -> SQL of its value read wide), a reject struct when the scale would round it.

        The column is named as the reader's own rejects of the file name it: by its header in a CSV file.
        """
        checks = []
        for name, value in wide_values.items():
            kind = self.entity.columns[name]
            label = self.entity.source_names[name] if self.entity.format == "csv" else name
            checks.append(
                f"case when not {_fits(value, self.decimals[name][1])} "
                f"then {{'column_name': {_sql_str(label)}, 'error_type': {_sql_str(TOO_MANY_DECIMALS)}, "
                f"'reason': {_sql_str(f'more decimals than {kind} allows')}}} end")
        return checks

    def _jsonl_select(self) -> str:
        """One row per line; values cast with try_cast, and lines that fail are held back as rejects."""
        entity = self.entity
        self.con.execute(f"""
            create or replace temp table _ingest_lines as
            select row_number() over () as _read, _json
            from read_csv({_sql_str(str(self.path))}, columns={{'_json': 'VARCHAR'}}, header=false,
                delim={_sql_str(JSONL_DELIMITER)}, quote='', escape='', {self._reader_options()})""")
        self.blank_rows = self._count("select count(*) from _ingest_lines where _json is null")
        checks = ["case when not json_valid(_json) or json_type(_json) <> 'OBJECT' "
                  "then {'column_name': null, 'error_type': 'INVALID JSON', "
                  "'reason': 'line is not a JSON object'} end"]
        values, wide = [], {}
        for name, kind in entity.columns.items():
            path = _json_path(entity.source_names[name])
            if kind == "JSON":
                values.append(f'json_extract(_json, {path}) as "{name}"')
                continue
            text = f"json_extract_string(_json, {path})"
            values.append(f'try_cast({text} as {kind}) as "{name}"')
            checks.append(
                f"case when json_valid(_json) and {text} is not null and try_cast({text} as {kind}) is null "
                f"then {{'column_name': {_sql_str(name)}, 'error_type': 'CAST', "
                f"'reason': {_sql_str(f'could not convert {name} to {kind}')}}} end")
            if name in self.decimals:
                wide[name] = f"try_cast({text} as {_read_type(kind)})"
        checks += [f"case when json_valid(_json) then {check} end" for check in self._decimal_errors(wide)]
        self.con.execute(f"""
            insert into _ingest_held
            select _read, e.column_name, e.error_type, e.reason, _json from (
                select _read, _json, unnest(list_filter([{', '.join(checks)}], e -> e is not null)) as e
                from _ingest_lines where _json is not null)""")
        return f"""
            select {', '.join(values)}, _read as _line
            from _ingest_lines
            where _json is not null and _read not in (select _read from _ingest_held)"""

    # --- loading -------------------------------------------------------------------------------------
    def load(self, scan: FileScan) -> FileResult:
        con, entity = self.con, self.entity
        con.execute("drop table if exists _ingest_reject_errors; drop table if exists _ingest_reject_scans")
        # Rejects from DuckDB's reader (lines it skipped, by physical line) and from our own checks meet here,
        # in one shape; _ingest_held keeps the rows our checks held back, by read order, until they are placed.
        con.execute("""create or replace temp table _ingest_rejects (
            line bigint, column_name varchar, error_type varchar, reason varchar, raw_text varchar)""")
        con.execute("""create or replace temp table _ingest_held (
            _read bigint, column_name varchar, error_type varchar, reason varchar, raw_text varchar)""")
        select = self._csv_select() if entity.format == "csv" else self._jsonl_select()
        columns = ", ".join(f'"{name}"' for name in entity.columns)
        if self.table == ROWS:
            spec = ", ".join(f'"{name}" {kind}' for name, kind in entity.columns.items())
            con.execute(f"create or replace temp table {ROWS} ({spec}, _load_id bigint, _source_file varchar, "
                        "_line bigint, _export_date date)")
        read = con.execute(f"""
            insert into {self.table} ({columns}, _load_id, _source_file, _line, _export_date)
            select {columns}, {self.load_id}, {_sql_str(self.source_file)}, _line,
                {_sql_str(self.export_date.isoformat())}::date
            from ({select})""").fetchone()[0]
        if con.execute("select count(*) from duckdb_tables() where table_name = '_ingest_reject_errors'"
                       ).fetchone()[0]:
            names = self.reader_columns
            rename = "".join(f" when {_sql_str(a)} then {_sql_str(h)}" for a, h in names.items())
            column = f"case column_name{rename} else column_name end" if names else "column_name"
            # csv_line of a line after a blank one starts with that blank line's line break: not the line's text
            con.execute(f"""
                insert into _ingest_rejects
                select line, {column}, error_type,
                    coalesce(replace(error_message, '"' || column_name || '"', '"' || {column} || '"'),
                        error_message), ltrim(csv_line, chr(10) || chr(13))
                from _ingest_reject_errors""")
        self._refuse_unreadable()
        self._reconcile(scan, read)
        loaded = read - self._reject_missing_keys()
        rejected = self._count("select count(distinct line) from _ingest_rejects")
        con.execute(f"""
            insert into ingest.rejects
                (load_id, source_file, line, column_name, error_type, reason, raw_text, record_key)
            select {self.load_id}, {_sql_str(self.source_file)}, line, column_name, error_type, reason, raw_text,
                case when error_type <> 'MISSING KEY' then nullif({self._record_key_sql()}, '') end
            from _ingest_rejects""")
        if loaded == 0 and entity.mode == "snapshot":
            raise RefusedFile("a snapshot with no rows would mark every row deleted at the source")
        rows_erased, rejects_erased = self._erase()
        changed = loaded
        if entity.mode == "snapshot":
            snapshot = versions.Snapshot(self.export_date, self.load_id, self.source_file)
            changed = versions.apply_snapshot(con, entity, entity.raw_table, ROWS, snapshot,
                                              versions.applied_snapshots(con, entity))
            con.execute(f"drop table {ROWS}")  # the file's rows in clear: not kept past the transaction
        return FileResult(self.source_file, entity.name, scan.sha256, "loaded", rows_read=loaded + rejected,
                          rows_loaded=loaded, rows_rejected=rejected, rows_changed=changed,
                          rows_unchanged=loaded - changed, blank_lines=self.blank_lines,
                          rows_erased=rows_erased, rejects_erased=rejects_erased, load_id=self.load_id,
                          warnings=self.warnings)

    def _erase(self) -> tuple[int, int]:
        """Apply the erasure ledger to this load's rows and rejects, so an export cannot bring an erased record
        back, not even as the raw text of a line it could not read.

        The rows were loaded (rows_read = loaded + rejected still holds) and are then deleted or anonymised
        in the same transaction; rows_erased counts them, as part of rows_loaded. Rejected lines of erased
        records stay rejects (file, line, column, reason) without their text: rejects_erased, of rows_rejected.
        A snapshot's rows are erased before they are compared with the versions: an erased record's row then
        equals its erased version and makes no new one, and a deleted record's is gone before it could be one.
        """
        if not ledger_size(self.con):
            return 0, 0
        if not self.has_key:
            raise RefusedFile("the erasure ledger is not empty but no pseudonym key was given to match it")
        if self.table == ROWS:
            erased = sum(erase_rows(self.con, spec, ROWS) for spec in self.erasure
                         if spec.table == self.entity.raw_table)
            return erased, erase_rejects(self.con, self.load_id, self.erasure)
        touched = erase(self.con, self.erasure, only=self.entity.raw_table, load_id=self.load_id, rejects=True)
        rejects = touched.pop(REJECTS, 0)
        return sum(touched.values()), rejects

    def _record_key_sql(self) -> str:
        """SQL over a reject's `raw_text` that reads its key: by header position (CSV) or by name (JSON)."""
        entity = self.entity
        if entity.format == "jsonl":
            parts = [f"json_extract_string(raw_text, {_json_path(entity.source_names[k])})" for k in entity.key]
            return f"case when json_valid(raw_text) then concat_ws('|', {', '.join(parts)}) end"
        position = {h: i for i, h in enumerate(self.reader_columns.values())}
        delimiter, quote = _sql_str(entity.dialect.delimiter), _sql_str(" " + entity.dialect.quote)
        parts = [f"trim(string_split(raw_text, {delimiter})[{position[entity.source_names[k]] + 1}], {quote})"
                 for k in entity.key]
        return f"concat_ws('|', {', '.join(parts)})"

    def _count(self, sql: str) -> int:
        return self.con.execute(sql).fetchone()[0]

    def _reconcile(self, scan: FileScan, read: int) -> None:
        """Every data line is a loaded row, a rejected row or blank; otherwise refuse the file.

        The cheap checks come first: the counts (no pass over the file), then the blank lines of a CSV file
        (one pass over the bytes), and only when rows are still missing a second read for the rows held back
        because a decimal would round (their lines and raw text).
        """
        skipped = self._count("select count(distinct line) from _ingest_rejects")
        expected = scan.lines - self.header_lines

        def accounted() -> int:
            held = self._count("select count(distinct _read) from _ingest_held")
            return read + held + self.blank_rows + skipped + len(blanks)

        blanks: list[int] = []
        if accounted() != expected and self.entity.format == "csv":
            blanks = blank_line_numbers(self.path)
            if accounted() != expected and self.decimal_values:
                self._hold_decimals()
        if accounted() != expected:
            held = self._count("select count(distinct _read) from _ingest_held")
            raise RefusedFile(self._accounting_message(expected, read, skipped + held,
                                                       len(blanks) + self.blank_rows))
        self.blank_lines = len(blanks) + self.blank_rows
        self._renumber_lines(blanks)
        self._place_held_rows()

    def _hold_decimals(self) -> None:
        """Second read of a CSV file: the rows the first left out because a decimal had digits its scale rounds.

        It selects every column the first read loaded, not only the decimals: DuckDB parses only the columns a
        query uses, so a row the first read rejected for a bad date would otherwise come out here, and number
        every row after it one further.
        """
        assert self.csv_reader is not None
        wide = dict(self.decimal_values)
        fits = " and ".join(_fits(alias, self.decimals[name][1]) for name, alias in wide.items())
        self.con.execute(f"""
            create or replace temp table _ingest_rounding as
            select _read, {', '.join(self.loaded_aliases)} from ({self.csv_reader(False)}) where not ({fits})""")
        self.con.execute(f"""
            insert into _ingest_held
            select _read, e.column_name, e.error_type, e.reason, null from (
                select _read, unnest(list_filter([{', '.join(self._decimal_errors(wide))}], e -> e is not null)) as e
                from _ingest_rounding)""")

    def _place_held_rows(self) -> None:
        """Rows held back by our checks become rejects on their physical lines, with the line's text."""
        self.con.execute(f"""
            insert into _ingest_rejects
            select held._read + {self.header_lines}
                    + coalesce((select max(shift) from _ingest_skips where read_before < held._read), 0),
                column_name, error_type, reason, raw_text
            from _ingest_held as held""")
        missing_text = [line for (line,) in self.con.execute(
            "select distinct line from _ingest_rejects where raw_text is null and error_type = ? order by 1",
            [TOO_MANY_DECIMALS]).fetchall()]
        if missing_text:
            self.con.executemany("update _ingest_rejects set raw_text = ? where line = ? and raw_text is null",
                                 [(text, line) for line, text in line_texts(self.path, missing_text).items()])

    def _refuse_unreadable(self) -> None:
        bad = self.con.execute("""
            select min(line), count(*) from _ingest_rejects where error_type = 'INVALID ENCODING'
        """).fetchone()
        if bad[1]:
            raise RefusedFile(f"line {bad[0]}: bytes that are not valid {self.entity.encoding} "
                              f"({bad[1]} line(s) in all): wrong encoding?")

    def _reject_missing_keys(self) -> int:
        """A row without its key cannot be placed in history: it becomes a reject, not a raw row. A key of blanks
        is missing too (staging trims keys)."""
        entity, table = self.entity, self.table
        where = f"_load_id = {self.load_id} and {versions.key_sql(entity)} is null"  # as history places keys
        columns = ", ".join(f'coalesce("{name}"::varchar, \'\')' for name in entity.columns)
        keys = ", ".join(entity.key)
        self.con.execute(f"""
            insert into _ingest_rejects
            select _line, {_sql_str(keys)}, 'MISSING KEY', {_sql_str(f'empty key column: {keys}')},
                concat_ws({_sql_str(entity.dialect.delimiter)}, {columns})
            from {table} where {where}""")
        return self.con.execute(f"delete from {table} where {where}").fetchone()[0]

    def _accounting_message(self, expected: int, loaded: int, rejected: int, blanks: int) -> str:
        quote = self.con.execute(
            "select min(line) from _ingest_rejects where error_type = 'UNQUOTED VALUE'").fetchone()[0]
        where = f"an unterminated quote at line {quote} swallowed the lines after it; " if quote else ""
        return (f"{where}{expected} data lines, but {loaded} loaded + {rejected} rejected + {blanks} blank "
                f"= {loaded + rejected + blanks}: refusing the file rather than losing rows")

    def _renumber_lines(self, blanks: list[int]) -> None:
        """Rows were numbered in read order; shift each past the skipped lines (reader rejects, blanks) before it.

        With skipped lines s_1 < s_2 < …, the row read k-th lies after skip i exactly when more than
        s_i - header - i rows were read before it, so it moves down by the largest such i.
        """
        con = self.con
        con.execute("create or replace temp table _ingest_blanks (line bigint)")
        if blanks:
            con.executemany("insert into _ingest_blanks values (?)", [(line,) for line in blanks])
        # Consecutive skipped lines share read_before: the rows after them move past all of them.
        con.execute(f"""
            create or replace temp table _ingest_skips as
            with skipped as (
                select distinct line from _ingest_rejects where line is not null
                union select line from _ingest_blanks
            ),
            skips as (
                select line - {self.header_lines} - row_number() over (order by line) as read_before,
                    row_number() over (order by line) as shift
                from skipped
            )
            select read_before, max(shift) as shift from skips group by read_before""")
        runs = con.execute("""
            select read_before, shift, lead(read_before) over (order by read_before)
            from _ingest_skips order by read_before desc""").fetchall()
        # One UPDATE per run of rows between two skips, found by the zone maps of `_line`; the last run first,
        # so a shifted row never lands in a run still to update. 2,000 skips in 38M rows: 6.7 s, where one
        # UPDATE joined to the skips took minutes.
        table, header = self.table, self.header_lines
        for read_before, shift, next_before in runs:
            until = "" if next_before is None else f" and _line <= {header + next_before}"
            con.execute(f"update {table} set _line = _line + {shift} "
                        f"where _load_id = {self.load_id} and _line > {header + read_before}{until}")


def _names(columns: list[str], most: int = 20) -> str:
    """Header names for a message: an export's header is not personal data, but a broken one may hold
    anything, so each name is cut to 64 characters and at most `most` are listed."""
    shown = [(c[:61] + "…" if len(c) > 64 else c) or "(empty)" for c in columns[:most]]
    more = f" and {len(columns) - most} more" if len(columns) > most else ""
    return ", ".join(shown) + more


def line_texts(path: Path, numbers: Iterable[int]) -> dict[int, str]:
    """The text of the given 1-based physical lines of a UTF-8 file, in one forward read up to the last."""
    wanted, texts = set(numbers), {}
    last = max(wanted, default=0)
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number in wanted:
                texts[number] = line.decode("utf-8", errors="replace").rstrip("\r\n")
            if number >= last:
                break
    return texts


def _read_type(kind: str) -> str:
    """The type the reader reads a column as: the configured one, but decimals with room for more decimals.

    DECIMAL(p,s) is read as DECIMAL(18, 18 - (p - s)) (DECIMAL(38, …) past 17 digits: 60x slower to parse
    in DuckDB 1.5, so only where needed): the same integer digits, so a value too large still fails the cast
    as before, and s' ≥ s + 1 decimals, so digits the configured scale would round are seen (DECIMAL(14,2):
    up to 6 decimals). Digits past s' the reader itself rounds away before any check can see them.
    """
    spec = decimal_spec(kind)
    if not spec:
        return kind
    precision, scale = spec
    width = 18 if precision < 18 else 38
    return f"DECIMAL({width},{width - (precision - scale)})"


def _fits(value: str, scale: int) -> str:
    """SQL: the decimal `value` has no non-zero digit past `scale` (trunc, unlike round, cannot overflow)."""
    return f"({value} is null or {value} = trunc({value}, {scale}))"


def _current_version(con: duckdb.DuckDBPyConnection, source_file: str) -> tuple[str, int, int] | None:
    """Hash, size and mtime of the newest loaded version of this file name."""
    return con.execute("""
        select file_hash, file_bytes, file_mtime_ns from ingest.files where source_file = ? and status = 'loaded'
        order by load_id desc limit 1""", [source_file]).fetchone()


def _log_file(con: duckdb.DuckDBPyConnection, entity: Entity, path: Path, scan: FileScan | None,
              result: FileResult) -> None:
    try:
        export_date = entity.export_date(path)
    except ValueError:
        export_date = None
    con.execute("""
        insert into ingest.files (load_id, system, entity, source_file, file_hash, file_bytes, file_mtime_ns,
            export_date, mode, status, rows_read, rows_loaded, rows_rejected, blank_lines, reason, rows_erased,
            warnings, rows_changed, rows_unchanged)
        values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [result.load_id, entity.system, entity.entity, result.source_file, result.file_hash,
         scan.size if scan else None, scan.mtime_ns if scan else None, export_date, entity.mode, result.status,
         result.rows_read, result.rows_loaded, result.rows_rejected, result.blank_lines, result.reason,
         result.rows_erased, result.warnings or None, result.rows_changed, result.rows_unchanged])


def _next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    # Not a sequence: DuckDB does not replay a sequence's advance after a kill -9, so ids would repeat.
    # The vault has one writer at a time, so max + 1 inside the transaction is safe.
    return con.execute("select coalesce(max(load_id), 0) + 1 from ingest.files").fetchone()[0]


def _refuse(con: duckdb.DuckDBPyConnection, entity: Entity, path: Path, source_file: str, scan: FileScan | None,
            problem: str) -> FileResult:
    """Record the file version as refused, naming the file and the problem, in its own transaction.

    A refusal identical to the newest record of that name (same content, same reason) is not recorded again:
    re-running on an inbox whose bad file is still there changes nothing in the vault, and still says so.
    """
    file_hash, reason = scan.sha256 if scan else None, f"{source_file}: {problem}"
    with transaction(con):
        newest = con.execute("""
            select load_id, status, file_hash, reason from ingest.files where source_file = ?
            order by load_id desc limit 1""", [source_file]).fetchone()
        if newest and newest[1:] == ("refused", file_hash, reason):
            load_id = newest[0]
        else:
            load_id = _next_load_id(con)
            result = FileResult(source_file, entity.name, file_hash, "refused", load_id=load_id, reason=reason)
            _log_file(con, entity, path, scan, result)
    log.warning("refused %s", reason)
    return FileResult(source_file, entity.name, file_hash, "refused", load_id=load_id, reason=reason)


def _read_problem(exc: BaseException) -> str:
    """What went wrong reading a file, in words that name no value of it."""
    if isinstance(exc, duckdb.Error):
        return _reader_failure(exc)
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, UnicodeError):
        return f"cannot be decoded ({type(exc).__name__})"
    if isinstance(exc, csv.Error):
        return f"unreadable as CSV ({exc})"
    return str(exc)


def _inside_inbox(path: Path, inbox: Path) -> Path:
    """The file's real path, if it lies inside the inbox; a symbolic link (of the file or of a folder on its
    way) that points out of the inbox refuses the file unread: the inbox is what the systems export into, and
    a link must not make the ingest load whatever file it names. Links within the inbox are followed."""
    real = path.resolve()
    if not real.is_relative_to(inbox.resolve()):
        raise RefusedFile("a symbolic link out of the inbox: only files inside the inbox are read")
    return real


def ingest_file(con: duckdb.DuckDBPyConnection, entity: Entity, path: Path, inbox: Path, scratch: Path,
                erasure: list[TableErasure], has_key: bool = False) -> FileResult:
    """Load one file in its own transaction; refuse it whole if it cannot be read as configured.

    Whatever reading the file raises (READ_ERRORS: our refusals, DuckDB's reader, the csv module, the
    operating system, a codec) refuses this file, recorded in ingest.files with the file and the problem;
    the caller goes on with the next file.

    A symbolic link pointing out of the inbox is refused without reading it (a link within the inbox loads).

    `scratch` holds the transient UTF-8 copy of a file in another encoding: it holds personal data, so it is
    a folder of the home, owner-only, emptied at the start of each ingest (a killed run's copy goes then).
    `has_key`: `pseudonymous_key` is defined on `con`, to match the rows against the erasure ledger (a
    non-empty ledger without it refuses the file rather than resurrect erased data).
    """
    source_file = path.relative_to(inbox).as_posix()
    scan = None
    try:
        real = _inside_inbox(path, inbox)  # read from here on: a link swapped meanwhile is not followed
        current, stat = _current_version(con, source_file), real.stat()
        if current and current[1:] == (stat.st_size, stat.st_mtime_ns):
            return FileResult(source_file, entity.name, current[0], "unchanged")
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            # load_entities has checked the encoding's name
            utf8_copy = Path(tmp) / "utf8" if codecs.lookup(entity.encoding).name != "utf-8" else None
            scan = scan_file(real, entity.encoding, utf8_copy)
            if current and current[0] == scan.sha256:
                return FileResult(source_file, entity.name, scan.sha256, "unchanged")
            return _load_version(con, entity, path, utf8_copy or real, source_file, scan, erasure, has_key)
    except READ_ERRORS as exc:
        return _refuse(con, entity, path, source_file, scan, _read_problem(exc))


def _load_version(con: duckdb.DuckDBPyConnection, entity: Entity, path: Path, utf8_path: Path, source_file: str,
                  scan: FileScan, erasure: list[TableErasure], has_key: bool) -> FileResult:
    """One transaction: the rows, the rejects and the load log, or nothing (the caller then refuses the file)."""
    with transaction(con):
        load_id = _next_load_id(con)
        # A JSONL delta with no changes has no bytes at all; any other empty file is broken.
        if scan.size == 0 and not (entity.format == "jsonl" and entity.mode == "delta"):
            raise RefusedFile("empty file")
        export_date = entity.export_date(path)
        if scan.undecodable:
            raise RefusedFile(scan.undecodable)
        result = FileLoader(con, entity, utf8_path, source_file, load_id, export_date, erasure, has_key).load(scan)
        _log_file(con, entity, path, scan, result)
        faults.point("ingest.before_commit")
    faults.point("ingest.after_commit")
    log.info("loaded %s: load %s, %s rows (%s changed, %s unchanged), %s rejected, %s rows and %s rejects erased "
             "by the ledger", source_file, load_id, result.rows_loaded, result.rows_changed, result.rows_unchanged,
             result.rows_rejected, result.rows_erased, result.rejects_erased)
    if result.warnings:
        log.warning("loaded with schema drift %s", result.message())
    return result


def _reader_failure(exc: duckdb.Error) -> str:
    """DuckDB's message may quote file content: keep its first line with quoted values blanked out."""
    first = re.sub(r'"[^"]*"', '"…"', str(exc).splitlines()[0])
    return f"unreadable as configured ({type(exc).__name__}: {first[:200]})"


def find_files(inbox: Path, entities: Iterable[Entity]) -> list[tuple[Entity, Path]]:
    """Every file the configuration claims, oldest export first so deltas apply in order.

    Symbolic links are claimed too, even dangling ones: the ingest refuses those it must not follow, by name.
    """
    found = []
    for entity in entities:
        for path in sorted(inbox.glob(entity.pattern)):
            if path.is_file() or path.is_symlink():
                found.append((entity, path))
    return found


def unrecognised_files(inbox: Path, entities: Iterable[Entity], ignore: Iterable[str] = ()) -> list[str]:
    """Files in the inbox (relative paths) that no entity's pattern claims and the inbox's `ignore` list does not
    name (shell patterns, `*` crossing folders too). Folders linked into the inbox are not walked."""
    claimed = {path.relative_to(inbox).as_posix() for _, path in find_files(inbox, entities)}
    ignore = list(ignore)
    found = []
    for folder, _, files in os.walk(inbox):
        for name in files:
            relative = (Path(folder) / name).relative_to(inbox).as_posix()
            if relative not in claimed and not any(fnmatch.fnmatchcase(relative, p) for p in ignore):
                found.append(relative)
    return sorted(found)


def totals(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int, int]:
    """Files seen, rows loaded, rows rejected and files refused, over the whole load log."""
    return con.execute("""
        select count(*), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_rejected), 0),
            count(*) filter (where status = 'refused')
        from ingest.files""").fetchone()


def ingest_inbox(con: duckdb.DuckDBPyConnection, inbox: Path, entities: list[Entity], *, scratch: Path,
                 erasure: list[TableErasure], secret: bytes | None = None, ignore: Iterable[str] = (),
                 on_file: Callable[[FileResult], None] | None = None) -> list[FileResult]:
    """Load every new file of the inbox; `secret` is the pseudonym secret that matches the erasure ledger.

    Files no entity claims come last, as `unrecognised` results: not loaded, not a failure, but named (and
    logged). `ignore`: patterns of files that are not exports (the configuration's inbox.yml: the sample
    generator's manifest.json).
    """
    ensure_schema(con, entities)
    private_folder(scratch)
    if empty_folder(scratch):
        log.info("removed the transient copies a killed ingest left in %s", scratch)
    if secret is not None:
        con.execute(macro_sql(secret))
    results = []
    for entity, path in find_files(inbox, entities):
        result = ingest_file(con, entity, path, inbox, scratch, erasure, secret is not None)
        results.append(result)
        if on_file:
            on_file(result)
    for source_file in unrecognised_files(inbox, entities, ignore):
        result = FileResult(source_file, None, None, "unrecognised",
                            reason="matches no entity's file pattern: not loaded")
        log.warning("unrecognised %s", result.message())
        results.append(result)
        if on_file:
            on_file(result)
    return results
