"""Rectification (GDPR art. 16, 19) through the real CLI: `warehouse rectify` on a copy of the demo home.

One home (module fixture): a customer's last name and a key holder's phone are corrected; the tests read
staging, raw, the audit trail, the recipients listed and the rebuilt analytics database. The last test
ingests a later export that changes the value at the source, which must win. No test prints a value.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import date

import jinja2
import pytest
from conftest import cli, copy_home
from vault import secret_of, settings_of, vault_rows

from core.db import connect
from core.home import PROJECT_DIR, Home
from core.pseudonym import pseudonymous_key
from core.vault import open_vault
from privacy.config import CONFIG_DIR, load_data_map
from privacy.rectify import CLEANERS, REGISTER, recipients, row_key

CUSTOMERS, HANDOVERS = "staging.stg_crm__customers", "staging.stg_services__key_handovers"
NEW_LAST_NAME, SECOND_LAST_NAME, SOURCE_LAST_NAME = "Oikaistu-Sukunimi", "Toinen-Oikaisu", "Lahteen-Muutettu"
NEW_PHONE_TYPED, NEW_PHONE = "040 765 4321", "+358407654321"
# HETU, email address, Finnish phone in E.164, customer number
IDENTIFIERS = r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]|[^@\s]+@[^@\s]+\.[a-z]{2,}|\+358\d|\bC\d{7}\b"


def rectify(home: Home, *args: str, rebuild: bool = False):
    return cli(home, "rectify", "--request-ref", "REQ-2026-001", "--recorded-by", "dpo@example.fi", *args,
               *([] if rebuild else ["--no-rebuild"]))


@pytest.fixture(scope="module")
def home(demo, tmp_path_factory) -> Home:
    """A copy of the demo home, with its inbox (the last test changes a customers export)."""
    home = copy_home(demo.home, tmp_path_factory.mktemp("rectify") / "home")
    shutil.copytree(demo.inbox, home.root / "inbox")
    return home


@pytest.fixture(scope="module")
def person(home) -> dict:
    """A person with a collection case, and their data before the correction."""
    row = vault_rows(home, """
        select c.customer_id, c.last_name, c.einvoice_address is null
        from staging.stg_crm__customers as c
        where c.customer_type = 'person' and c.last_name is not null and not c.is_deleted_at_source
            and c.customer_id in (select customer_id from staging.stg_billing__collection_cases)
        order by c.customer_id limit 1""")
    assert row, "the sample should have a person with a collection case"
    customer_id, last_name, paper = row[0]
    agencies = {a for (a,) in vault_rows(home, "select agency_name from staging.stg_billing__collection_cases "
                                               "where customer_id = ?", [customer_id])}
    return {"id": customer_id, "old": last_name, "agencies": agencies,
            "subcontractor": "Posti Messaging Oy" if paper else "Maventa Oy"}


@pytest.fixture(scope="module")
def holder(home) -> dict:
    """A customer whose key handovers all name one holder phone."""
    row = vault_rows(home, """
        select customer_id, any_value(holder_phone), list(distinct disclosed_to)
        from staging.stg_services__key_handovers
        group by customer_id having count(distinct holder_phone) = 1 and count(*) = count(holder_phone)
        order by customer_id limit 1""")
    assert row, "the sample should have key handovers"
    customer_id, phone, operators = row[0]
    return {"id": customer_id, "old": phone, "operators": set(operators)}


@pytest.fixture(scope="module")
def corrected(home, person, holder) -> dict:
    """Both corrections through the CLI: the last name with the rebuild, the phone without."""
    last_name = rectify(home, "--customer-id", person["id"], "--field", "last_name", "--value", NEW_LAST_NAME,
                        rebuild=True)
    phone = rectify(home, "--customer-id", holder["id"], "--dataset", HANDOVERS, "--field", "holder_phone",
                    "--value", NEW_PHONE_TYPED)
    return {"last_name": last_name, "phone": phone}


def test_staging_shows_the_new_value_and_raw_keeps_the_export(home, person, holder, corrected):
    assert corrected["last_name"].exit_code == 0, corrected["last_name"].output
    assert corrected["phone"].exit_code == 0, corrected["phone"].output
    assert vault_rows(home, "select last_name, rectified_columns from staging.stg_crm__customers "
                            "where customer_id = ?", [person["id"]]) == [(NEW_LAST_NAME, ["last_name"])]
    raw = {v for (v,) in vault_rows(home, "select trim(last_name) from raw_crm.customers where customer_id = ?",
                                    [person["id"]])}
    assert raw == {person["old"]}  # every export version kept as it came
    # The phone is cleaned as staging cleans the exports (E.164), on every handover of the holder, raw too.
    phones = vault_rows(home, "select distinct holder_phone, holder_phone_raw, rectified_columns "
                              "from staging.stg_services__key_handovers where customer_id = ?", [holder["id"]])
    assert phones == [(NEW_PHONE, NEW_PHONE, ["holder_phone"])]
    assert not vault_rows(home, "select 1 from raw_services.key_handovers where holder_phone = ?", [NEW_PHONE_TYPED])
    # Nobody else changed.
    assert vault_rows(home, "select count(*) from staging.stg_crm__customers "
                            "where len(rectified_columns) > 0") == [(1,)]


def test_the_correction_is_in_the_audit_trail(home, person, holder, corrected):
    rows = vault_rows(home, """
        select id, request_ref, recorded_by, customer_id, dataset, column_name, record_id, source_value, old_value,
               new_value, recorded_at is not null
        from privacy.rectifications order by id""")
    assert rows == [
        (1, "REQ-2026-001", "dpo@example.fi", person["id"], CUSTOMERS, "last_name", None, person["old"], person["old"],
         NEW_LAST_NAME, True),
        (2, "REQ-2026-001", "dpo@example.fi", holder["id"], HANDOVERS, "holder_phone", None, holder["old"],
         holder["old"], NEW_PHONE, True)]


def test_the_recipients_listed_are_those_that_received_the_old_value(home, person, holder, corrected):
    con = open_vault(settings_of(home), read_only=True)
    try:
        by_name = recipients(con, person["id"], CUSTOMERS, "last_name", config=CONFIG_DIR)
        by_phone = recipients(con, holder["id"], HANDOVERS, "holder_phone", config=CONFIG_DIR)
        handovers = con.execute(f"select count(*) from {REGISTER} where customer_id = ? and flow_id = 'key_handovers'",
                                [holder["id"]]).fetchone()[0]
    finally:
        con.close()
    # The last name went to the collection agency with each case and to the invoicing subcontractor.
    assert {n.recipient for n in by_name} == person["agencies"] | {person["subcontractor"]}
    assert {n.flow_id for n in by_name} == {"collection_cases", "invoice_printing" if "Posti" in
                                            person["subcontractor"] else "einvoicing"}
    assert all(n.first_on and n.last_on and n.first_on <= n.last_on and n.disclosures >= 1 for n in by_name)
    # The holder's phone went to the access-control operators only, once per handover.
    assert {n.recipient for n in by_phone} == holder["operators"]
    assert {n.flow_id for n in by_phone} == {"key_handovers"} and sum(n.disclosures for n in by_phone) == handovers
    # The CLI lists them: names, dates and counts, never a value.
    output = corrected["last_name"].output + corrected["phone"].output
    for name in person["agencies"] | {person["subcontractor"]} | holder["operators"]:
        assert name in output
    assert "art. 19" in output and "Published" in corrected["last_name"].output
    for value in (person["old"], NEW_LAST_NAME, holder["old"], NEW_PHONE, NEW_PHONE_TYPED, person["id"]):
        assert value not in output


def test_a_field_that_is_not_rectifiable_or_a_value_staging_would_drop_is_refused(home, person, holder):
    before = vault_rows(home, "select count(*) from privacy.rectifications")
    hetu = rectify(home, "--customer-id", person["id"], "--field", "hetu", "--value", "010101-123N")
    assert hetu.exit_code != 0 and "cannot be rectified" in hetu.output and "last_name" in hetu.output
    phone = rectify(home, "--customer-id", person["id"], "--field", "phone", "--value", "not a number")
    assert phone.exit_code != 0 and "phone number" in phone.output
    wrong_dataset = rectify(home, "--customer-id", holder["id"], "--dataset", HANDOVERS, "--field", "last_name",
                            "--value", "X")
    assert wrong_dataset.exit_code != 0 and "holder_last_name" in wrong_dataset.output
    unknown = rectify(home, "--customer-id", "C9999999", "--field", "last_name", "--value", "X")
    assert unknown.exit_code != 0 and "no such customer" in unknown.output
    assert vault_rows(home, "select count(*) from privacy.rectifications") == before


def test_a_customer_the_retention_enforcement_erased_is_not_rectified(home):
    customer_id = vault_rows(home, "select max(customer_id) from staging.stg_crm__customers")[0][0]
    key = pseudonymous_key(secret_of(home), customer_id)
    con = open_vault(settings_of(home))
    try:
        con.execute("insert into retention.erasure_ledger (record_key, record_type, category, rule_id, action, "
                    "erased_on) values (?, 'customer', 'identity_and_contact', 'test', 'anonymise', current_date)",
                    [key])
    finally:
        con.close()
    try:
        refused = rectify(home, "--customer-id", customer_id, "--field", "city", "--value", "Espoo")
        assert refused.exit_code != 0 and "erased" in refused.output
    finally:
        con = open_vault(settings_of(home))
        try:
            con.execute("delete from retention.erasure_ledger where record_key = ?", [key])
        finally:
            con.close()


def test_several_different_values_need_the_row_named(home):
    row = vault_rows(home, """
        select customer_id, min(handover_id) from staging.stg_services__key_handovers
        group by customer_id having count(distinct holder_last_name) > 1 order by customer_id limit 1""")
    if not row:
        pytest.skip("no customer with two key holders in this sample")
    customer_id, handover_id = row[0]
    refused = rectify(home, "--customer-id", customer_id, "--dataset", HANDOVERS, "--field", "holder_last_name",
                      "--value", "Avaimenhaltija")
    assert refused.exit_code != 0 and "--record-id" in refused.output
    named = rectify(home, "--customer-id", customer_id, "--dataset", HANDOVERS, "--field", "holder_last_name",
                    "--value", "Avaimenhaltija", "--record-id", handover_id)
    assert named.exit_code == 0, named.output
    changed = vault_rows(home, "select handover_id from staging.stg_services__key_handovers "
                               "where customer_id = ? and holder_last_name = 'Avaimenhaltija'", [customer_id])
    assert changed == [(handover_id,)]


def test_the_analytics_database_still_holds_no_direct_identifier(home, person, holder, corrected):
    """Every text column of every table: no identifier pattern, no personal value of the vault, and the corrected
    values nowhere, not even inside a longer text (business names may contain a surname: compared whole)."""
    values = {person["old"], holder["old"]} | {v for (v,) in vault_rows(home, """
        select distinct unnest([first_name, last_name, email, phone, hetu, street_address])
        from staging.stg_crm__customers""") if v and len(v) >= 6}
    con = connect(home.analytics, read_only=True)
    try:
        columns = con.execute("""select table_schema, table_name, column_name from information_schema.columns
                                 where data_type like 'VARCHAR%'""").fetchall()
        con.execute("create temp table probe as select unnest(?::varchar[]) as v", [sorted(values)])
        hits = []
        for schema, table, column in columns:
            text = f'cast("{column}" as varchar)'
            found = con.execute(f"""
                select count(*) from "{schema}"."{table}"
                where regexp_matches({text}, ?) or contains({text}, ?) or contains({text}, ?)
                    or {text} in (select probe.v from probe)""",
                                [IDENTIFIERS, NEW_LAST_NAME, NEW_PHONE]).fetchone()[0]
            if found:
                hits.append(f"{schema}.{table}.{column}")
    finally:
        con.close()
    assert len(columns) > 20 and hits == []


def test_a_second_correction_of_the_same_field_wins_and_keeps_the_exports_value(home, person, corrected):
    result = rectify(home, "--customer-id", person["id"], "--field", "last_name", "--value", SECOND_LAST_NAME)
    assert result.exit_code == 0, result.output
    assert vault_rows(home, "select last_name from staging.stg_crm__customers where customer_id = ?",
                      [person["id"]]) == [(SECOND_LAST_NAME,)]
    assert vault_rows(home, """select source_value, old_value, new_value from privacy.rectifications
                               where customer_id = ? order by id desc limit 1""", [person["id"]]) == [
        (person["old"], NEW_LAST_NAME, SECOND_LAST_NAME)]


def test_a_later_export_with_a_different_value_wins(home, person, tmp_path):
    """Last: a new customers export that changes the last name at the source replaces the correction."""
    latest = sorted((home.root / "inbox" / "crm").glob("customers_*.csv"))[-1]
    text = latest.read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    header = rows[0]
    for row in rows[1:]:
        if row[header.index("customer_id")] == person["id"]:
            row[header.index("last_name")] = SOURCE_LAST_NAME
    later = tmp_path / "later" / "crm" / f"customers_{date.today():%Y%m%d}.csv"
    later.parent.mkdir(parents=True)
    with later.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=";", lineterminator="\n").writerows(rows)
    ingested = cli(home, "ingest", "--inbox", str(tmp_path / "later"))
    assert ingested.exit_code == 0, ingested.output
    assert vault_rows(home, "select last_name, rectified_columns from staging.stg_crm__customers "
                            "where customer_id = ?", [person["id"]]) == [(SOURCE_LAST_NAME, [])]
    assert vault_rows(home, "select count(*) from privacy.rectifications where customer_id = ?",
                      [person["id"]]) == [(2,)]  # the audit trail stays


# --- the SQL side agrees with the data map --------------------------------------------------------------------
def _render_macros() -> jinja2.environment.TemplateModule:
    class Returned(Exception):
        pass

    def give_back(value):
        raise Returned(value)

    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    env.globals["return"] = give_back
    module = env.from_string((PROJECT_DIR / "macros" / "privacy" / "rectification.sql").read_text()).module

    def rectifiable(dataset):
        try:
            module.rectifiable_columns(dataset)
        except Returned as returned:
            return returned.args[0]
        raise AssertionError("rectifiable_columns returned nothing")
    return rectifiable


def test_the_macros_rectifiable_columns_are_the_data_maps():
    rectifiable = _render_macros()
    data_map = load_data_map()
    for table, dataset in data_map.datasets.items():
        assert rectifiable(table) == dataset.rectifiable, table


def test_each_rectifiable_staging_model_applies_corrections_cleaned_as_its_export():
    data_map = load_data_map()
    for table, dataset in data_map.datasets.items():
        if not dataset.rectifiable:
            continue
        model = table.split(".")[1]
        sql = next(PROJECT_DIR.glob(f"models/staging/*/{model}.sql")).read_text()
        assert re.search(rf"apply_rectifications\(\s*'cleaned', '{table}', key='{row_key(data_map, table)}'", sql)
        cleaners = {column: macro for macro, column in re.findall(r"\{\{ (\w+)\('\w+'\) \}\} as (\w+)", sql)}
        for column in dataset.rectifiable:
            assert cleaners[column] == CLEANERS.get(dataset.columns[column], "clean_string"), (table, column)


def test_the_persons_access_package_shows_the_correction(home, person, corrected):
    from ingest.config import load_entities
    from privacy.access import subject_access
    from retention.policy import load_policy

    result = subject_access(settings_of(home), secret_of(home), load_policy(), "customer_id", person["id"],
                            verified_by="test", raw_tables=[entity.raw for entity in load_entities()])
    package = json.loads(result.json_path.read_text(encoding="utf-8"))
    trail = next(d for d in package["datasets"] if d["table"] == "privacy.rectifications")
    held = vault_rows(home, "select count(*) from privacy.rectifications where customer_id = ?", [person["id"]])
    assert trail["rows_count"] == held[0][0] >= 1
    assert NEW_LAST_NAME in result.json_path.read_text(encoding="utf-8")
