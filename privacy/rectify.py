"""Rectification (privacy notice § 9, GDPR art. 16 and 19): correct a customer's data, keep an audit trail, and
name the recipients who received the old value.

`rectify()` records one correction in the vault table `privacy.rectifications` (the audit trail: request
reference, who recorded it, the old and the new value in clear; the vault is encrypted). The staging models of
the rectifiable datasets apply the corrections on top of the exports (macro `apply_rectifications`,
macros/privacy/rectification.sql): a corrected column shows the latest correction's value while the export
still carries the value it corrected (`source_value`), so a later fix or change at the source wins. The
raw layer keeps the exports as they came.

Only the data map's `rectifiable` columns of a dataset can be corrected. The new value is cleaned as staging
cleans the export (the same SQL expressions, from macros/staging/cleaning.sql); a phone number that does not
normalise, an email or a country code that is not one, is refused.

The recipients to tell (art. 19) come from the disclosure register in the vault
(intermediate.int_privacy__disclosures): the customer's disclosures whose fields include the corrected
column. Nothing here prints or logs a value: field names, recipients, dates and counts only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

import duckdb

from core.db import transaction
from core.home import PROJECT_DIR
from core.pseudonym import pseudonymous_key
from core.reference import country_codes
from core.settings import Settings
from core.sql import relation_exists as _has_relation
from core.vault import open_vault
from privacy.config import DataMap, load_data_map, load_disclosures

log = logging.getLogger(__name__)

CUSTOMERS = "staging.stg_crm__customers"
REGISTER = "intermediate.int_privacy__disclosures"
CLEANING_MACROS = PROJECT_DIR / "macros" / "staging" / "cleaning.sql"

# How staging cleans a column, by its data-map category (the macros of macros/staging/cleaning.sql); other
# columns are clean_string. tests/test_rectify.py checks this against the staging models.
CLEANERS = {
    "user.contact.phone_number": "normalise_phone_fi",
    "user.contact.email": "clean_email",
    "user.contact.address.country": "clean_code",
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")  # as the quality checks' q_email


class RectifyError(ValueError):
    """The correction cannot be recorded (the message names why, never a value)."""


@dataclass(frozen=True)
class Notice:
    """A recipient that received the corrected field before: to be told of the correction (art. 19)."""
    recipient: str | None
    country: str | None
    flow_id: str
    rule_id: str
    disclosures: int
    first_on: date | None
    last_on: date | None


@dataclass
class Rectification:
    id: int
    dataset: str
    column: str
    rows: int  # staging rows the correction applies to now
    recipients: list[Notice] = field(default_factory=list)
    has_register: bool = True  # false: no disclosure register in the vault yet (build first)

    @property
    def field(self) -> str:
        return f"{self.dataset}.{self.column}"


def row_key(data_map: DataMap, dataset: str) -> str:
    """The column unique per row of a dataset: its `user.unique_id` column other than the customer id (a
    handover id), else the customer id (one row per customer)."""
    entry = data_map.datasets[dataset]
    ids = [c for c, category in entry.columns.items() if category == "user.unique_id" and c != entry.subject_column]
    return ids[0] if ids else entry.subject_column


@cache
def _cleaning_sql(macro: str) -> str:
    """The staging cleaning expression `macro(?)`, rendered from macros/staging/cleaning.sql with plain Jinja."""
    import jinja2

    module = jinja2.Environment().from_string(CLEANING_MACROS.read_text(encoding="utf-8")).module
    return str(getattr(module, macro)("cast(? as varchar)"))


def clean_value(con: duckdb.DuckDBPyConnection, data_map: DataMap, dataset: str, column: str,
                value: str | None) -> str | None:
    """The value as staging would show it from an export; refused if staging would drop or distrust it."""
    category = data_map.datasets[dataset].columns[column]
    macro = CLEANERS.get(category, "clean_string")
    cleaned = con.execute(f"select {_cleaning_sql(macro)}", [value]).fetchone()[0]
    blank = value is None or not value.strip()
    if cleaned is None and not blank:
        raise RectifyError(f"{column}: the value is not a valid {category.rsplit('.', 1)[-1].replace('_', ' ')} "
                           "(staging would drop it)")
    if cleaned is not None and category == "user.contact.email" and not _EMAIL.fullmatch(cleaned):
        raise RectifyError(f"{column}: the value is not an email address")
    if cleaned is not None and category == "user.contact.address.country" and cleaned not in country_codes():
        raise RectifyError(f"{column}: the value is not an ISO 3166-1 alpha-2 country code")
    return cleaned


def _erased(con: duckdb.DuckDBPyConnection, secret: bytes | None, customer_id: str) -> bool:
    """The customer is in the erasure ledger: a correction must not bring data back."""
    if secret is None:
        return False
    record_key = pseudonymous_key(secret, customer_id)
    return bool(con.execute("select count(*) from retention.erasure_ledger where record_type = 'customer' "
                            "and record_key = ?", [record_key]).fetchone()[0])


def rectify(settings: Settings, secret: bytes | None, customer_id: str, column: str, value: str | None, *,
            request_ref: str, recorded_by: str, dataset: str = CUSTOMERS, record_id: str | None = None,
            now: datetime | None = None) -> Rectification:
    """Record one correction and return it with the recipients of the old value. Staging (views) applies it
    at once; the marts follow at the next build. `secret`: the pseudonym secret (None before the first build)."""
    config = settings.privacy_config
    data_map = load_data_map(config)
    if dataset not in data_map.datasets:
        raise RectifyError(f"{dataset} is not a dataset of the data map")
    entry = data_map.datasets[dataset]
    if column not in entry.rectifiable:
        allowed = ", ".join(entry.rectifiable) or "none"
        raise RectifyError(f"{column} of {dataset} cannot be rectified: the data map's rectifiable columns of "
                           f"this dataset are: {allowed}")
    if not entry.subject_column:
        raise RectifyError(f"{dataset} does not hold the customer id: it cannot be rectified by customer")
    if not (request_ref or "").strip() or not (recorded_by or "").strip():
        raise RectifyError("a correction needs the request reference and who recorded it")
    if not settings.home.vault.exists():
        raise RectifyError(f"no vault at {settings.home.vault}: run `warehouse ingest` and `warehouse build` first")
    key, subject = row_key(data_map, dataset), entry.subject_column
    con = open_vault(settings)
    try:
        if not _has_relation(con, dataset) or "rectified_columns" not in {
                r[0] for r in con.execute(f"select column_name from (describe {dataset})").fetchall()}:
            raise RectifyError(f"{dataset} does not apply corrections yet: run `warehouse build` first")
        if _erased(con, secret, customer_id):
            raise RectifyError("this customer's data was erased: nothing to rectify")
        new_value = clean_value(con, data_map, dataset, column, value)
        rows = con.execute(f"""
            select cast({key} as varchar), cast({column} as varchar), list_contains(rectified_columns, ?)
            from {dataset}
            where {subject} = ? and (? is null or cast({key} as varchar) = ?)""",
            [column, customer_id, record_id, record_id]).fetchall()
        if not rows:
            raise RectifyError(f"no such customer{' row' if record_id else ''} in {dataset}")
        states = set()
        for key_value, current, is_rectified in rows:
            source = current
            if is_rectified:  # the value comes from an earlier correction: keep the export's value it overrode
                source = con.execute("""
                    select source_value from privacy.rectifications
                    where dataset = ? and customer_id = ? and column_name = ?
                        and (record_id is null or record_id = ?) and new_value is not distinct from ?
                    order by id desc limit 1""", [dataset, customer_id, column, key_value, current]).fetchone()[0]
            states.add((current, source))
        if len(states) > 1:
            raise RectifyError(f"the customer has {len(rows)} rows in {dataset} with different values of {column}: "
                               f"name the one to correct with its {key} (--record-id)")
        (old_value, source_value), = states
        if old_value == new_value:
            raise RectifyError(f"{column} already has that value: nothing to rectify")
        with transaction(con):
            number = con.execute("select coalesce(max(id), 0) + 1 from privacy.rectifications").fetchone()[0]
            con.execute("insert into privacy.rectifications values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [number, now or datetime.now().astimezone(), request_ref.strip(), recorded_by.strip(),
                         customer_id, dataset, column, record_id, source_value, old_value, new_value])
        applied = con.execute(f"""
            select count(*) from {dataset}
            where {subject} = ? and (? is null or cast({key} as varchar) = ?) and list_contains(rectified_columns, ?)
            """, [customer_id, record_id, record_id, column]).fetchone()[0]
        result = Rectification(number, dataset, column, applied)
        result.has_register = _has_relation(con, REGISTER)
        if result.has_register:
            result.recipients = recipients(con, customer_id, dataset, column, record_id, config=config)
    finally:
        con.close()
    log.info("rectification %s recorded: %s.%s, %s staging rows, %s recipients to tell", number, dataset, column,
             applied, len(result.recipients))
    return result


def recipients(con: duckdb.DuckDBPyConnection, customer_id: str, dataset: str, column: str,
               record_id: str | None = None, *, config: Path) -> list[Notice]:
    """Who received `dataset.column` of this customer, per recipient and flow, from the disclosure register.

    A correction of one row (`record_id`) concerns the disclosures of that row only, where a flow reads the
    corrected dataset itself; disclosures by other flows (e.g. a collection agency receiving the name from the
    customer register) concern the customer's data as a whole."""
    same_dataset = [f.id for f in load_disclosures(config, load_data_map(config)).flows
                    if f.dataset == dataset]
    rows = con.execute(f"""
        select recipient, recipient_country, flow_id, rule_id, count(*), min(disclosed_on), max(disclosed_on)
        from {REGISTER}
        where customer_id = ? and list_contains(fields, ?)
            and (? is null or not list_contains(?, flow_id) or record_id = ?)
        group by all
        order by min(disclosed_on) nulls last, recipient, flow_id""",
        [customer_id, f"{dataset}.{column}", record_id, same_dataset, record_id]).fetchall()
    return [Notice(*row) for row in rows]
