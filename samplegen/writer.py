"""Export files: DuckDB formats the columns and writes CSV/JSONL; Python streams the result into its
final encoding (ISO-8859-15 for billing, a BOM for customers) and applies the marked defects."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from core import db

from . import billing, catalogue, changes, defects, tickets
from .days import DAY, NEVER, NEVER_TS, from_day
from .identifiers import HETU_CHECK_CHARS, SIGNS

# Column order of the export contract (shared/contracts/exports.md).
COLUMNS = {
    "customers": ["customer_id", "customer_type", "first_name", "last_name", "company_name", "business_id",
                  "hetu", "email", "phone", "street_address", "postal_code", "city", "country_code",
                  "billing_street_address", "billing_postal_code", "billing_city", "billing_country_code",
                  "einvoice_address", "language", "marketing_consent", "created_at", "updated_at"],
    "tickets": ["ticket_id", "customer_id", "opened_at", "closed_at", "channel", "subject", "messages",
                "updated_at"],
    "products": ["product_code", "product_name", "category", "monthly_list_price", "vat_rate"],
    "services": ["service_id", "customer_id", "product_code", "monthly_fee", "opened_on", "terminated_on",
                 "termination_reason", "site", "username", "identifier", "updated_at"],
    "key_handovers": ["handover_id", "customer_id", "site", "key_id", "holder_first_name", "holder_last_name",
                      "holder_phone", "signed_out_on", "returned_on", "disclosed_to", "disclosed_on"],
    "invoices": ["invoice_id", "customer_id", "invoice_date", "due_date", "reference_number",
                 "amount_excl_vat", "vat_amount", "total_amount", "currency", "status", "updated_at"],
    "invoice_lines": ["invoice_id", "line_no", "service_id", "description", "period_start", "period_end",
                      "quantity", "unit_price", "amount_excl_vat", "vat_rate", "updated_at"],
    "payments": ["payment_id", "invoice_id", "paid_on", "amount", "method", "reference_number", "updated_at"],
    "collection_cases": ["case_id", "customer_id", "invoice_id", "agency_name", "agency_country",
                         "handed_over_on", "amount", "status", "closed_on", "updated_at"],
}
# entity: (folder, extension, encoding, byte-order mark)
FILES = {
    "customers": ("crm", "csv", "utf-8", True),
    "tickets": ("crm", "jsonl", "utf-8", False),
    "products": ("services", "csv", "utf-8", False),
    "services": ("services", "csv", "utf-8", False),
    "key_handovers": ("services", "csv", "utf-8", False),
    "invoices": ("billing", "csv", "iso-8859-15", False),
    "invoice_lines": ("billing", "csv", "iso-8859-15", False),
    "payments": ("billing", "csv", "iso-8859-15", False),
    "collection_cases": ("billing", "csv", "iso-8859-15", False),
}
SNAPSHOTS = ("customers", "products", "services", "key_handovers")  # the rest are deltas
CHUNK = 8 << 20

MACROS = """
CREATE MACRO d2date(d) AS DATE '1970-01-01' + CAST(d AS INTEGER);
CREATE MACRO fdate(d) AS strftime(d2date(d), '%-d.%-m.%Y');
CREATE MACRO pdate(d) AS strftime(d2date(d), '%d.%m.%Y');
CREATE MACRO s2ts(s) AS make_timestamp(CAST(s AS BIGINT) * 1000000);
CREATE MACRO fts(s) AS strftime(s2ts(s), '%-d.%-m.%Y %-H:%M:%S');
CREATE MACRO money(c) AS (CASE WHEN c < 0 THEN '-' ELSE '' END) || CAST(abs(c) // 100 AS VARCHAR) || ','
    || lpad(CAST(abs(c) % 100 AS VARCHAR), 2, '0');
CREATE MACRO last_sunday(y, m) AS make_date(y, m, 31) - CAST(dayofweek(make_date(y, m, 31)) AS INTEGER);
CREATE MACRO hel_offset(d) AS CASE WHEN d >= last_sunday(year(d), 3) AND d < last_sunday(year(d), 10)
    THEN '+03:00' ELSE '+02:00' END;
CREATE MACRO iso(s) AS strftime(s2ts(s), '%Y-%m-%dT%H:%M:%S') || hel_offset(CAST(s2ts(s) AS DATE));
CREATE MACRO phone(p, n, l, f) AS CASE f
    WHEN 0 THEN p || ' ' || substr(lpad(CAST(n AS VARCHAR), 7, '0'), 1, 3) || ' '
        || substr(lpad(CAST(n AS VARCHAR), 7, '0'), 4)
    WHEN 1 THEN '+358 ' || substr(p, 2) || ' ' || lpad(CAST(n AS VARCHAR), 7, '0')
    WHEN 2 THEN p || lpad(CAST(n AS VARCHAR), 7, '0')
    WHEN 3 THEN p || '-' || lpad(CAST(n AS VARCHAR), 7, '0')
    WHEN 4 THEN '09 ' || substr(CAST(l AS VARCHAR), 1, 4) || ' ' || substr(CAST(l AS VARCHAR), 5)
    ELSE '+358' || substr(p, 2) || lpad(CAST(n AS VARCHAR), 7, '0') END;
CREATE MACRO cid(n) AS 'C' || lpad(CAST(n AS VARCHAR), 7, '0');
CREATE MACRO sid(n) AS 'S' || lpad(CAST(n AS VARCHAR), 8, '0');
CREATE MACRO iid(n) AS 'I' || lpad(CAST(n AS VARCHAR), 9, '0');
CREATE MACRO ref(n, c) AS CAST(n AS VARCHAR) || CAST(c AS VARCHAR);
CREATE MACRO ascii_name(s) AS regexp_replace(strip_accents(s), '[^A-Za-z-]', '', 'g');
"""


def _lit(values) -> str:
    """A DuckDB list literal of strings (1-based indexing in SQL)."""
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]"


class Writer:
    """Writes every export file of every date, block by block of customers.

    The first block creates each file with its header; later blocks append their rows to it.
    """

    def __init__(self, out: Path):
        self.out = out
        self.tmp = out / ".generate-tmp"  # DuckDB's output before re-encoding, and its spills
        self.lines: dict[str, int] = {}  # physical lines written so far, by file

    @property
    def files(self) -> list[dict]:
        return [{"path": rel, "rows": n if rel.endswith(".jsonl") else n - 1} for rel, n in self.lines.items()]

    def write_block(self, data: dict, plan: list[defects.Defect], dates: list[int], static: bool = False) -> None:
        """Load one block's columns into DuckDB and write its rows of every file of every date.

        `static`: only the first date's snapshots (repeat_snapshots copies them once every block is written).
        """
        # A connection per block: closing it frees its tables and the NumPy arrays registered in it.
        # db.connect applies the warehouse's memory limit (WAREHOUSE_MEMORY_LIMIT); past it DuckDB spills.
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.con = db.connect(temp_directory=self.tmp / "spill")  # DuckDB makes it, and removes it on close
        try:
            self.con.execute("SET enable_progress_bar = false")
            self.con.execute("SET preserve_insertion_order = true")
            self.con.execute(MACROS)
            self.plan = plan
            self.by_entity: dict[str, dict[str, list[defects.Defect]]] = defaultdict(lambda: defaultdict(list))
            for d in plan:
                self.by_entity[d.entity][d.key].append(d)
            self._load(data)
            for day in dates:
                if day == dates[min(1, len(dates) - 1)] and day != dates[0]:
                    # A later day's files are small: one thread writes them faster than several that
                    # mostly wait for each other (twice as fast on two cores).
                    self.con.execute("SET threads = 1")
                for entity in FILES:
                    if not (static and day != dates[0] and entity in SNAPSHOTS):
                        self.write(entity, day, day == dates[0])
        finally:
            self.con.close()
            del self.con

    def repeat_snapshots(self, dates: list[int], plan: list[defects.Defect]) -> None:
        """Copy the first date's snapshot files to every later date, byte for byte, defects and all."""
        for entity in SNAPSHOTS:
            folder, ext, *_ = FILES[entity]
            rel = f"{folder}/{entity}_{from_day(dates[0]):%Y%m%d}.{ext}"
            found = [(d, line) for d in plan for path, line in d.occurrences if path == rel]
            for day in dates[1:]:
                copy = f"{folder}/{entity}_{from_day(day):%Y%m%d}.{ext}"
                shutil.copyfile(self.out / rel, self.out / copy)
                self.lines[copy] = self.lines[rel]
                for d, line in found:
                    d.occurrences.append((copy, line))

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- loading ---------------------------------------------------------------------------------

    def _load(self, data: dict) -> None:
        con = self.con
        cust = data["customers"]
        keep = ["idx", "cust_no", "business", "first_name", "last_name", "company_name", "birth_day",
                "hetu_sign", "hetu_nnn", "hetu_check", "ytunnus_base", "ytunnus_check", "einvoice",
                "postal_code", "city", "street", "house", "apt_kind", "stair", "apt", "bill_kind",
                "bill_street", "bill_house", "bill_postal_code", "bill_city", "po_box", "phone_prefix",
                "phone_number", "landline", "phone_fmt", "email_kind", "email_digits", "email_domain",
                "email_mixed", "lang", "consent", "created_ts", "upd_ts", "del_day"]
        con.register("strings_np", {"i": np.arange(len(data["strings"])), "s": data["strings"]})
        con.execute("CREATE TABLE strs AS SELECT list(s ORDER BY i) AS l FROM strings_np")
        texts = ["first_name", "last_name", "company_name", "street", "postal_code", "city", "bill_street",
                 "bill_postal_code", "bill_city"]
        # A row per version of a customer record: the base row and one per day the record changed.
        tables = {"c_codes": changes.versions(cust, data["changes"], keep), "s_np": data["services"],
                  "h_codes": data["handovers"], "inv": data["invoices"], "lines": data["lines"],
                  "pay": data["payments"], "cases": data["cases"], "t_np": data["tickets"],
                  "m_np": data["messages"]}
        for name, table in tables.items():
            con.register(name, table)
        # Text columns arrive as codes into the shared string list.
        decoded = ", ".join(f"strs.l[{t} + 1] AS {t}" for t in texts)
        con.execute(f"CREATE VIEW c_np AS SELECT * REPLACE ({decoded}) FROM c_codes, strs")
        con.execute("CREATE VIEW h_np AS SELECT * REPLACE (strs.l[first_name + 1] AS first_name, "
                    "strs.l[last_name + 1] AS last_name) FROM h_codes, strs")
        doms = _lit(d for d, _ in catalogue.EMAIL_DOMAINS)
        con.execute(f"""
            CREATE TABLE cust_txt AS
            WITH n AS (
                SELECT *, ascii_name(first_name) AS fa, ascii_name(last_name) AS la,
                    lower(regexp_replace(strip_accents(regexp_replace(company_name,
                        ' (Oy Ab|Oyj|Oy|Ky|Tmi|Ab|Osk)$', '')), '[^A-Za-z0-9]', '', 'g')) AS slug,
                    CASE WHEN email_digits >= 0 THEN CAST(email_digits AS VARCHAR) ELSE '' END AS dig,
                    {doms}[email_domain + 1] AS dom
                FROM c_np)
            SELECT idx, ver, ver_from, ver_to, cust_no, created_ts, upd_ts, consent, del_day, fa, la, slug,
                cid(cust_no) AS customer_id,
                CASE WHEN business THEN 'business' ELSE 'person' END AS customer_type,
                first_name, last_name, company_name,
                CASE WHEN business THEN lpad(CAST(ytunnus_base AS VARCHAR), 7, '0') || '-'
                    || CAST(ytunnus_check AS VARCHAR) END AS business_id,
                CASE WHEN NOT business THEN strftime(d2date(birth_day), '%d%m%y')
                    || substr('{SIGNS}', hetu_sign + 1, 1) || lpad(CAST(hetu_nnn AS VARCHAR), 3, '0')
                    || substr('{HETU_CHECK_CHARS}', hetu_check + 1, 1) END AS hetu,
                CASE
                    WHEN business AND email_kind = 0 THEN lower(fa || '.' || la) || '@' || slug || '.fi'
                    WHEN business AND email_kind = 1 THEN 'info@' || slug || '.fi'
                    WHEN business THEN lower(fa || '.' || la || dig) || '@' || dom
                    ELSE (CASE WHEN email_mixed THEN (CASE email_kind WHEN 0 THEN fa || '.' || la
                                WHEN 1 THEN fa || la WHEN 2 THEN fa || '_' || la
                                ELSE substr(fa, 1, 1) || '.' || la END) || dig || '@'
                                || upper(substr(dom, 1, 1)) || substr(dom, 2)
                          ELSE lower(CASE email_kind WHEN 0 THEN fa || '.' || la WHEN 1 THEN fa || la
                                WHEN 2 THEN fa || '_' || la ELSE substr(fa, 1, 1) || '.' || la END)
                                || dig || '@' || dom END)
                END AS email,
                phone({_lit(catalogue.MOBILE_PREFIXES)}[phone_prefix + 1], phone_number, landline, phone_fmt)
                    AS phone,
                street || ' ' || CAST(house AS VARCHAR) || CASE apt_kind
                    WHEN 1 THEN ' ' || substr('ABCD', stair + 1, 1) || ' ' || CAST(apt AS VARCHAR)
                    WHEN 2 THEN ' as ' || CAST(apt AS VARCHAR)
                    WHEN 3 THEN ' ' || substr('ABCD', stair + 1, 1) ELSE '' END AS street_address,
                postal_code, city, 'FI' AS country_code,
                CASE bill_kind WHEN 1 THEN bill_street || ' ' || CAST(bill_house AS VARCHAR)
                    WHEN 2 THEN 'PL ' || CAST(po_box AS VARCHAR) END AS billing_street_address,
                CASE bill_kind WHEN 1 THEN bill_postal_code WHEN 2 THEN substr(postal_code, 1, 4) || '1' END
                    AS billing_postal_code,
                CASE bill_kind WHEN 1 THEN bill_city WHEN 2 THEN city END AS billing_city,
                CASE WHEN bill_kind > 0 THEN 'FI' END AS billing_country_code,
                CASE WHEN einvoice THEN '0037' || lpad(CAST(ytunnus_base AS VARCHAR), 7, '0')
                    || CAST(ytunnus_check AS VARCHAR) END AS einvoice_address,
                {_lit(catalogue.LANGUAGES)}[lang + 1] AS language
            FROM n""")
        # Snapshot rows are formatted once per version, not once per day: a day only picks its versions.
        con.execute("""
            CREATE TABLE cust_out AS
            SELECT cust_no, created_ts, del_day, ver_from, ver_to, customer_id, customer_type, first_name,
                last_name, company_name, business_id, hetu, email, phone, street_address, postal_code, city,
                country_code, billing_street_address, billing_postal_code, billing_city, billing_country_code,
                einvoice_address, language, CAST(consent AS VARCHAR) AS marketing_consent,
                fts(created_ts) AS created_at, fts(upd_ts) AS updated_at
            FROM cust_txt ORDER BY cust_no, ver_from""")
        products = catalogue.PRODUCTS
        cats = _lit(p[2] for p in products)
        nets = _lit(["192.0.2", "198.51.100", "203.0.113"])  # documentation ranges only (RFC 5737)
        sites = _lit(s[0] for s in catalogue.SITES)
        mailbox = "coalesce(lower(c.fa || '.' || c.la), 'mail' || CAST(s.svc_no % 100000 AS VARCHAR))"
        con.execute(f"""
            CREATE TABLE svc_txt AS
            WITH s AS (
                SELECT *, {cats}[product + 1] AS cat, {_lit(p[0] for p in products)}[product + 1] AS code,
                    CASE WHEN site >= 0 THEN {sites}[site + 1] END AS site_code
                FROM s_np)
            SELECT s.svc_no, s.open_day, s.term_day,
                fdate(s.open_day) AS opened_on, fts(s.open_ts) AS open_at,
                CASE WHEN s.term_day < {NEVER} THEN fdate(s.term_day) END AS term_on,
                CASE WHEN s.term_day < {NEVER} THEN {_lit(catalogue.REASONS)}[s.reason + 1] END AS reason_txt,
                CASE WHEN s.term_day < {NEVER} THEN fts(s.term_ts) END AS term_at,
                sid(s.svc_no) AS service_id, cid(s.cust_no) AS customer_id, s.code AS product_code,
                money(s.fee) AS monthly_fee, s.site_code AS site,
                CASE s.cat
                    WHEN 'broadband' THEN 'll' || lpad(CAST(s.svc_no % 1000000 AS VARCHAR), 6, '0')
                    WHEN 'email' THEN {mailbox}
                    WHEN 'domain' THEN 'dns' || CAST(s.svc_no % 100000 AS VARCHAR)
                    ELSE replace(s.cat, 'ip_', '') || CAST(s.svc_no % 100000 AS VARCHAR) END AS username,
                CASE s.cat
                    WHEN 'broadband' THEN (CASE WHEN s.code = 'VDSL50' THEN 'DSL-' ELSE 'FTTH-' END)
                        || lpad(CAST(s.r % 10000000 AS VARCHAR), 7, '0')
                    WHEN 'colocation' THEN s.site_code || '-R' || lpad(CAST(s.r % 40 + 1 AS VARCHAR), 2, '0')
                        || CASE WHEN s.code = 'COLO42U' THEN ''
                            ELSE '-U' || lpad(CAST((s.r // 40) % 41 + 1 AS VARCHAR), 2, '0') END
                    WHEN 'ip_transit' THEN {nets}[s.r % 3 + 1] || '.'
                        || CAST(16 * ((s.r // 3) % 16) AS VARCHAR) || '/28'
                    WHEN 'vps' THEN {nets}[s.r % 3 + 1] || '.' || CAST((s.r // 7) % 254 + 1 AS VARCHAR)
                    WHEN 'email' THEN {mailbox} || '@localnet.fi'
                    ELSE coalesce(nullif(c.slug, ''), lower(c.la), 'domain' || CAST(s.r % 100000 AS VARCHAR))
                        || CASE WHEN s.code = 'DOMAIN-FI' THEN '.fi' ELSE '.com' END
                END AS identifier,
                coalesce(c.del_day, {NEVER}) AS del_day
            FROM s LEFT JOIN cust_txt c ON s.owner = c.idx AND c.ver = 0""")
        con.execute(f"""
            CREATE TABLE ho_txt AS
            SELECT h.handover_no, h.signed_day, h.returned_day, c.del_day, fdate(h.signed_day) AS signed_on,
                CASE WHEN h.returned_day < {NEVER} THEN fdate(h.returned_day) END AS returned_on,
                'H' || lpad(CAST(h.handover_no AS VARCHAR), 7, '0') AS handover_id, c.customer_id,
                {sites}[h.site + 1] AS site,
                {sites}[h.site + 1] || '-K' || lpad(CAST(h.key_no AS VARCHAR), 4, '0') AS key_id,
                h.first_name AS holder_first_name, h.last_name AS holder_last_name,
                phone({_lit(catalogue.MOBILE_PREFIXES)}[h.phone_prefix + 1], h.phone_number, 0, h.phone_fmt)
                    AS holder_phone,
                {_lit(s[1] for s in catalogue.SITES)}[h.site + 1] AS disclosed_to
            FROM h_np h JOIN cust_txt c ON h.owner = c.idx AND c.ver = 0""")
        subjects, bodies = tickets.templates()
        body = f"{_lit(bodies)}[m.template + 1]"
        placeholders = {"customer_id": "customer_id", "first": "first_name", "last": "last_name",
                        "phone": "phone", "street": "street_address", "postal": "postal_code", "city": "city",
                        "email": "email"}
        for placeholder, column in placeholders.items():
            body = f"replace({body}, '{{{placeholder}}}', coalesce(c.{column}, ''))"
        con.execute(f"""
            CREATE TABLE msg_txt AS
            SELECT m.ticket_no, m.seq, m.sent_ts, m.sent_day, {body} AS body, iso(m.sent_ts) AS sent_at,
                CASE WHEN m.seq % 2 = 0 THEN 'in' ELSE 'out' END AS direction
            FROM m_np m JOIN cust_txt c
                ON m.owner = c.idx AND m.sent_day >= c.ver_from AND m.sent_day < c.ver_to""")
        con.execute(f"""
            CREATE TABLE tick_txt AS
            SELECT t.ticket_no, t.opened_ts, t.open_day, t.closed_ts, t.close_day, iso(t.opened_ts) AS opened_at,
                CASE WHEN t.closed_ts < {NEVER_TS} THEN iso(t.closed_ts) END AS closed_at,
                'T' || lpad(CAST(t.ticket_no AS VARCHAR), 7, '0') AS ticket_id, c.customer_id,
                {_lit(catalogue.CHANNELS)}[t.channel + 1] AS channel,
                {_lit(subjects)}[t.subject + 1] AS subject
            FROM t_np t JOIN cust_txt c ON t.owner = c.idx AND c.ver = 0""")
        con.register("defect_np", {name: np.array([getattr(d, name) for d in self.plan] or [""], dtype=object)
                                   for name in ("entity", "key", "scope")})
        con.execute("CREATE TABLE defect_keys AS SELECT * FROM defect_np WHERE key <> ''")

    # --- queries ---------------------------------------------------------------------------------

    def _mark(self, entity: str, first: bool, value: str, key: str | None = None) -> str:
        """SQL for the key column: prefixed with the defect marker on rows that carry a defect."""
        if not self._fixes(entity, first):
            return value
        scope = "TRUE" if first else "scope = 'all'"
        keys = f"SELECT key FROM defect_keys WHERE entity = '{entity}' AND {scope}"
        return f"CASE WHEN {key or value} IN ({keys}) THEN '{defects.MARK}' || {value} ELSE {value} END"

    def _fixes(self, entity: str, first: bool) -> dict[str, list[defects.Defect]]:
        """Defects to apply in this entity's file, by row key (scope 'first' only in the first export)."""
        found = {k: [d for d in ds if first or d.scope == "all"] for k, ds in self.by_entity[entity].items()}
        return {k: ds for k, ds in found.items() if ds}

    def query(self, entity: str, day: int, first: bool) -> str:
        e = (day + 1) * DAY - 1  # end of the export day, epoch seconds
        m = self._mark
        if entity == "customers":
            return f"""
                SELECT {m(entity, first, 'customer_id')} AS customer_id, customer_type, first_name,
                    last_name, company_name, business_id, hetu, email, phone, street_address, postal_code,
                    city, country_code, billing_street_address, billing_postal_code, billing_city,
                    billing_country_code, einvoice_address, language, marketing_consent, created_at, updated_at
                FROM cust_out
                WHERE created_ts <= {e} AND del_day > {day} AND ver_from <= {day} AND ver_to > {day}
                ORDER BY cust_no"""
        if entity == "tickets":
            cond = (f"t.opened_ts <= {e}" if first else
                    f"(t.open_day = {day} OR t.close_day = {day} OR t.ticket_no IN "
                    f"(SELECT ticket_no FROM msg_txt WHERE sent_day = {day}))")
            return f"""
                SELECT {m(entity, first, 't.ticket_id')} AS ticket_id, t.customer_id, t.opened_at,
                    CASE WHEN t.closed_ts <= {e} THEN t.closed_at END AS closed_at, t.channel, t.subject,
                    list({{'sent_at': x.sent_at, 'direction': x.direction, 'body': x.body}} ORDER BY x.seq)
                        AS messages,
                    CASE WHEN t.closed_ts <= {e} AND t.closed_ts >= max(x.sent_ts) THEN t.closed_at
                        ELSE arg_max(x.sent_at, x.sent_ts) END AS updated_at
                FROM tick_txt t JOIN msg_txt x ON x.ticket_no = t.ticket_no
                WHERE x.sent_ts <= {e} AND {cond}
                GROUP BY t.ticket_no, t.ticket_id, t.customer_id, t.opened_at, t.closed_ts, t.closed_at,
                    t.channel, t.subject
                ORDER BY t.ticket_no"""
        if entity == "products":
            vat = "24" if day < billing.VAT_CHANGE else "25,5"
            rows = ", ".join(f"('{code}', '{name}', '{cat}', {price})"
                             for code, name, cat, price, *_ in catalogue.PRODUCTS)
            return f"""
                SELECT code AS product_code, name AS product_name, category,
                    money(price) AS monthly_list_price, '{vat}' AS vat_rate
                FROM (VALUES {rows}) p(code, name, category, price) ORDER BY code"""
        if entity == "services":
            return f"""
                SELECT {m(entity, first, 'service_id')} AS service_id, customer_id, product_code, monthly_fee,
                    opened_on, CASE WHEN term_day <= {day} THEN term_on END AS terminated_on,
                    CASE WHEN term_day <= {day} THEN reason_txt END AS termination_reason,
                    site, username, identifier,
                    CASE WHEN term_day <= {day} THEN term_at ELSE open_at END AS updated_at
                FROM svc_txt WHERE open_day <= {day} AND del_day > {day} ORDER BY svc_no"""
        if entity == "key_handovers":
            return f"""
                SELECT {m(entity, first, 'handover_id')} AS handover_id, customer_id, site, key_id,
                    holder_first_name, holder_last_name, holder_phone, signed_on AS signed_out_on,
                    CASE WHEN returned_day <= {day} THEN returned_on END AS returned_on,
                    disclosed_to, signed_on AS disclosed_on
                FROM ho_txt WHERE signed_day <= {day} AND del_day > {day} ORDER BY handover_no"""
        if entity == "invoices":
            cond = f"inv_day <= {day}" if first else f"(inv_day = {day} OR day1 = {day} OR day2 = {day})"
            return f"""
                SELECT {m(entity, first, 'iid(inv_no)')} AS invoice_id, cid(cust_no) AS customer_id,
                    fdate(inv_day) AS invoice_date, fdate(inv_day + 14) AS due_date,
                    ref(inv_no, ref_check) AS reference_number, money(net) AS amount_excl_vat,
                    money(vat) AS vat_amount, money(total) AS total_amount, 'EUR' AS currency,
                    {_lit(billing.STATUSES)}[
                        CASE WHEN ts2 <= {e} THEN st2 WHEN ts1 <= {e} THEN st1 ELSE 0 END + 1] AS status,
                    fts(CASE WHEN ts2 <= {e} THEN ts2 WHEN ts1 <= {e} THEN ts1 ELSE created_ts END)
                        AS updated_at
                FROM inv WHERE {cond} ORDER BY inv_no"""
        if entity == "invoice_lines":
            names = _lit(p[1] for p in catalogue.PRODUCTS)
            cond = f"c_day <= {day}" if first else f"c_day = {day}"
            return f"""
                SELECT {m(entity, first, 'iid(inv_no)', "iid(inv_no) || '/' || CAST(line_no AS VARCHAR)")}
                        AS invoice_id,
                    CAST(line_no AS VARCHAR) AS line_no,
                    CASE WHEN kind = 0 THEN sid(svc_no) END AS service_id,
                    CASE kind
                        WHEN 0 THEN {names}[product + 1] || ' ' || strftime(d2date(period_start), '%-m/%Y')
                            || ' (' || money(unit) || ' €/kk)'
                        WHEN 1 THEN 'Avausmaksu, ' || {names}[product + 1] || ' ' || money(unit) || ' €'
                        ELSE 'Paperilaskun käsittelymaksu ' || money(unit) || ' €' END AS description,
                    CASE WHEN kind = 0 THEN fdate(period_start) END AS period_start,
                    CASE WHEN kind = 0 THEN fdate(period_end) END AS period_end,
                    '1' AS quantity, money(unit) AS unit_price, money(unit) AS amount_excl_vat,
                    CASE WHEN rate = 1 THEN '25,5' ELSE '24' END AS vat_rate, fts(created_ts) AS updated_at
                FROM lines WHERE {cond} ORDER BY inv_no, line_no"""
        if entity == "payments":
            cond = f"paid_day <= {day}" if first else f"paid_day = {day}"
            return f"""
                SELECT {m(entity, first, "'P' || lpad(CAST(pay_no AS VARCHAR), 9, '0')")} AS payment_id,
                    iid(inv_no) AS invoice_id, fdate(paid_day) AS paid_on, money(amount) AS amount,
                    {_lit(catalogue.METHODS)}[method + 1] AS method,
                    ref(inv_no, ref_check) AS reference_number,
                    fts(ts) AS updated_at
                FROM pay WHERE {cond} ORDER BY pay_no"""
        if entity == "collection_cases":
            cond = f"handed_day <= {day}" if first else f"(handed_day = {day} OR close_day = {day})"
            padded = [i for i, a in enumerate(catalogue.AGENCIES) if a[3] == "%d.%m.%Y"]
            pad = f"agency IN ({', '.join(map(str, padded))})" if padded else "FALSE"
            return f"""
                SELECT {m(entity, first, "'CC' || lpad(CAST(case_no AS VARCHAR), 7, '0')")} AS case_id,
                    cid(cust_no) AS customer_id, iid(inv_no) AS invoice_id,
                    {_lit(a[0] for a in catalogue.AGENCIES)}[agency + 1] AS agency_name,
                    {_lit(a[1] for a in catalogue.AGENCIES)}[agency + 1] AS agency_country,
                    CASE WHEN {pad} THEN pdate(handed_day) ELSE fdate(handed_day) END AS handed_over_on,
                    money(amount) AS amount,
                    CASE WHEN close_day <= {day} THEN {_lit(billing.CASE_STATUSES)}[outcome + 1]
                        ELSE 'open' END AS status,
                    CASE WHEN close_day <= {day} THEN (CASE WHEN {pad} THEN pdate(close_day)
                        ELSE fdate(close_day) END) END AS closed_on,
                    fts(CASE WHEN close_day <= {day} THEN close_ts ELSE handed_ts END) AS updated_at
                FROM cases WHERE {cond} ORDER BY case_no"""
        raise ValueError(entity)

    # --- files -----------------------------------------------------------------------------------

    def write(self, entity: str, day: int, first: bool) -> None:
        folder, ext, encoding, bom = FILES[entity]
        rel = f"{folder}/{entity}_{from_day(day):%Y%m%d}.{ext}"
        append = rel in self.lines  # an earlier block began the file
        if append and entity == "products":
            return  # the catalogue is not per customer: the first block wrote all of it
        dst = self.out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / rel.replace("/", "_")
        csv_options = f"FORMAT csv, DELIMITER ';', QUOTE '\"', ESCAPE '\"', HEADER {'false' if append else 'true'}"
        fmt = "FORMAT json" if ext == "jsonl" else csv_options
        target = str(tmp).replace("'", "''")
        self.con.execute(f"COPY ({self.query(entity, day, first)}) TO '{target}' ({fmt})")
        fixes = self._fixes(entity, first)
        columns = None if ext == "jsonl" else COLUMNS[entity]
        self.lines[rel] = _finish(tmp, dst, rel, encoding, bom, fixes, columns, self.lines.get(rel, 0), append)


def _finish(tmp: Path, dst: Path, rel: str, encoding: str, bom: bool, fixes: dict, columns: list[str] | None,
            lines_before: int, append: bool) -> int:
    """Stream DuckDB's UTF-8 output into the final file, or onto its end when `append`; return the file's
    number of physical lines (line numbers of defects count on from `lines_before`)."""
    lines = lines_before
    if encoding == "utf-8" and not bom and not fixes:
        with open(tmp, "rb") as src, open(dst, "ab" if append else "wb") as out:
            while block := src.read(CHUNK):
                lines += block.count(b"\n")
                out.write(block)
        tmp.unlink()
        return lines
    carry = ""
    with (open(tmp, encoding="utf-8", newline="") as src,
          open(dst, "a" if append else "w", encoding=encoding, newline="") as out):
        if bom and not append:
            out.write("\ufeff")
        while True:
            block = src.read(CHUNK)
            text = carry + block
            cut = text.rfind("\n") + 1 if block else len(text)
            chunk, carry = text[:cut], text[cut:]
            if fixes and defects.MARK in chunk:
                chunk = _apply(chunk, lines, rel, fixes, columns)
            out.write(chunk)
            lines += chunk.count("\n")
            if not block:
                break
    tmp.unlink()
    return lines


def _apply(chunk: str, lines_before: int, rel: str, fixes: dict, columns: list[str] | None) -> str:
    """Replace every marked line of a chunk (whole lines only) and record where the defects landed."""
    parts = []
    pos = 0
    line_no = lines_before + 1  # physical line number at `pos`
    while (i := chunk.find(defects.MARK, pos)) >= 0:
        start = chunk.rfind("\n", 0, i) + 1
        stop = chunk.find("\n", i)
        stop = len(chunk) if stop < 0 else stop
        line_no += chunk.count("\n", pos, start)
        line = chunk[start:i] + chunk[i + len(defects.MARK):stop]
        if columns is None:
            k = json.loads(line)["ticket_id"]
            found = fixes[k]
            new = defects.fix_json_line(line, found)
        else:
            first_fields = line.split(";", 2)
            k = first_fields[0] if columns[1] != "line_no" else f"{first_fields[0]}/{first_fields[1]}"
            found = fixes[k]
            new = defects.fix_csv_line(line, columns, found)
        for d in found:
            d.occurrences.append((rel, line_no))
        parts.append(chunk[pos:start])
        parts.append(new)
        pos = stop
    parts.append(chunk[pos:])
    return "".join(parts)
