"""Subject access (GDPR art. 15): `warehouse subject-access` on a copy of the demo home, through the real CLI.

The expectations are computed here from the vault and the data map with SQL of their own, not with
privacy/access.py's generated queries: a column the package leaves out, a row it misses or a recipient it
forgets fails a test.
"""

from __future__ import annotations

import json
import re
import stat
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import cli, copy_home
from vault import secret_of, settings_of, vault_rows

from core.home import Home
from core.pseudonym import pseudonymous_key
from core.render import short_date
from core.vault import open_vault
from ingest.config import load_entities
from privacy.access import find_customers, history_sources
from privacy.config import NOT_PERSONAL, load_data_map, load_disclosures

DATA_MAP = load_data_map()
DISCLOSURES = load_disclosures(data_map=DATA_MAP)
IDENTIFYING = ("customer_id", "hetu", "email", "first_name", "last_name", "phone", "street_address")


@pytest.fixture(scope="module")
def home(demo, tmp_path_factory) -> Home:
    """A copy of the demo home: the requests below add packages and log rows."""
    return copy_home(demo.home, tmp_path_factory.mktemp("access") / "home")


def query(home: Home, sql: str, params: list | dict | None = None) -> list[tuple]:
    return vault_rows(home, sql, params, keyed=True)  # int_retention__records calls pseudonymous_key


def request(home: Home, *args: str) -> tuple[object, Path | None]:
    """Run `warehouse subject-access`; return the CLI result and the package folder it wrote (if any)."""
    before = set(home.access.iterdir()) if home.access.exists() else set()
    result = cli(home, "subject-access", *args)
    after = set(home.access.iterdir()) if home.access.exists() else set()
    new = after - before
    assert len(new) <= 1
    return result, next(iter(new), None)


def package_of(home: Home, *args: str) -> tuple[dict, Path]:
    result, folder = request(home, *args, "--verified-by", "Test Clerk")
    assert result.exit_code == 0, result.output
    assert folder is not None, result.output
    return json.loads((folder / "access.json").read_text(encoding="utf-8")), folder


def belongs_sql(table: str) -> str:
    """The rows of a data-map dataset that belong to the customer ids in $ids, written out for the test."""
    dataset = DATA_MAP.datasets[table]
    if dataset.subject_column:
        return f"from {table} as t where t.{dataset.subject_column} in (select unnest($ids))"
    via_table, key = dataset.via
    via_subject = DATA_MAP.datasets[via_table].subject_column
    return (f"from {table} as t where t.{key} in "
            f"(select v.{key} from {via_table} as v where v.{via_subject} in (select unnest($ids)))")


def by_table(package: dict) -> dict[str, dict]:
    return {d["table"]: d for d in package["datasets"]}


def log_rows(home: Home) -> list[dict]:
    con = open_vault(settings_of(home), read_only=True)
    try:
        cursor = con.execute("select * from privacy.access_requests order by requested_at")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


# --- 1. every personal column of every dataset with rows is in the package --------------------------------
def test_the_package_covers_every_personal_column_of_every_dataset_holding_the_customer(home):
    union = " union all ".join(
        f"select '{t}' as dataset, {d.subject_column} as customer_id from {t}" if d.subject_column else
        f"select '{t}', v.{DATA_MAP.datasets[d.via[0]].subject_column} from {t} as t "
        f"join {d.via[0]} as v on t.{d.via[1]} = v.{d.via[1]}"
        for t, d in DATA_MAP.datasets.items())
    customer_id, held_in = query(home, f"""
        select customer_id, count(distinct dataset) from ({union})
        where customer_id in (select customer_id from staging.stg_crm__customers)
        group by customer_id order by count(distinct dataset) desc, customer_id limit 1""")[0]
    assert held_in > len(DATA_MAP.datasets) // 2  # the sample gives someone data in most datasets

    package, _ = package_of(home, "--customer-id", customer_id)
    assert package["customer_ids"][0] == customer_id
    ids = package["customer_ids"]
    datasets = by_table(package)
    assert set(datasets) == set(DATA_MAP.datasets)
    covered = 0
    for table, dataset in DATA_MAP.datasets.items():
        expected_rows = query(home, f"select count(*) {belongs_sql(table)}", {"ids": ids})[0][0]
        got = datasets[table]
        assert got["rows_count"] == len(got["rows"]) == expected_rows, table
        if not expected_rows:
            continue
        covered += 1
        assert {c["name"]: c["category"] for c in got["columns"]} == dataset.columns, table
        for column in dataset.personal_columns:
            assert all(column in row["values"] for row in got["rows"]), f"{table}.{column} missing from the package"
            filled = query(home, f"select count(t.{column}) {belongs_sql(table)}", {"ids": ids})[0][0]
            assert sum(row["values"][column] is not None for row in got["rows"]) == filled, f"{table}.{column}"
    assert covered == held_in or len(ids) > 1  # a person registered twice may hold more


# --- 2. the data map covers every column of every staging model and privacy table ----------------------------
def test_the_data_map_tags_every_column_of_every_staging_model_and_privacy_table(home):
    columns: dict[str, set[str]] = {}
    for table, column in query(home, """
            select schema_name || '.' || table_name, column_name from duckdb_columns()
            where database_name = current_database() and schema_name in ('staging', 'privacy')"""):
        columns.setdefault(table, set()).add(column)
    assert columns
    for table, held in sorted(columns.items()):
        if table in DATA_MAP.not_personal:
            continue
        if table in DATA_MAP.version_views:  # answered as its dataset's history
            dataset = DATA_MAP.datasets[DATA_MAP.version_views[table]]
            assert held - {"valid_from", "superseded_on"} <= set(dataset.columns), table
            continue
        assert table in DATA_MAP.datasets, f"{table} is not in privacy/data_map.yml"
        mapped = set(DATA_MAP.datasets[table].columns)
        untagged = held - mapped - set(DATA_MAP.lineage_columns)
        assert not untagged, f"{table}: columns without a data category: {sorted(untagged)}"
        assert mapped <= held, f"{table}: the data map names columns the model lacks: {sorted(mapped - held)}"
    assert set(DATA_MAP.datasets) <= set(columns)


# --- 3. hetu and email find the same person as the customer id ---------------------------------------------
def test_lookup_by_hetu_and_by_email_gives_the_same_customer_as_by_customer_id(home):
    customer_id, hetu, email = query(home, """
        select customer_id, hetu, email from staging.stg_crm__customers
        where hetu is not null and email is not null
          and email in (select email from staging.stg_crm__customers group by email having count(*) = 1)
        order by customer_id limit 1""")[0]
    by_id, _ = package_of(home, "--customer-id", customer_id)
    by_hetu, _ = package_of(home, "--hetu", f"  {hetu.lower()} ")  # typed as staff type it: staging normalises
    by_email, _ = package_of(home, "--email", email.upper())
    assert customer_id in by_id["customer_ids"]
    for other in (by_hetu, by_email):
        assert sorted(other["customer_ids"]) == sorted(by_id["customer_ids"])
        assert {d["table"]: d["rows_count"] for d in other["datasets"]} == \
               {d["table"]: d["rows_count"] for d in by_id["datasets"]}
    customers = by_table(by_hetu)["staging.stg_crm__customers"]["rows"]
    assert {r["values"]["hetu"] for r in customers} == {hetu}


def test_a_person_registered_twice_gets_both_customer_records(home):
    twice = query(home, """
        select hetu, list(customer_id order by customer_id) from staging.stg_crm__customers
        where hetu is not null group by hetu having count(*) > 1 order by hetu limit 1""")
    if not twice:
        pytest.skip("the sample holds no duplicate person")
    _, ids = twice[0]
    package, _ = package_of(home, "--customer-id", ids[-1])
    assert sorted(package["customer_ids"]) == ids
    assert by_table(package)["staging.stg_crm__customers"]["rows_count"] == len(ids)


# --- 4. the request log, owner-only files, the pages --------------------------------------------------------
def test_the_request_is_logged_without_the_answer_and_the_package_is_owner_only(home):
    customer_id, *identifying = query(home, f"""
        select {', '.join(IDENTIFYING)} from staging.stg_crm__customers
        where {' and '.join(f'{c} is not null' for c in IDENTIFYING)} order by customer_id desc limit 1""")[0]
    identifying = [customer_id, *identifying]
    result, folder = request(home, "--hetu", identifying[1], "--verified-by", "Maija Tarkastaja",
                             "--request-ref", "HD-4711")
    assert result.exit_code == 0, result.output
    package = json.loads((folder / "access.json").read_text(encoding="utf-8"))

    row = next(r for r in log_rows(home) if r["request_id"] == folder.name)
    assert row["identifier_type"] == "hetu" and row["verified_by"] == "Maija Tarkastaja"
    assert row["request_ref"] == "HD-4711" and row["found"] is True
    secret = secret_of(home)
    assert row["subject_key"] == pseudonymous_key(secret, package["customer_ids"][0])
    assert row["datasets"] == sum(1 for d in package["datasets"] if d["rows_count"])
    assert row["rows"] == sum(d["rows_count"] for d in package["datasets"])
    logged = json.dumps(row, default=str).lower()
    for value in identifying:
        assert value.lower() not in logged
    # neither the console nor the log file carries the person either
    log_text = (home.logs / "warehouse.log").read_text(encoding="utf-8").lower()
    for value in identifying:
        assert value.lower() not in result.output.lower()
        assert value.lower() not in log_text
    assert folder.name in result.output and "access.json" in result.output

    # owner-only, outside the reports folder (which must hold no personal data)
    assert not folder.is_relative_to(home.reports)
    for path in (home.access, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    files = sorted(folder.iterdir())
    assert {f.name for f in files} == {"access.json", "access.fi.html", "access.en.html"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in home.reports.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".json", ".csv", ".txt"}:
            text = path.read_text(encoding="utf-8", errors="replace").lower()
            assert identifying[2].lower() not in text and identifying[1].lower() not in text, path

    # the pages: one per language, a heading per dataset in that language, the person's data in it
    for lang, title in (("fi", "Tarkastusoikeus"), ("en", "Right of access")):
        page = (folder / f"access.{lang}.html").read_text(encoding="utf-8")
        assert f'<html lang="{lang}">' in page
        assert re.search(rf"<h1>{title}[^<]*</h1>", page)
        headings = [re.sub(r"<[^>]+>.*", "", h).strip() for h in re.findall(r"<h2>(.*?)</h2>", page)]
        for dataset in DATA_MAP.datasets.values():
            assert dataset.title[lang] in headings, (lang, dataset.title[lang])
        assert identifying[3] in page and identifying[2] in page  # the first name and the email, escaped as is
        assert "{&#34;" not in page and '{"' not in page  # tables, not JSON dumps
    assert "Yhteenveto" in (folder / "access.fi.html").read_text(encoding="utf-8")


# --- 5. an unknown identifier ------------------------------------------------------------------------------
def test_an_unknown_identifier_exits_1_and_is_logged_as_not_found(home):
    before = len(log_rows(home)) if query(home, "select count(*) from duckdb_tables() where schema_name = "
                                                "'privacy' and table_name = 'access_requests'")[0][0] else 0
    result, folder = request(home, "--email", "nobody.at.all@example.invalid", "--verified-by", "Test Clerk")
    assert result.exit_code == 1
    assert "no customer matches" in result.output
    assert folder is None
    rows = log_rows(home)
    assert len(rows) == before + 1
    last = rows[-1]
    assert last["found"] is False and last["identifier_type"] == "email" and last["subject_key"] is None
    assert last["rows"] == 0 and last["datasets"] == 0
    assert "nobody.at.all" not in json.dumps(last, default=str)


def test_exactly_one_identifier_is_required(home):
    result, folder = request(home, "--verified-by", "Test Clerk")
    assert result.exit_code == 2 and folder is None
    result, folder = request(home, "--customer-id", "C1", "--email", "a@b.fi", "--verified-by", "Test Clerk")
    assert result.exit_code == 2 and folder is None


# --- 6. recipients ---------------------------------------------------------------------------------------
def test_a_key_handover_lists_the_access_control_operator_from_the_handover_row(home):
    customer_id, handover_id, operator, disclosed_on = query(home, """
        select customer_id, handover_id, disclosed_to, disclosed_on from staging.stg_services__key_handovers
        where disclosed_to is not null order by customer_id, handover_id limit 1""")[0]
    package, _ = package_of(home, "--customer-id", customer_id)
    recorded = [d for d in package["disclosures"] if d["record"] == handover_id]
    assert len(recorded) == 1
    assert recorded[0]["recipient"] == operator and recorded[0]["date"] == disclosed_on.isoformat()
    assert recorded[0]["rule"] == "access_control"
    handovers = by_table(package)["staging.stg_services__key_handovers"]
    listed = [r for r in handovers["recipients"] if r["recipient"] == operator]
    assert listed and set(listed[0]["fields"]) == {"holder_first_name", "holder_last_name", "holder_phone"}


def test_a_collection_case_lists_the_agency_and_the_standing_recipients_follow_their_rule(home):
    customer_id, case_id, agency = query(home, """
        select customer_id, case_id, agency_name from staging.stg_billing__collection_cases
        where agency_name is not null order by customer_id, case_id limit 1""")[0]
    package, _ = package_of(home, "--customer-id", customer_id)
    recorded = [d for d in package["disclosures"] if d["record"] == case_id]
    assert len(recorded) == 1 and recorded[0]["recipient"] == agency
    tables = by_table(package)
    # the agency received the customer's personal and billing data: listed on both
    for table in ("staging.stg_crm__customers", "staging.stg_billing__invoices"):
        assert agency in {r["recipient"] for r in tables[table]["recipients"]}, table
    # standing disclosures: exactly those whose `customers_where` holds for this customer
    ids = package["customer_ids"]
    for flow in (f for f in DISCLOSURES.flows if f.dataset is None):
        applies = query(home, f"select count(*) from staging.stg_crm__customers where customer_id in "
                              f"(select unnest($ids)) and ({flow.customers_where})", {"ids": ids})[0][0] > 0
        listed = any(d["flow"] == flow.id and d["recipient"] == flow.recipient_name for d in package["disclosures"])
        assert listed == applies, flow.id


def test_each_record_carries_its_expiry_from_the_retention_records(home):
    customer_id = query(home, """
        select customer_id from staging.stg_billing__invoices group by customer_id
        order by count(*) desc, customer_id limit 1""")[0][0]
    package, _ = package_of(home, "--customer-id", customer_id)
    expected = dict(query(home, """
        select record_id, cast(expires_on as varchar) from intermediate.int_retention__records
        where record_type = 'invoice' and customer_id in (select unnest($ids))""", {"ids": package["customer_ids"]}))
    invoices = by_table(package)["staging.stg_billing__invoices"]
    assert invoices["rows"] and expected
    for row in invoices["rows"]:
        assert row["retention"]["expires_on"] == expected[row["values"]["invoice_id"]]
    rule_ids = {r["rule_id"] for r in invoices["retention"]["rules"]}
    assert rule_ids == {"accounting_vouchers"}
    assert all(c["category"] != NOT_PERSONAL for c in invoices["columns"])


# --- finding the person, without a home ------------------------------------------------------------------
def test_find_customers_normalises_like_staging_and_refuses_an_email_shared_by_two_people():
    con = duckdb.connect()
    con.execute("create schema staging")
    con.execute("""create table staging.stg_crm__customers as select * from (values
        ('C1', '010101-123A', 'matti@example.fi'), ('C2', '010101-123A', 'matti@example.fi'),
        ('C3', '020202-456B', 'family@example.fi'), ('C4', '030303-789C', 'family@example.fi'),
        ('C5', null, 'office@example.fi'), ('C6', null, 'office@example.fi')) as t(customer_id, hetu, email)""")
    assert find_customers(con, "hetu", " 010101-123a\u00a0") == (["C1", "C2"], "found")
    assert find_customers(con, "email", "Matti@Example.FI ") == (["C1", "C2"], "found")
    assert find_customers(con, "customer_id", " C2 ") == (["C2", "C1"], "found")  # the asked record first
    assert find_customers(con, "email", "family@example.fi") == ([], "ambiguous")
    assert find_customers(con, "email", "office@example.fi") == ([], "ambiguous")
    assert find_customers(con, "customer_id", "C5") == (["C5"], "found")
    assert find_customers(con, "email", "   ") == ([], "not_found")
    assert find_customers(con, "hetu", "999999-999X") == ([], "not_found")


# --- 7. history: the earlier values of a snapshot's records ------------------------------------------------------
RAW_TABLES = [entity.raw for entity in load_entities()]


def test_every_personal_column_of_a_snapshot_dataset_has_its_history_or_a_reason_not_to():
    sources = history_sources(DATA_MAP, RAW_TABLES)
    assert set(sources) == {"staging.stg_crm__customers", "staging.stg_services__services",
                            "staging.stg_services__key_handovers"}
    not_from_the_export = set()
    for table, source in sources.items():
        dataset = DATA_MAP.datasets[table]
        shown = {dataset.raw_columns.get(c, c) for c in source.columns}
        for column in dataset.personal_columns:
            raw = dataset.raw_columns.get(column, column)
            if column in source.columns or column in (dataset.subject_column, source.key):
                continue
            if raw in shown:  # phone: shown once, as the export held it (phone_raw)
                continue
            assert raw not in source.raw.columns, f"{table}.{column}: its earlier values are not shown"
            not_from_the_export.add(f"{table}.{column}")
    # the only personal column a snapshot does not carry: the objection is a dataset of its own
    assert not_from_the_export == {"staging.stg_crm__customers.objected_to_marketing_on"}
    assert "phone_raw" in sources["staging.stg_crm__customers"].columns
    assert "phone" not in sources["staging.stg_crm__customers"].columns


def next_day_customers(demo_inbox: Path, inbox: Path, customer_id: str, changes: dict[str, str]) -> date:
    """The demo's latest customers export again, under the next export date, with one customer's fields
    changed (that line alone: every other line stays byte for byte). Its export date."""
    latest = sorted((demo_inbox / "crm").glob("customers_*.csv"))[-1]
    day = datetime.strptime(re.search(r"_(\d{8})\.", latest.name)[1], "%Y%m%d").date() + timedelta(days=1)
    lines = latest.read_bytes().decode("utf-8").splitlines(keepends=True)
    header = lines[0].lstrip("\ufeff").rstrip("\r\n").split(";")
    for n, line in enumerate(lines):
        fields = line.rstrip("\r\n").split(";")
        if fields[0] == customer_id:
            assert len(fields) == len(header) and '"' not in line
            for column, value in changes.items():
                fields[header.index(column)] = value
            lines[n] = ";".join(fields) + line[len(line.rstrip("\r\n")):]
            break
    else:
        raise AssertionError(f"{customer_id} is not in {latest.name}")
    target = inbox / "crm" / f"customers_{day:%Y%m%d}.csv"
    target.parent.mkdir(parents=True)
    target.write_bytes("".join(lines).encode("utf-8"))
    return day


def test_the_package_shows_earlier_values_with_their_period_and_the_current_ones_as_before(demo, tmp_path):
    home = copy_home(demo.home, tmp_path / "home")
    unchanged = "(select customer_id from raw_crm.customers group by all having count(*) = 1)"
    # a person with one customer record, a single version of it, an email and a street address
    customer_id, old_email, old_street, valid_from = query(home, f"""
        select customer_id, email, street_address, _valid_from from raw_crm.customers
        where _is_latest and customer_id in {unchanged} and email is not null and street_address is not null
          and hetu in (select hetu from staging.stg_crm__customers group by hetu having count(*) = 1)
          and email not like '%"%' and street_address not like '%;%'
        order by customer_id limit 1""")[0]
    # and a person whose records never changed: customer, services, key handovers one version each
    quiet = query(home, f"""
        select customer_id from staging.stg_crm__customers
        where customer_id in {unchanged} and customer_id <> $1
          and customer_id not in (select customer_id from raw_services.services where not _is_latest)
          and customer_id not in (select customer_id from raw_services.key_handovers where not _is_latest)
          and hetu in (select hetu from staging.stg_crm__customers group by hetu having count(*) = 1)
        order by customer_id limit 1""", [customer_id])[0][0]
    new_email, new_street = "uusi.osoite@example.fi", "Muuttokatu 7 B 12"
    changed_on = next_day_customers(demo.inbox, tmp_path / "inbox", customer_id,
                                    {"email": f" {new_email.upper()} ", "street_address": new_street})
    result = cli(home, "ingest", "--inbox", str(tmp_path / "inbox"))
    assert result.exit_code == 0, result.output

    package, folder = package_of(home, "--customer-id", customer_id)
    customers = by_table(package)["staging.stg_crm__customers"]
    assert customers["history_columns"] and "email" in customers["history_columns"]
    row = next(r for r in customers["rows"] if r["values"]["customer_id"] == customer_id)
    # the current values, as before: staging's, the new ones
    assert (row["values"]["email"], row["values"]["street_address"]) == (new_email, new_street)
    # the earlier ones: only the two fields that changed, each with the period it was valid
    assert row["history"] == {
        "email": [{"value": old_email.strip().lower(), "valid_from": valid_from.isoformat(),
                   "valid_to": changed_on.isoformat()}],
        "street_address": [{"value": old_street.strip(), "valid_from": valid_from.isoformat(),
                            "valid_to": changed_on.isoformat()}]}
    # the datasets of other entities carry none
    assert all("history" not in r for r in by_table(package)["staging.stg_billing__invoices"]["rows"])
    assert by_table(package)["staging.stg_billing__invoices"]["history_columns"] == []
    for lang, heading in (("en", "Earlier values"), ("fi", "Aiemmat arvot")):
        page = (folder / f"access.{lang}.html").read_text(encoding="utf-8")
        section = page[page.index('<section id="staging.stg_crm__customers">'):]
        section = section[:section.index("</section>")]
        assert heading in section
        period = {"en": "valid from {}, replaced {}", "fi": "voimassa {} alkaen, korvattu {}"}[lang].format(
            short_date(valid_from, lang), short_date(changed_on, lang))
        for label, value in (({"en": "Email", "fi": "Sähköposti"}[lang], old_email.strip().lower()),
                             ({"en": "Street address", "fi": "Katuosoite"}[lang], old_street.strip())):
            assert re.search(rf"{label}:</span> {re.escape(value)} <span[^>]*>\({re.escape(period)}\)", section), \
                (lang, label)
        assert new_email in section and new_street in section  # the current values, where they were
        assert "12 months after the value was superseded" in page if lang == "en" else \
            "12 kuukautta siitä, kun tieto korvautui uudella" in page

    # a person whose records never changed: no history, and no block for it
    package, folder = package_of(home, "--customer-id", quiet)
    for table in ("staging.stg_crm__customers", "staging.stg_services__services",
                  "staging.stg_services__key_handovers"):
        assert all(r["history"] == {} for r in by_table(package)[table]["rows"]), table
    for lang, heading in (("en", "Earlier values"), ("fi", "Aiemmat arvot")):
        assert heading not in (folder / f"access.{lang}.html").read_text(encoding="utf-8")
