"""The disclosure register (privacy notice § 7): built from the data and privacy/disclosures.yml, checked.

The demo home (tests/conftest.py, read only) gives the clean register; a copy of it with crafted rows in raw and
a variant of the privacy configuration (WAREHOUSE_PRIVACY_CONFIG_DIR) makes each check of the quality suite
`disclosures` fire on its own defect.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from conftest import cli, copy_home
from vault import secret_of, settings_of, vault_rows

from core.db import connect
from core.home import Home
from core.pseudonym import pseudonymous_key
from core.vault import open_vault
from expectations.run import load_suites, run_checks
from privacy.config import CONFIG_DIR, load_data_map, load_disclosures
from privacy.disclosures import DisclosureModelError, register_sql

CONFIG_DIR_ENV = "WAREHOUSE_PRIVACY_CONFIG_DIR"
HANDOVER = "staging.stg_services__key_handovers"
KEY_HANDOVER_FIELDS = {f"{HANDOVER}.holder_first_name", f"{HANDOVER}.holder_last_name", f"{HANDOVER}.holder_phone"}


def analytics_rows(path: Path, sql: str) -> list[tuple]:
    con = connect(path, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def suite():
    return [s for s in load_suites() if s.name == "disclosures"]


def checks(home: Home, tmp_path: Path) -> dict:
    run = run_checks(settings_of(home), secret_of(home), home.analytics, history_db=tmp_path / "history.duckdb",
                     suites=suite())
    return {r.expectation: r for r in run.results}


@pytest.fixture(scope="module")
def home(demo) -> Home:
    return demo.home


def test_register_rows_are_the_handovers_cases_and_served_customers_of_the_vault(home):
    register = dict(((flow, recipient), n) for flow, recipient, n in vault_rows(home, """
        select flow_id, recipient, count(*) from intermediate.int_privacy__disclosures group by all"""))
    handovers = vault_rows(home, "select disclosed_to, count(*) from staging.stg_services__key_handovers group by 1")
    cases = vault_rows(home, "select agency_name, count(*) from staging.stg_billing__collection_cases group by 1")
    paper, electronic = vault_rows(home, """select count(*) filter (where einvoice_address is null),
        count(*) filter (where einvoice_address is not null) from staging.stg_crm__customers""")[0]
    assert handovers and cases and paper and electronic  # the sample has every kind of disclosure
    expected = {("key_handovers", r): n for r, n in handovers}
    expected |= {("collection_cases", r): n for r, n in cases}
    expected |= {("invoice_printing", "Posti Messaging Oy"): paper, ("einvoicing", "Maventa Oy"): electronic}
    assert register == expected
    # One case, one row: the record ids are the case ids (and the handover ids), each once.
    assert sorted(vault_rows(home, "select record_id from intermediate.int_privacy__disclosures "
                                   "where flow_id = 'collection_cases'")) == sorted(
        vault_rows(home, "select case_id from staging.stg_billing__collection_cases"))
    # The mart carries the same rows, keyed pseudonymously.
    secret = secret_of(home)
    ids = vault_rows(home, "select flow_id, record_id, customer_id from intermediate.int_privacy__disclosures")
    mart = analytics_rows(home.analytics, "select flow_id, record_key, customer_key from privacy.disclosures")
    assert sorted(mart) == sorted((f, pseudonymous_key(secret, r), pseudonymous_key(secret, c)) for f, r, c in ids)


def test_a_key_handover_discloses_exactly_the_holders_first_name_last_name_and_phone(home):
    rows = vault_rows(home, """
        select d.fields, d.rule_id, d.recipient = h.disclosed_to, d.disclosed_on = h.disclosed_on,
               d.customer_id = h.customer_id, d.recipient_country, d.is_registered_recipient, d.fields_beyond_rule
        from intermediate.int_privacy__disclosures as d
        inner join staging.stg_services__key_handovers as h on d.record_id = h.handover_id
        where d.flow_id = 'key_handovers'""")
    assert len(rows) == vault_rows(home, "select count(*) from staging.stg_services__key_handovers")[0][0]
    for fields, rule, same_recipient, same_day, same_customer, country, registered, beyond in rows:
        assert set(fields) == KEY_HANDOVER_FIELDS and len(fields) == 3
        assert (rule, same_recipient, same_day, same_customer) == ("access_control", True, True, True)
        assert (country, registered, beyond) == ("FI", True, [])


def test_collection_cases_carry_the_agencys_country_and_standing_flows_date_from_since_or_creation(home):
    mismatched = vault_rows(home, """
        select count(*) from intermediate.int_privacy__disclosures as d
        inner join staging.stg_billing__collection_cases as c on d.record_id = c.case_id
        where d.flow_id = 'collection_cases'
            and (d.recipient_country is distinct from c.agency_country_code
                 or d.disclosed_on is distinct from c.handed_over_on
                 or not list_contains(d.fields, 'staging.stg_crm__customers.hetu'))""")
    assert mismatched == [(0,)]
    dates = vault_rows(home, """
        select d.disclosed_on = greatest(date '2019-01-01', cast(c.created_at as date)), count(*)
        from intermediate.int_privacy__disclosures as d
        inner join staging.stg_crm__customers as c on d.record_id = c.customer_id
        where d.flow_kind = 'standing' group by all""")
    customers = vault_rows(home, "select count(*) from staging.stg_crm__customers")[0][0]
    assert dates == [(True, customers)]  # each customer served by exactly one of the two subcontractors


def test_the_checks_pass_on_the_sample(home, tmp_path):
    results = checks(home, tmp_path)
    assert set(results) == {"fields_within_rule", "recipient_registered", "outside_eea_has_safeguard"}
    for result in results.values():
        assert result.severity == "error"
        assert result.success and not result.raised and not result.skipped and result.unexpected_count == 0


def test_the_mart_holds_no_direct_identifier(home):
    names = {v for (v,) in vault_rows(home, """
        select distinct unnest([holder_first_name, holder_last_name, holder_phone, handover_id, customer_id])
        from staging.stg_services__key_handovers
        union select distinct unnest([first_name, last_name, email, phone, hetu, customer_id])
        from staging.stg_crm__customers""") if v and len(v) >= 6}
    text = " ".join(str(row) for row in analytics_rows(home.analytics, "from privacy.disclosures"))
    assert not re.search(r"\bC\d{7}\b|\bH\d{8}\b|@|\+358", text)
    assert [v for v in names if v in text] == []


def test_a_flow_on_a_dataset_the_model_does_not_ref_names_the_ref_to_add():
    data_map = load_data_map()
    disclosures = load_disclosures(CONFIG_DIR, data_map)
    flow = replace(disclosures.flows[0], id="ticket_archive", dataset="staging.stg_crm__tickets", key="ticket_id",
                   recipient="channel", date="opened_at", fields=["staging.stg_crm__tickets.subject"])
    relations = {t: t for t in ("staging.stg_crm__customers", HANDOVER, "staging.stg_billing__collection_cases")}
    register_sql(data_map, disclosures, relations)  # the shipped flows need nothing more
    with pytest.raises(DisclosureModelError, match=r'ticket_archive.*dbt\.ref\("stg_crm__tickets"\).*'
                                                   r'int_privacy__disclosures\.py'):
        register_sql(data_map, replace(disclosures, flows=[*disclosures.flows, flow]), relations)
    norway = replace(disclosures, eea_countries=[*disclosures.eea_countries[:-1], False])
    with pytest.raises(DisclosureModelError, match="NO"):
        register_sql(data_map, norway, relations)


# --- each check fires on its defect -------------------------------------------------------------------------
UNREGISTERED_OPERATOR = "Guardian Access Ltd"  # a key handover to an operator nobody registered
LINDORFF = "Lindorff Oy"  # registered, but for debt collection: a key holder's data is beyond its rule
LOWELL = "Lowell Financial Ltd"  # registered in the variant, in the UK, without a safeguard
CABOT = "Cabot Credit Management Ltd"  # registered in the variant, in the UK, with a safeguard
ACME = "Acme Collections Inc"  # not registered, in the US


def _variant_config(folder: Path) -> Path:
    """The shipped privacy configuration, with an extra field on key handovers and two UK agencies."""
    for name in ("data_map.yml", "register.yml", "disclosures.yml"):
        shutil.copy(CONFIG_DIR / name, folder / name)
    spec = yaml.safe_load((CONFIG_DIR / "disclosures.yml").read_text(encoding="utf-8"))
    spec["recipients"] += [{"name": LOWELL, "rule": "debt_collection", "country": "GB"},
                           {"name": CABOT, "rule": "debt_collection", "country": "GB",
                            "safeguard": "adequacy decision (EU) 2021/1772"}]
    flow = next(f for f in spec["flows"] if f["id"] == "key_handovers")
    flow["fields"] = [*flow["fields"], "site_code"]
    (folder / "disclosures.yml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    load_disclosures(folder)  # still a valid configuration
    return folder


@pytest.fixture(scope="module")
def variant(home, tmp_path_factory):
    """A copy of the home with crafted disclosures in raw, rebuilt with the variant configuration."""
    crafted = copy_home(home, tmp_path_factory.mktemp("variant") / "home")
    con = open_vault(settings_of(crafted))
    try:
        latest = "(select max(_load_id) from raw_services.key_handovers)"
        for n, operator in enumerate((UNREGISTERED_OPERATOR, LINDORFF), start=1):
            con.execute(f"""insert into raw_services.key_handovers
                select * replace ('HX000000{n}' as handover_id, ? as disclosed_to)
                from raw_services.key_handovers where _load_id = {latest} limit 1""", [operator])
        for n, (agency, country) in enumerate(((LOWELL, "GB"), (CABOT, "GB"), (ACME, "US")), start=1):
            con.execute("""insert into raw_billing.collection_cases
                select * replace ('KX000000' || ? as case_id, ? as agency_name, ? as agency_country)
                from raw_billing.collection_cases
                where _load_id = (select max(_load_id) from raw_billing.collection_cases) limit 1""",
                        [n, agency, country])
    finally:
        con.close()
    config = _variant_config(tmp_path_factory.mktemp("privacy-config"))
    result = cli(crafted, "build", env={CONFIG_DIR_ENV: str(config)})
    assert "Published" in result.output, result.output
    return crafted


def _keys(home: Home, flow: str, ids: list[str]) -> set[str]:
    secret = secret_of(home)
    return {f"{flow}/{pseudonymous_key(secret, i)}" for i in ids}


def test_the_crafted_disclosures_are_in_the_register_with_their_flags(variant):
    rows = {r[0]: r[1:] for r in vault_rows(variant, """
        select record_id, recipient_country, is_registered_recipient, fields_beyond_rule, is_outside_eea,
               has_safeguard
        from intermediate.int_privacy__disclosures where record_id like 'HX%' or record_id like 'KX%'""")}
    site = f"{HANDOVER}.site_code"
    assert rows["HX0000001"] == (None, False, [site], None, False)  # the flow's own rule: site code is extra
    assert rows["HX0000002"][1] is True  # Lindorff is registered, for debt collection: the holder's data is extra
    assert set(rows["HX0000002"][2]) == KEY_HANDOVER_FIELDS | {site}
    assert rows["KX0000001"] == ("GB", True, [], True, False)
    assert rows["KX0000002"] == ("GB", True, [], True, True)
    assert rows["KX0000003"] == ("US", False, [], True, False)


def test_each_check_fires_on_its_defect_and_names_the_disclosures(variant, tmp_path):
    results = checks(variant, tmp_path)
    handovers = [h for (h,) in vault_rows(variant, "select handover_id from staging.stg_services__key_handovers")]

    beyond = results["fields_within_rule"]
    assert not beyond.success and not beyond.raised
    assert beyond.unexpected_count == len(handovers)  # every handover now sends the site code too
    assert set(beyond.example_keys) <= _keys(variant, "key_handovers", handovers)

    unregistered = results["recipient_registered"]
    assert not unregistered.success and unregistered.unexpected_count == 2
    assert set(unregistered.example_keys) == (_keys(variant, "key_handovers", ["HX0000001"])
                                              | _keys(variant, "collection_cases", ["KX0000003"]))

    no_safeguard = results["outside_eea_has_safeguard"]
    assert not no_safeguard.success and no_safeguard.unexpected_count == 2  # Cabot has its safeguard
    assert set(no_safeguard.example_keys) == _keys(variant, "collection_cases", ["KX0000001", "KX0000003"])
    assert all(r.severity == "error" for r in results.values())
