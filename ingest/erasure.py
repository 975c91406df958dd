"""Erasure by the ledger: what deleting or anonymising a record means in each raw table, and in the rejects.

`retention.erasure_ledger` (vault) lists every record the retention enforcement erased, by record type and
pseudonymous key (HMAC of the record id, the `record_key` of privacy.retention_status), never by the id or
the data. Both the enforcement (over every version in raw) and the ingest (over the rows of the file it is
loading) run the same statements from here, so an export that still carries an erased record cannot bring
it back. The statements call `pseudonymous_key`, the macro of warehouse/pseudonym.py, which the caller
defines on its connection.

A row can also land in `ingest.rejects`, whole, as the raw text of a line the ingest could not read. Such a
line is matched field by field (`erase_rejects`): any field of it, or two neighbouring fields joined by `/`
(an invoice line's `invoice_id/line_no`), whose key is in the ledger, of any record type, makes it a line of
an erased record. It keeps its load, file, line, column and reason (the accounting of its file still holds)
and loses its raw text and the value a reason quotes; its record key too when the record was deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

LEDGER_DDL = """
create schema if not exists retention;
create table if not exists retention.erasure_ledger (
    record_key varchar not null,
    record_type varchar not null,
    category varchar,
    rule_id varchar,
    action varchar not null,
    erased_on date not null,
    primary key (record_type, record_key)
);
"""

# Identifying fields of a customer; the customer number, type, dates and consents stay (invoices, which
# accounting law keeps longer, still refer to the customer number).
CUSTOMER_FIELDS = ("first_name", "last_name", "hetu", "email", "phone", "street_address", "postal_code", "city",
                   "billing_street_address", "billing_postal_code", "billing_city", "einvoice_address")


TRIMMED = "' ' || chr(9) || chr(10) || chr(13) || chr(160)"  # what staging's `clean_string` trims
REJECTS = "ingest.rejects"
# What a rejected line is cut at into fields: the CSV delimiters in use (`;` by the contract, `,`, `|`, tab),
# quotes, and JSON's punctuation, so a JSON line gives its keys and values. Cutting a free-text field into
# more pieces only adds candidates; an id holding one of these characters would not be found.
FIELD_SEPARATORS = r"""[;,|\t"'{}\[\]:]"""


def _id(column: str) -> str:
    """A raw id cleaned as staging's `clean_string` does: the key must be the one the retention models hash."""
    return f"nullif(trim({column}, {TRIMMED}), '')"


@dataclass(frozen=True)
class TableErasure:
    table: str
    system: str
    # record_type -> SQL expression of that record's id in this table, for the rows it deletes / anonymises
    deletes: dict[str, str]
    anonymises: dict[str, str]
    fields: tuple[str, ...] = ()  # what anonymising nulls


TABLES = (
    TableErasure("raw_crm.customers", "crm", {}, {"customer": _id("customer_id")}, CUSTOMER_FIELDS),
    TableErasure("raw_crm.tickets", "crm", {"ticket": _id("ticket_id")}, {}),
    TableErasure("raw_services.services", "services", {},
                 {"customer": _id("customer_id"), "service": _id("service_id")}, ("username", "identifier")),
    TableErasure("raw_services.key_handovers", "services", {"key_handover": _id("handover_id")},
                 {"customer": _id("customer_id")}, ("holder_first_name", "holder_last_name", "holder_phone")),
    TableErasure("raw_billing.invoices", "billing", {"invoice": _id("invoice_id")}, {}),
    TableErasure("raw_billing.invoice_lines", "billing",
                 {"invoice_line": _id("invoice_id") + " || '/' || line_no"}, {}),
    TableErasure("raw_billing.payments", "billing", {"payment": _id("payment_id")}, {}),
    TableErasure("raw_billing.collection_cases", "billing", {"collection_case": _id("case_id")}, {}),
    # The rectification audit trail (privacy/rectify.py) keeps corrected values: they go with the record.
    TableErasure("privacy.rectifications", "privacy", {},
                 {"customer": _id("customer_id"), "key_handover": _id("record_id")},
                 ("source_value", "old_value", "new_value")),
)

# The action per record type (customer and service data are anonymised: the vouchers that refer to them stay)
ACTIONS = {"customer": "anonymise", "service": "anonymise", "invoice": "delete", "invoice_line": "delete",
           "payment": "delete", "collection_case": "delete", "ticket": "delete", "key_handover": "delete"}
SYSTEMS = {"customer": "crm", "ticket": "crm", "service": "services", "key_handover": "services",
           "invoice": "billing", "invoice_line": "billing", "payment": "billing", "collection_case": "billing"}


def _matches(ids: dict[str, str]) -> str:
    return " or ".join(
        f"pseudonymous_key({expr}) in (select record_key from retention.erasure_ledger "
        f"where record_type = '{record_type}')" for record_type, expr in ids.items())


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(LEDGER_DDL)


def ledger_size(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("select count(*) from retention.erasure_ledger").fetchone()[0]


def erase(con: duckdb.DuckDBPyConnection, table: str | None = None, load_id: int | None = None) -> dict[str, int]:
    """Delete / anonymise the ledger's records in raw and in the rejects (one table, one load, or all); rows
    touched per table (`ingest.rejects`: rejected lines whose raw text went).

    Runs inside the caller's transaction. An anonymised row whose fields are already null is not counted
    again, so a second run reports nothing.
    """
    touched = {}
    for spec in TABLES:
        if table is not None and spec.table != table:
            continue
        exists = con.execute("select count(*) from duckdb_tables() where schema_name || '.' || table_name = ?",
                             [spec.table]).fetchone()[0]
        if not exists:
            continue
        scope = f"_load_id = {int(load_id)} and " if load_id is not None else ""
        count = 0
        if spec.deletes:
            count += con.execute(f"delete from {spec.table} where {scope}({_matches(spec.deletes)})").fetchone()[0]
        if spec.anonymises:
            assignments = ", ".join(f'"{name}" = null' for name in spec.fields)
            remaining = " or ".join(f'"{name}" is not null' for name in spec.fields)
            count += con.execute(f"""
                update {spec.table} set {assignments}
                where {scope}({_matches(spec.anonymises)}) and ({remaining})""").fetchone()[0]
        touched[spec.table] = count
    if table in (None, REJECTS):
        touched[REJECTS] = erase_rejects(con, load_id)
    return touched


def erase_rejects(con: duckdb.DuckDBPyConnection, load_id: int | None = None) -> int:
    """Rejected lines (of one load, or all) that carry the id of an erased record: raw text and quoted value
    removed, record key too for a deleted record; how many lines. Runs inside the caller's transaction.

    The ledger holds keys, not ids, so each field of the line is hashed and looked up, whatever the record
    type: a line is not parsed by its file's header (not kept), and a line the reader rejected for a wrong
    number of fields has them out of place anyway.
    """
    exists = con.execute("select count(*) from duckdb_tables() where schema_name || '.' || table_name = ?",
                         [REJECTS]).fetchone()[0]
    if not exists:
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
    return con.execute(f"""
        update {REJECTS} set
            raw_text = null,
            reason = regexp_replace(reason, 'string ".*" (to|according)', 'string "…" \\1'),
            record_key = case when pseudonymous_key(replace(record_key, '|', '/')) in (
                select record_key from retention.erasure_ledger where action = 'delete') then null else record_key end
        where rowid in (select row_id from _erased_rejects)""").fetchone()[0]
