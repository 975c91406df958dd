"""Subject access (GDPR art. 15, privacy notice § 9): everything the register holds about one person.

`subject_access(home, identifier_type, value, verified_by=..., request_ref=...)` finds the person in the
vault's `staging.stg_crm__customers` by customer id, HETU or email (normalised as staging normalises them,
macros/staging/cleaning.sql) and assembles, for every dataset of the data map (privacy/data_map.yml):

- its rows, every data-map column, labelled by its fideslang data category; the queries are generated from
  the data map's `subject` (a customer-id column, or `{via, key}`: a join through another dataset);
- its purposes (register.yml `purposes`) and source (§ 6, register.yml `sources`);
- the recipients it was disclosed to (§ 7, disclosures.yml flows: recorded disclosures read from the flow's
  dataset rows of this person, standing ones where `customers_where` holds for the person's customer row);
- how long it is kept: the retention rules covering the table (retention/policy.yml) and, per record, the
  expiry date and status from the vault view `intermediate.int_retention__records`;
- its history, for a dataset whose rows come from a snapshot entity's raw table of versions (customers,
  services, key handovers; ingest/versions.py): per record and personal column, the earlier values the
  closed versions held that differ from the record's current version, each with the period it was valid
  (`valid_to`: the day a later export replaced it). See `history_columns` for which columns and how their
  values are cleaned.

One person may have several customer records (registered twice: the same HETU). A request by any
identifier covers every customer record carrying the HETU of the record(s) it matched. An email shared by
records of different people (or of customers without a HETU) is refused as ambiguous: the customer id or
the HETU tells them apart.

The package is written owner-only into `<home>/access/<request_id>/` (never into `<home>/reports`, which
holds no personal data): `access.json` and one HTML page per language (`access.fi.html`, `access.en.html`,
one template, privacy/templates/access.html.j2, labels in access_labels.yml, rendered by core/render.py).
Every request, found or not, is logged in the vault table `privacy.access_requests` with the identifier's
type, who verified the requester's identity and the customer's pseudonymous key, never the identifier or the
answer. Logs and the returned `AccessResult` carry ids and counts only.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from core import faults, files, render
from core.erasure import RECORDS, RawTable, clean_id
from core.pseudonym import macro_sql, pseudonymous_key
from core.settings import Settings
from core.sql import ident as _ident
from core.sql import qualified as _table
from core.sql import relation_exists as _relation_exists
from core.vault import open_vault
from privacy import requests
from privacy.config import (
    NOT_PERSONAL,
    DataMap,
    Dataset,
    Disclosures,
    Register,
    load_data_map,
    load_disclosures,
    load_register,
    record_type,
)
from privacy.notice import load_labels, period_words, translated

log = logging.getLogger(__name__)

TEMPLATE = "privacy/templates/access.html.j2"
LABELS = Path(__file__).resolve().parent / "templates" / "access_labels.yml"
LANGUAGES = ("fi", "en")
CUSTOMERS = "staging.stg_crm__customers"  # where a person is found (disclosures.yml: `customers_where`)
PERSON_ID = "hetu"  # the column that identifies a natural person across customer records
DISCLOSURES = "intermediate.int_privacy__disclosures"  # the disclosure register (vault)
JSON_NAME = "access.json"
VERTICAL_MAX = 3  # a dataset with at most this many records is shown one column per record

# The identifier types and how staging cleans each column (clean_string, clean_code, clean_email).
_TRIM = "nullif(trim(cast(? as varchar), ' ' || chr(9) || chr(10) || chr(13) || chr(160)), '')"
NORMALISE = {"customer_id": _TRIM, "hetu": f"upper({_TRIM})", "email": f"lower({_TRIM})"}
IDENTIFIER_TYPES = tuple(NORMALISE)

class AccessError(RuntimeError):
    """The request cannot be answered (no vault, nothing built yet, invalid request)."""


class SubjectNotFound(AccessError):
    """No customer matches the identifier. The request is logged with found = false."""

    def __init__(self, message: str, request_id: str):
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class AccessResult:
    request_id: str
    directory: Path
    json_path: Path
    html_paths: dict[str, Path]  # language -> page
    customer_records: int
    rows_by_dataset: dict[str, int]  # table -> rows of this person (0: none)

    @property
    def datasets(self) -> int:
        """Datasets holding at least one row about the person."""
        return sum(1 for n in self.rows_by_dataset.values() if n)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_dataset.values())


# --- SQL generated from the data map ---------------------------------------------------------------------
def subject_sql(data_map: DataMap, dataset: Dataset, columns: list[str] | None = None) -> str:
    """Select `columns` (default: every data-map column) of the dataset's rows that belong to the customers
    in the list parameter `$subjects`: through its customer-id column, or through the `via` dataset's."""
    select = ", ".join(f"t.{_ident(c)}" for c in (columns or list(dataset.columns)))
    if dataset.subject_column:
        where = f"t.{_ident(dataset.subject_column)} in (select unnest($subjects))"
    else:
        via_table, key = dataset.via
        via = data_map.datasets[via_table]
        where = (f"t.{_ident(key)} in (select v.{_ident(key)} from {_table(via_table)} as v "
                 f"where v.{_ident(via.subject_column)} in (select unnest($subjects)))")
    return f"select {select} from {_table(dataset.table)} as t where {where} order by all"


# --- history: the earlier values of a snapshot entity's records -----------------------------------------------
EMAIL = "user.contact.email"  # the category whose values staging lower-cases (clean_email)


@dataclass(frozen=True)
class History:
    """Where a dataset's history is: its raw table of versions, and the raw column behind each column shown."""
    raw: RawTable
    columns: dict[str, str]  # dataset column -> SQL of its value in a raw version

    @property
    def key(self) -> str:
        """The dataset's column holding the record id: the raw key (single), as staging names it."""
        return self.raw.key[0]


def history_columns(dataset: Dataset, raw: RawTable) -> dict[str, str]:
    """The dataset's personal columns whose values a raw version holds (the data map's `raw:` names the raw
    column where it differs), each raw column once, as SQL over a version: text trimmed as staging trims it
    (empty: none), emails lower-cased as staging does; other values as typed. Left out: the record's key and
    customer (the same in every version shown), columns not made from the export (an objection's date), and
    a second column made from the same raw column: the phone is shown once, under `phone_raw` (what the
    export held), not normalised to E.164 as `phone` is."""
    by_raw: dict[str, str] = {}
    explicit = set(dataset.raw_columns)
    for column in dataset.personal_columns:
        source = dataset.raw_columns.get(column, column)
        if column in (dataset.subject_column, *raw.key) or source not in raw.columns:
            continue
        if source not in by_raw or (column in explicit and by_raw[source] not in explicit):
            by_raw[source] = column
    out = {}
    for column in dataset.personal_columns:  # in the data map's order
        source = dataset.raw_columns.get(column, column)
        if by_raw.get(source) != column:
            continue
        value = _ident(source)
        if raw.columns[source].upper() == "VARCHAR":
            value = clean_id(value)
            if dataset.columns[column].startswith(EMAIL):
                value = f"lower({value})"
        out[column] = value
    return out


def history_sources(data_map: DataMap, raw_tables: Iterable[RawTable]) -> dict[str, History]:
    """dataset table -> where its history is, for every dataset made from a versioned raw table."""
    by_staging = {r.staging_model: r for r in raw_tables if r.versioned}
    out = {}
    for table, dataset in data_map.datasets.items():
        raw = by_staging.get(table)
        if raw is None or len(raw.key) != 1 or raw.key[0] not in dataset.columns:
            continue
        out[table] = History(raw, history_columns(dataset, raw))
    return out


def _history(con: duckdb.DuckDBPyConnection, source: History, dataset: Dataset, subjects: list[str],
             records: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """record id -> column -> its earlier values, oldest first: `{value, valid_from, valid_to}` per run of
    consecutive closed versions holding the same value, when it differs from the record's latest version
    (current, or the last one of a record deleted at the source) and is not empty. Only versions of the
    person's own (their customer ids; a record once another customer's shows only its own part)."""
    if not records or not source.columns:
        return {}
    key = clean_id(_ident(source.key))
    subject = clean_id(_ident(dataset.subject_column)) if dataset.subject_column else key
    values = ", ".join(f"{sql} as {_ident(column)}" for column, sql in source.columns.items())
    rows = _fetch(con, f"""
        select {key} as _record, {subject} in (select unnest($subjects)) as _own, _valid_from, _valid_to,
            _is_latest, {values}
        from {source.raw.table}
        where {key} in (select unnest($records))
        order by _record, _valid_from""", {"subjects": subjects, "records": records})
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for record in dict.fromkeys(r["_record"] for r in rows):
        versions = [r for r in rows if r["_record"] == record]
        latest = next((v for v in versions if v["_is_latest"]), versions[-1])
        history = {}
        for column in source.columns:
            runs: list[dict[str, Any]] = []
            for version in versions:
                if version is latest or not version["_own"] or version["_valid_to"] is None:
                    continue
                value = version[column]
                if runs and runs[-1]["value"] == value and runs[-1]["valid_to"] == version["_valid_from"]:
                    runs[-1]["valid_to"] = version["_valid_to"]
                else:
                    runs.append({"value": value, "valid_from": version["_valid_from"],
                                 "valid_to": version["_valid_to"]})
            earlier = [run for run in runs if run["value"] is not None and run["value"] != latest[column]]
            if earlier:
                history[column] = earlier
        out[record] = history
    return out


# --- finding the person ----------------------------------------------------------------------------------
def find_customers(con: duckdb.DuckDBPyConnection, identifier_type: str, value: str) -> tuple[list[str], str]:
    """(customer ids of the person, outcome): outcome `found`, `not_found` or `ambiguous`."""
    if identifier_type not in NORMALISE:
        raise AccessError(f"identifier type must be one of {', '.join(IDENTIFIER_TYPES)}")
    normalised = con.execute(f"select {NORMALISE[identifier_type]}", [value]).fetchone()[0]
    if normalised is None:
        return [], "not_found"
    matched = con.execute(f"select customer_id, {_ident(PERSON_ID)} from {_table(CUSTOMERS)} "
                          f"where {_ident(identifier_type)} = ? order by customer_id", [normalised]).fetchall()
    if not matched:
        return [], "not_found"
    persons = {person for _, person in matched}
    if len(matched) > 1 and (len(persons) > 1 or None in persons):
        return [], "ambiguous"  # e.g. one email address used by two people
    ids = {customer_id for customer_id, _ in matched}
    person = next(iter(persons))
    if person is not None:  # the same person registered more than once
        ids |= {r[0] for r in con.execute(f"select customer_id from {_table(CUSTOMERS)} "
                                          f"where {_ident(PERSON_ID)} = ?", [person]).fetchall()}
    primary = matched[0][0]
    return [primary, *sorted(ids - {primary})], "found"


# --- assembling the package ------------------------------------------------------------------------------
def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict | list | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    json_columns = {i for i, d in enumerate(cursor.description) if str(d[1]).upper() == "JSON"}
    rows = []
    for row in cursor.fetchall():
        rows.append({name: (json.loads(v) if i in json_columns and isinstance(v, str) else v)
                     for i, (name, v) in enumerate(zip(names, row, strict=True))})
    return rows


def _retention_rules(policy, table: str) -> list[dict[str, Any]]:
    events = load_labels().clock_events  # the notice's words: both documents state retention alike
    out = []
    for rule in policy.rules:
        for cover in rule.covers:
            if cover.table == table:
                event = events.get(rule.clock_starts) or {lang: rule.clock_starts for lang in LANGUAGES}
                out.append({"rule_id": rule.id, "category": rule.category, "period": str(rule.period),
                            "period_text": {lang: period_words(rule.period, lang) for lang in LANGUAGES},
                            "clock_starts": rule.clock_starts,
                            "clock_starts_text": event,
                            "legal_basis": rule.legal_basis, "description": rule.description,
                            "columns": list(cover.columns)})
    return out


def _disclosures(con: duckdb.DuckDBPyConnection, disclosures: Disclosures, subjects: list[str]
                 ) -> list[dict[str, Any]]:
    """Every disclosure of this person's data, from the disclosure register the build made in the vault
    (intermediate.int_privacy__disclosures, privacy/disclosures.py): recorded ones and standing ones."""
    rows = _fetch(con, f"""
        select flow_id, rule_id, flow_kind, recipient, recipient_country, disclosed_on, record_id, fields,
               safeguard, is_outside_eea
        from {DISCLOSURES}
        where customer_id in (select unnest($subjects)) and recipient is not null""", {"subjects": subjects})
    flows = {flow.id: flow for flow in disclosures.flows}
    out = []
    for row in rows:
        standing = row["flow_kind"] == "standing"
        out.append({"flow": row["flow_id"], "rule": row["rule_id"],
                    "rule_title": disclosures.rules[row["rule_id"]].title, "dataset": flows[row["flow_id"]].dataset,
                    "fields": row["fields"], "recipient": row["recipient"], "country": row["recipient_country"],
                    "date": None if standing else row["disclosed_on"], "since": row["disclosed_on"] if standing
                    else None, "standing": standing, "record": None if standing else row["record_id"],
                    "safeguard": row["safeguard"],
                    "in_eea": None if row["is_outside_eea"] is None else not row["is_outside_eea"]})
    out.sort(key=lambda d: (not d["standing"], d["date"] or d["since"] or date.min, d["recipient"]))
    return out


def _record_retention(records: dict[tuple[str, str], dict], dataset: Dataset, values: dict[str, Any]
                      ) -> dict[str, Any] | None:
    """The int_retention__records entry of a row: its own record (id = first column, or first/second as an
    invoice line's), else the record of the row it belongs to through `via` (a ticket's for its messages)."""
    columns = list(dataset.columns)
    own = record_type(dataset.table)
    candidates = [str(values[columns[0]])]
    if len(columns) > 1:
        candidates.append(f"{values[columns[0]]}/{values[columns[1]]}")
    for candidate in candidates:
        if (own, candidate) in records:
            return records[(own, candidate)]
    if dataset.via:
        via_table, key = dataset.via
        return records.get((record_type(via_table), str(values[key])))
    return None


def assemble(con: duckdb.DuckDBPyConnection, subjects: list[str], *, data_map: DataMap, disclosures: Disclosures,
             register: Register, policy, raw_tables: Iterable[RawTable]) -> dict[str, Any]:
    """The access package of the person with these customer ids (a dict of Python values); `raw_tables`: the
    ingest's raw tables (the versioned ones give the datasets made from them their history)."""
    missing = [t for t in [*data_map.datasets, CUSTOMERS] if not _relation_exists(con, t)]
    if missing:
        raise AccessError(f"the vault has no {', '.join(missing)}: run `warehouse build` first")
    held = {(s + "." + t, c) for s, t, c in con.execute(
        "select schema_name, table_name, column_name from duckdb_columns() where database_name = current_database()"
    ).fetchall()}
    missing = [f"{d.table}.{c}" for d in data_map.datasets.values() for c in d.columns if (d.table, c) not in held]
    if missing:
        raise AccessError(f"the data map names columns the vault does not have ({', '.join(missing)}): "
                          "rebuild with `warehouse build`")
    records: dict[tuple[str, str], dict] = {}
    if _relation_exists(con, RECORDS):
        for r in _fetch(con, f"""
                select record_type, record_id, category, rule_id, clock_event, clock_started_on, expires_on,
                       status, hold_reason, as_of_date
                from {_table(RECORDS)} where customer_id in (select unnest($subjects))""", {"subjects": subjects}):
            records[(r.pop("record_type"), r.pop("record_id"))] = r
    data_as_of = con.execute("select max(export_date) from ingest.files where status = 'loaded'").fetchone()[0]
    given = _disclosures(con, disclosures, subjects)
    sources = history_sources(data_map, raw_tables)
    datasets = []
    for dataset in data_map.datasets.values():
        rows = []
        for values in _fetch(con, subject_sql(data_map, dataset), {"subjects": subjects}):
            rows.append({"values": values, "retention": _record_retention(records, dataset, values)})
        source = sources.get(dataset.table)
        if source is not None:  # every row of a versioned dataset has its history, empty when nothing changed
            held = _history(con, source, dataset, subjects, [str(r["values"][source.key]) for r in rows])
            for row in rows:
                row["history"] = held.get(str(row["values"][source.key]), {})
        columns = [{"name": c, "category": category, "personal": category != NOT_PERSONAL,
                    "label": column_label(c), "category_label": category_label(category)}
                   for c, category in dataset.columns.items()]
        statuses: dict[str, int] = {}
        for row in rows:
            if row["retention"]:
                statuses[row["retention"]["status"]] = statuses.get(row["retention"]["status"], 0) + 1
        expiries = [r["retention"]["expires_on"] for r in rows if r["retention"] and r["retention"]["expires_on"]]
        recipients = []
        if rows:
            for item in given:
                mine = [f.rpartition(".")[2] for f in item["fields"] if f.rpartition(".")[0] == dataset.table]
                if mine or item["dataset"] == dataset.table:  # what was sent, or where the disclosure is recorded
                    recipients.append({k: item[k] for k in ("flow", "rule", "recipient", "country", "in_eea",
                                                             "date", "since", "standing")} | {"fields": mine})
        datasets.append({
            "table": dataset.table,
            "title": dataset.title,
            "rows_count": len(rows),
            "columns": columns,
            "purposes": [{"use": use, **register.purposes[use]} for use in dataset.purposes],
            "source": {"id": dataset.source, **register.sources[dataset.source]},
            "recipients": recipients,
            "retention": {"rules": _retention_rules(policy, dataset.table), "statuses": statuses,
                          "first_expiry": min(expiries, default=None), "last_expiry": max(expiries, default=None)},
            "history_columns": list(source.columns) if source else [],
            "rows": rows,
        })
    return {
        "package": "subject access (GDPR art. 15)",
        "controller": register.controller,
        "register_name": register.register_name,
        "contact": register.contact,
        "rights": register.rights,
        "requests_to": register.requests_to,
        "data_map_version": data_map.version,
        "retention_policy_version": policy.version,
        "data_as_of": data_as_of,
        "customer_ids": subjects,
        "datasets": datasets,
        "disclosures": given,
    }


# --- the request ------------------------------------------------------------------------------------------
def subject_access(settings: Settings, secret: bytes, policy, identifier_type: str, value: str, *, verified_by: str,
                   raw_tables: Iterable[RawTable], request_ref: str | None = None,
                   now: datetime | None = None) -> AccessResult:
    """Answer one access request: find the person, write the package, log the request (found or not).
    `raw_tables`: the ingest configuration's raw tables (where the earlier values of its snapshots are).

    Raises SubjectNotFound (logged, found = false) when no customer, or no single person, matches.
    """
    if identifier_type not in NORMALISE:
        raise AccessError(f"identifier type must be one of {', '.join(IDENTIFIER_TYPES)}")
    if not (verified_by or "").strip():
        raise AccessError("name who verified the requester's identity (--verified-by)")
    home = settings.home
    if not home.vault.exists():
        raise AccessError(f"no vault at {home.vault}: run `warehouse ingest` and `warehouse build` first")
    requested_at = (now or datetime.now(UTC)).astimezone(UTC)
    request_id = requests.request_id("access", requested_at)
    data_map = load_data_map(settings.privacy_config)
    disclosures = load_disclosures(settings.privacy_config, data_map=data_map)
    register = load_register(settings.privacy_config)

    con = open_vault(settings, read_only=True)
    try:
        con.execute(f"set timezone = '{render.LOCAL_ZONE}'")  # instants are shown as the customer's clock shows them
        con.execute(macro_sql(secret))  # int_retention__records calls it
        subjects, outcome = find_customers(con, identifier_type, value)
        keys = [pseudonymous_key(secret, s) for s in subjects]

        def log_request(outcome: str, rows_by_dataset: dict[str, int]) -> None:
            requests.log_request(settings, request_id, requested_at, identifier_type, verified_by, request_ref,
                                 keys, outcome, sum(1 for n in rows_by_dataset.values() if n),
                                 sum(rows_by_dataset.values()))

        try:
            package = assemble(con, subjects, data_map=data_map, disclosures=disclosures, register=register,
                               policy=policy, raw_tables=raw_tables) if subjects else None
        except AccessError:
            con.close()
            log_request("error", {})
            raise
    finally:
        con.close()

    if package is None:
        log_request(outcome, {})
        log.info("subject access %s by %s: %s", request_id, identifier_type, outcome.replace("_", " "))
        reason = ("the identifier matches customer records of more than one person: use the customer id or the "
                  "HETU" if outcome == "ambiguous" else f"no customer matches the given {identifier_type}")
        raise SubjectNotFound(f"{reason} (request {request_id} logged)", request_id)

    package |= {"request_id": request_id, "requested_at": requested_at, "request_ref": request_ref,
                "identifier_type": identifier_type}
    rows_by_dataset = {d["table"]: d["rows_count"] for d in package["datasets"]}
    # Written aside, logged, then renamed into place: an unlogged answer never stays behind (a killed run
    # leaves at most a temporary folder, which the next request removes).
    files.remove_strays(files.private_folder(home.access))
    directory = home.access / request_id
    written = write_package(package, files.temp_path(directory))
    faults.point("access.after_package")
    try:
        log_request(outcome, rows_by_dataset)
    except BaseException:
        shutil.rmtree(written, ignore_errors=True)
        raise
    written.rename(directory)
    files.sync_folder(home.access)
    paths = {kind: directory / path.name for kind, path in package_files(written).items()}
    result = AccessResult(request_id, directory, paths["json"], {lang: paths[lang] for lang in LANGUAGES},
                          len(subjects), rows_by_dataset)
    log.info("subject access %s by %s: %s customer record(s), %s datasets, %s rows; package %s", request_id,
             identifier_type, result.customer_records, result.datasets, result.rows, directory)
    return result


def example_subject(con: duckdb.DuckDBPyConnection) -> str | None:
    """A customer whose access package shows the most: with a HETU, a key handover and a collection case if
    there is one (disclosures to both kinds of recipient). For the demo."""
    row = con.execute(f"""
        select customers.customer_id
        from {CUSTOMERS} as customers
        left join staging.stg_services__key_handovers as keys using (customer_id)
        left join staging.stg_billing__collection_cases as cases using (customer_id)
        where customers.hetu is not null
        group by customers.customer_id
        order by
            (count(distinct keys.handover_id) > 0)::int + (count(distinct cases.case_id) > 0)::int desc,
            customers.customer_id
        limit 1""").fetchone()
    return row[0] if row else None


def remove_packages(settings: Settings, con: duckdb.DuckDBPyConnection, period=None, *,
                    now: datetime | None = None) -> int:
    """Delete the access packages of people whose data was erased, and those older than `period` (the retention
    policy's `request_answers`: a retention.policy.Period, None to keep them); the request log stays.
    How many were removed."""
    folder = settings.home.access
    if not folder.is_dir():
        return 0
    files.remove_strays(folder)
    today = (now or datetime.now(UTC)).astimezone(render.LOCAL_TZ).date()
    rows = con.execute("""
        select request_id,
            exists (select 1 from retention.erasure_ledger as ledger
                    where ledger.record_type = 'customer' and list_contains(requests.subject_keys, ledger.record_key))
                as erased,
            cast(timezone(?, requests.requested_at) as date) as requested_on
        from privacy.access_requests as requests
        where requests.found""", [render.LOCAL_ZONE]).fetchall()
    removed = 0
    for request_id, erased, requested_on in rows:
        directory = folder / request_id
        # kept through requested_on + period, as the retention rules count
        expired = period is not None and period.add_to(requested_on) < today
        # an erased person's access package holds their data; an erasure answer holds none (counts only)
        if directory.is_dir() and ((erased and (directory / JSON_NAME).exists()) or expired):
            shutil.rmtree(directory)
            removed += 1
    if removed:
        log.info("removed %s access package(s): their people were erased or their period ended", removed)
    return removed


# --- output ----------------------------------------------------------------------------------------------
def package_files(directory: Path) -> dict[str, Path]:
    return {"json": directory / JSON_NAME, **{lang: directory / f"access.{lang}.html" for lang in LANGUAGES}}


def write_package(package: dict[str, Any], directory: Path) -> Path:
    """access.json and one HTML page per language into a new folder, owner-only (folders 0700, files 0600)."""
    files.private_folder(directory.parent)
    directory.mkdir(mode=0o700)
    paths = package_files(directory)
    files.write_text(paths["json"], json.dumps(package, indent=2, ensure_ascii=False, default=_json_default) + "\n")
    for lang in LANGUAGES:
        files.write_text(paths[lang], render_html(package, lang))
    return directory


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact: 12.30 stays 12.30
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def labels(section: str) -> render.Labels:
    """A section of access_labels.yml: `page`, `statuses`, `hold_reasons`, `categories` or `columns`."""
    return render.load_labels(LABELS, section)


def column_label(column: str) -> dict[str, str]:
    return labels("columns").get(column) or {lang: column for lang in LANGUAGES}


def category_label(category: str) -> dict[str, str]:
    """The category's label, else its nearest labelled parent's (user.contact.address.street -> …address)."""
    known = labels("categories")
    key = category
    while key and key not in known:
        key = key.rpartition(".")[0]
    return known[key] if key else {lang: category for lang in LANGUAGES}


def render_html(package: dict[str, Any], lang: str) -> str:
    page = labels("page").in_lang(lang)
    controller = package["controller"]["name"]
    return render.render(
        TEMPLATE, lang=lang, p=package, L=page, controller=controller,
        statuses=labels("statuses"), hold_reasons=labels("hold_reasons"),
        lead=page["lead"].format(controller=controller),
        no_disclosures=page["no_disclosures"].format(controller=controller),
        footer=page["footer"].format(json_name=JSON_NAME, request_id=package["request_id"]),
        layout={d["table"]: _layout(d, lang) for d in package["datasets"]},
        disclosed_fields=[[column_label(field.rpartition(".")[2])[lang] for field in item["fields"]]
                          for item in package["disclosures"]],
        vertical_max=VERTICAL_MAX)


def _layout(dataset: dict[str, Any], lang: str) -> dict[str, Any]:
    """How the page shows a dataset: columns grouped by category (in order of first appearance, processing
    records last), recipients grouped by recipient, retention rules as unique sentences."""
    columns = dataset["columns"]
    order: list[str] = []
    for column in columns:
        if column["category"] not in order:
            order.append(column["category"])
    order.sort(key=lambda c: c == NOT_PERSONAL)
    groups = [{"category": c, "label": category_label(c), "personal": c != NOT_PERSONAL,
               "columns": [col for col in columns if col["category"] == c]} for c in order]
    recipients: dict[tuple[str, str], dict[str, Any]] = {}
    for item in dataset["recipients"]:
        entry = recipients.setdefault((item["recipient"], item["flow"]), {
            "recipient": item["recipient"], "country": item["country"], "in_eea": item["in_eea"],
            "standing": item["standing"], "since": item["since"], "dates": [], "fields": []})
        if item["date"] and item["date"] not in entry["dates"]:
            entry["dates"].append(item["date"])
        for column in item["fields"]:
            label = column_label(column)[lang]
            if label not in entry["fields"]:
                entry["fields"].append(label)
    retention: list[dict[str, str]] = []
    for rule in dataset["retention"]["rules"]:
        text = f"{rule['period_text'][lang]} {rule['clock_starts_text'][lang]}"
        basis = translated(rule["legal_basis"], lang)
        if all((r["text"], r["legal_basis"]) != (text, basis) for r in retention):
            retention.append({"text": text, "legal_basis": basis})
    return {"groups": groups, "columns": [col for g in groups for col in g["columns"]],
            "labels": {col["name"]: col["label"] for col in columns},
            "recipients": sorted(recipients.values(), key=lambda r: (not r["standing"], r["recipient"])),
            "retention": retention}
