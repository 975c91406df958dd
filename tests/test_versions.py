"""Snapshots kept as versions (issue 19): per key a version only when its row changes, an end marker when it
vanishes; the accounting of every file; corrected and late files; erasure; the migration of a vault of before."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import cli
from exports import header, write
from vault import settings_of

from core.db import connect
from core.erasure import erase
from core.keys import create_key
from core.pseudonym import pseudonymous_key
from core.schema import ensure_vault_schema, has_versions, row_hash_sql
from core.vault import open_vault
from ingest.config import load_entities
from ingest.load import ingest_inbox
from samplegen import generate_exports
from warehouse.pipeline import erasure_map

ENTITIES = load_entities()
SNAPSHOTS = [e for e in ENTITIES if e.mode == "snapshot"]
TABLES = erasure_map(settings_of(Path("unused")))
PRODUCTS_HEADER, CUSTOMERS_HEADER = header("products"), header("customers")
DAY = date(2024, 1, 5)


@pytest.fixture
def vault(tmp_path):
    con = connect(tmp_path / "vault.duckdb")
    yield con
    con.close()


def ingest(con, inbox: Path, secret: bytes | None = None) -> dict:
    results = ingest_inbox(con, inbox, ENTITIES, scratch=inbox.parent / "scratch", erasure=TABLES, secret=secret)
    return {r.source_file: r for r in results}


def products_file(inbox: Path, day: date, rows: list[str]) -> Path:
    return write(inbox / f"services/products_{day:%Y%m%d}.csv", [PRODUCTS_HEADER, *rows])


def customer(customer_id: str, email: str = "aino@example.fi", street: str = "Kuitukatu 1",
             first: str = "Aino", hetu: str = "010180-123A", language: str = "fi") -> str:
    values = {"customer_id": customer_id, "customer_type": "person", "first_name": first, "last_name": "Virtanen",
              "hetu": hetu, "email": email, "phone": "040 123 4567", "street_address": street,
              "postal_code": "00100", "city": "Helsinki", "country_code": "FI", "language": language,
              "marketing_consent": "0", "created_at": "1.1.2020 8:00:00", "updated_at": "1.1.2024 8:00:00"}
    return ";".join(values.get(c, "") for c in CUSTOMERS_HEADER.split(";"))


def versions(con, table: str = "raw_services.products", key: str = "product_code") -> list[tuple]:
    """Each version: key, valid from, valid to, latest, the file and line that made it, the file that ended it."""
    return con.execute(f"""
        select {key}, _valid_from, _valid_to, _is_latest, _source_file, _line, ended.source_file
        from {table} left join ingest.files as ended on ended.load_id = _ended_load_id
        order by all""").fetchall()


def latest(con, table: str = "raw_services.products", key: str = "product_code") -> dict:
    """What staging shows: per key its latest version, deleted at the source on its `_valid_to`."""
    return {r[0]: r[1:] for r in con.execute(
        f"select {key}, _valid_to is not null, _valid_to from {table} where _is_latest").fetchall()}


# --- the accounting ------------------------------------------------------------------------------------------
def test_every_row_is_changed_unchanged_or_rejected_in_the_result_the_load_log_and_json(tmp_path):
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    products_file(inbox, DAY, ["BB;Kuitu;broadband;29,90;24", "VPS;VPS;vps;10,00;24", "OLD;ADSL;broadband;9,90;24",
                               "BAD;Rikki;vps;1,0x;24"])
    products_file(inbox, DAY + timedelta(1), [
        "BB;Kuitu;broadband;29,90;24",  # unchanged
        "VPS;VPS;vps;11,00;24",  # changed
        "NEW;Uusi;vps;5,00;24",  # new
        "BAD;Rikki;vps;1,0x;24",  # rejected again
        "BB;Kuitu;broadband;29,90;24",  # BB again: its later line wins, the same as its version
    ])  # OLD gone: closed, no row of this file
    outcome = cli(home, "ingest", "--inbox", str(inbox), "--json")
    assert outcome.exit_code == 0, outcome.output
    results = {r["source_file"]: r for r in map(json.loads, outcome.stdout.splitlines())}
    counts = [(r["rows_read"], r["rows_loaded"], r["rows_changed"], r["rows_unchanged"], r["rows_rejected"])
              for _, r in sorted(results.items())]
    assert counts == [(4, 3, 3, 0, 1), (5, 4, 2, 2, 1)]
    assert all(r["rows_read"] == r["rows_changed"] + r["rows_unchanged"] + r["rows_rejected"]
               for r in results.values())
    con = open_vault(settings_of(home), read_only=True)
    try:
        logged = con.execute("select rows_read, rows_loaded, rows_changed, rows_unchanged, rows_rejected "
                             "from ingest.files order by load_id").fetchall()
        assert logged == counts
        assert latest(con) == {"BB": (False, None), "NEW": (False, None), "OLD": (True, DAY + timedelta(1)),
                               "VPS": (False, None)}
    finally:
        con.close()


def test_a_delta_file_counts_every_row_as_changed(vault, tmp_path):
    inbox = tmp_path / "inbox"
    write(inbox / "billing/payments_20240201.csv", [
        header("payments"), "P1;I1;1.2.2024;10,00;card;;1.2.2024 8:00:00",
        "P2;I2;1.2.2024;20,00;card;;1.2.2024 8:00:00"])
    [result] = ingest(vault, inbox).values()
    assert (result.rows_read, result.rows_changed, result.rows_unchanged) == (2, 2, 0)


# --- identical days ------------------------------------------------------------------------------------------
def test_sixty_identical_snapshot_days_add_no_raw_rows(vault, tmp_path):
    exports, inbox = tmp_path / "exports", tmp_path / "inbox"
    generate_exports(exports, customers=40, seed=3, start=date(2023, 1, 1), end=DAY, days=1)
    for path in exports.glob("*/*.*"):
        if any(path.name.startswith(e.entity + "_") for e in SNAPSHOTS):
            write(inbox / path.relative_to(exports), path.read_text(encoding="utf-8"))
    first = ingest(vault, inbox)
    raw = {e.raw_table: vault.execute(f"select count(*) from {e.raw_table}").fetchone()[0] for e in SNAPSHOTS}
    assert all(raw.values()) and {r.rows_changed for r in first.values()} != {0}

    for path in list(inbox.glob("*/*.csv")):
        for n in range(1, 61):
            shutil.copy(path, path.with_name(path.name.replace(f"{DAY:%Y%m%d}", f"{DAY + timedelta(n):%Y%m%d}")))
    later = ingest(vault, inbox)
    assert {r.status for r in later.values()} == {"loaded", "unchanged"}
    loaded = [r for r in later.values() if r.status == "loaded"]
    assert len(loaded) == 60 * len(SNAPSHOTS)
    assert all(r.rows_changed == 0 and r.rows_unchanged == r.rows_loaded > 0 for r in loaded)
    assert {e.raw_table: vault.execute(f"select count(*) from {e.raw_table}").fetchone()[0] for e in SNAPSHOTS} == raw
    assert vault.execute("select count(*) from raw_crm.customers where _valid_to is not null").fetchone()[0] == 0


# --- changes, end markers, lineage ---------------------------------------------------------------------------
def test_a_changed_email_or_address_makes_one_version_and_closes_the_old_with_the_new_files_lineage(vault, tmp_path):
    inbox = tmp_path / "inbox"
    day2 = DAY + timedelta(1)
    write(inbox / f"crm/customers_{DAY:%Y%m%d}.csv", [
        CUSTOMERS_HEADER, customer("C0000001"), customer("C0000002", email="b@example.fi"),
        customer("C0000003", email="c@example.fi")])
    write(inbox / f"crm/customers_{day2:%Y%m%d}.csv", [
        CUSTOMERS_HEADER, customer("C0000003", email="c@example.fi", street="Uusikatu 2"),  # moved (and line 2 now)
        customer("C0000002", email="b@example.fi"), customer("C0000001", email="aino.v@example.fi")])
    results = ingest(vault, inbox)
    assert [(r.rows_changed, r.rows_unchanged) for _, r in sorted(results.items())] == [(3, 0), (2, 1)]
    first, second = (f"crm/customers_{d:%Y%m%d}.csv" for d in (DAY, day2))
    assert versions(vault, "raw_crm.customers", "customer_id") == [
        ("C0000001", DAY, day2, False, first, 2, second),
        ("C0000001", day2, None, True, second, 4, None),
        ("C0000002", DAY, None, True, first, 3, None),
        ("C0000003", DAY, day2, False, first, 4, second),
        ("C0000003", day2, None, True, second, 2, None),
    ]
    current = dict(vault.execute("select customer_id, email from raw_crm.customers where _valid_to is null "
                                 "and _is_latest").fetchall())
    assert current == {"C0000001": "aino.v@example.fi", "C0000002": "b@example.fi", "C0000003": "c@example.fi"}
    load_ids = vault.execute("select _load_id, _export_date from raw_crm.customers "
                             "where customer_id = 'C0000001' order by _valid_from").fetchall()
    assert [d for _, d in load_ids] == [DAY, day2] and load_ids[0][0] < load_ids[1][0]


def test_a_vanished_key_gets_an_end_marker_and_a_reappearing_one_a_new_version(vault, tmp_path):
    inbox = tmp_path / "inbox"
    days = [DAY + timedelta(n) for n in range(3)]
    products_file(inbox, days[0], ["BB;Kuitu;broadband;29,90;24", "VPS;VPS;vps;10,00;24"])
    products_file(inbox, days[1], ["BB;Kuitu;broadband;29,90;24"])
    ingest(vault, inbox)
    assert latest(vault) == {"BB": (False, None), "VPS": (True, days[1])}

    products_file(inbox, days[2], ["VPS;VPS;vps;10,00;24", "BB;Kuitu;broadband;29,90;24"])
    [result] = [r for r in ingest(vault, inbox).values() if r.status == "loaded"]
    assert (result.rows_changed, result.rows_unchanged) == (1, 1)
    names = [f"services/products_{d:%Y%m%d}.csv" for d in days]
    assert versions(vault) == [
        ("BB", days[0], None, True, names[0], 2, None),
        ("VPS", days[0], days[1], False, names[0], 3, names[1]),
        ("VPS", days[2], None, True, names[2], 2, None),
    ]
    assert latest(vault) == {"BB": (False, None), "VPS": (False, None)}


def test_rerunning_the_ingest_changes_nothing(vault, tmp_path):
    inbox = tmp_path / "inbox"
    products_file(inbox, DAY, ["BB;Kuitu;broadband;29,90;24", "VPS;VPS;vps;10,00;24"])
    products_file(inbox, DAY + timedelta(1), ["BB;Kuitu;broadband;31,90;24"])
    ingest(vault, inbox)
    before = vault.execute("select * from raw_services.products order by all").fetchall()
    files = vault.execute("select count(*) from ingest.files").fetchone()[0]
    for path in inbox.glob("*/*.csv"):  # touched: hashed again, the same content
        path.write_bytes(path.read_bytes())
    assert {r.status for r in ingest(vault, inbox).values()} == {"unchanged"}
    assert vault.execute("select * from raw_services.products order by all").fetchall() == before
    assert vault.execute("select count(*) from ingest.files").fetchone()[0] == files


# --- corrected and late files --------------------------------------------------------------------------------
def random_snapshots(seed: int, days: int = 5) -> list[list[str]]:
    """Snapshots of a few products over `days`: each present at one of two prices, absent, or on a line the
    ingest rejects; BB is always there (an empty snapshot is refused)."""
    rng = random.Random(seed)
    snapshots = []
    for _ in range(days):
        rows = ["BB;Kuitu;broadband;29,90;24"]
        for code in ("P1", "P2", "P3", "P4", "P5", "P6"):
            kind = rng.choice(["a", "a", "b", "absent", "rejected"])
            if kind != "absent":
                price = {"a": "1,00", "b": "2,00", "rejected": "1,0x"}[kind]
                rows.append(f"{code};Tuote;vps;{price};24")
        rng.shuffle(rows)
        snapshots.append(rows)
    return snapshots


def comparable(con) -> list[tuple]:
    """The versions without what depends on the order files came in (load ids) and lines not known (None)."""
    return con.execute("""
        select product_code, monthly_list_price, _row_hash, _valid_from, _valid_to, _is_latest, _source_file,
            _export_date, ended.source_file
        from raw_services.products left join ingest.files as ended on ended.load_id = _ended_load_id
        order by all""").fetchall()


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", ["corrected newest", "corrected older", "late older"])
def test_a_corrected_or_late_file_gives_the_versions_of_loading_the_final_files_in_order(tmp_path, seed, case):
    """A corrected file replaces its day's snapshot: the newest (undo, then apply) or an older one (that day's
    changes replayed over the days after it, each a full snapshot of its own), and a file of a day missed that
    arrives late: the versions equal those of a vault that loaded the final files in order."""
    days = [DAY + timedelta(n) for n in range(5)]
    snapshots = random_snapshots(seed)
    corrected_day = 4 if case == "corrected newest" else 2
    final = [*snapshots]
    final[corrected_day] = random_snapshots(seed + 100)[corrected_day]

    con = connect(tmp_path / "vault.duckdb")
    inbox = tmp_path / "inbox"
    for n, rows in enumerate(snapshots):
        if not (case == "late older" and n == corrected_day):
            products_file(inbox, days[n], rows)
    ingest(con, inbox)
    products_file(inbox, days[corrected_day], final[corrected_day])
    [result] = [r for r in ingest(con, inbox).values() if r.status == "loaded"]
    assert result.rows_read == result.rows_changed + result.rows_unchanged + result.rows_rejected

    fresh = connect(tmp_path / "fresh.duckdb")
    fresh_inbox = tmp_path / "fresh-inbox"
    for n, rows in enumerate(final):
        products_file(fresh_inbox, days[n], rows)
    ingest(fresh, fresh_inbox)
    got, want = comparable(con), comparable(fresh)
    assert got == want
    # lines: those of the file that made the version; not known where a rejected row listed a key again, nor
    # (after the correction only) where the row was the same as a version since split, on a day after it
    lines = "select product_code, _valid_from, _line from raw_services.products order by all"
    unknown = [(c, f) for c, f, line in con.execute(lines).fetchall() if line is None]
    assert [r for r in con.execute(lines).fetchall() if r[2] is not None] == \
        [r for r in fresh.execute(lines).fetchall() if r[:2] not in unknown]
    split = set(unknown) - {(c, f) for c, f, line in fresh.execute(lines).fetchall() if line is None}
    assert all(f > days[corrected_day] for _, f in split)
    con.close()
    fresh.close()


def test_a_key_listed_again_on_a_rejected_row_is_listed_with_its_last_content(vault, tmp_path):
    """Unreadable is not deleted: a key gone from one snapshot and on a rejected line of the next is listed
    again, with what was last read of it, until it is gone again (as staging showed it from every row)."""
    inbox = tmp_path / "inbox"
    days = [DAY + timedelta(n) for n in range(4)]
    products_file(inbox, days[0], ["BB;Kuitu;broadband;29,90;24", "P1;Tuote;vps;1,00;24"])
    products_file(inbox, days[1], ["BB;Kuitu;broadband;29,90;24"])
    products_file(inbox, days[2], ["BB;Kuitu;broadband;29,90;24", "P1;Tuote;vps;1,0x;24"])
    ingest(vault, inbox)
    assert latest(vault)["P1"] == (False, None)
    products_file(inbox, days[3], ["BB;Kuitu;broadband;29,90;24"])
    ingest(vault, inbox)
    assert latest(vault)["P1"] == (True, days[3])
    names = [f"services/products_{d:%Y%m%d}.csv" for d in days]
    assert versions(vault)[1:] == [("P1", days[0], days[1], False, names[0], 3, names[1]),
                                   ("P1", days[2], days[3], True, names[2], None, names[3])]


def test_an_unreadable_row_keeps_the_keys_version_open_across_a_corrected_day(vault, tmp_path):
    """Unreadable is not deleted, also when the day before it is corrected: the key keeps the corrected state."""
    inbox = tmp_path / "inbox"
    days = [DAY + timedelta(n) for n in range(3)]
    products_file(inbox, days[0], ["BB;Kuitu;broadband;29,90;24", "P1;Tuote;vps;1,00;24"])
    products_file(inbox, days[1], ["BB;Kuitu;broadband;29,90;24", "P1;Tuote;vps;1,00;24"])
    products_file(inbox, days[2], ["BB;Kuitu;broadband;29,90;24", "P1;Tuote;vps;1,0x;24"])  # P1 unreadable
    ingest(vault, inbox)
    assert latest(vault)["P1"] == (False, None)
    products_file(inbox, days[1], ["BB;Kuitu;broadband;29,90;24", "P1;Tuote;vps;2,00;24"])
    ingest(vault, inbox)
    assert vault.execute("select monthly_list_price::varchar, _valid_from, _valid_to from raw_services.products "
                         "where product_code = 'P1' order by _valid_from").fetchall() == [
        ("1.00", days[0], days[1]), ("2.00", days[1], None)]


# --- erasure -------------------------------------------------------------------------------------------------
def test_erasure_reaches_every_version_and_a_later_export_brings_nothing_back(vault, tmp_path):
    secret = create_key(tmp_path / "pseudonym.key")
    inbox = tmp_path / "inbox"
    days = [DAY + timedelta(n) for n in range(4)]
    emails = ["aino@example.fi", "aino.v@example.fi", "aino.virtanen@example.fi"]
    for day, email in zip(days, emails, strict=False):
        write(inbox / f"crm/customers_{day:%Y%m%d}.csv", [CUSTOMERS_HEADER, customer("C0000001", email=email),
                                                          customer("C0000002", first="Matti", hetu="290284-9876")])
    ingest(vault, inbox, secret)
    assert vault.execute("select count(*) from raw_crm.customers where customer_id = 'C0000001'").fetchone()[0] == 3

    ensure_vault_schema(vault)
    vault.execute("insert into retention.erasure_ledger (record_key, record_type, category, rule_id, action, "
                  "erased_on) values (?, 'customer', 'test', 'test', 'anonymise', current_date)",
                  [pseudonymous_key(secret, "C0000001")])
    vault.begin()
    touched = erase(vault, TABLES)
    vault.commit()
    assert touched["raw_crm.customers"] == 3  # every version
    rows = vault.execute("select first_name, hetu, email, street_address from raw_crm.customers "
                         "where customer_id = 'C0000001'").fetchall()
    assert rows == [(None, None, None, None)] * 3
    # each version's hash is of what it holds now: no hash of the erased values is kept
    columns = list(next(e for e in ENTITIES if e.entity == "customers").columns)
    assert vault.execute(f"select count(*) from raw_crm.customers where _row_hash <> {row_hash_sql(columns)}"
                         ).fetchone()[0] == 0

    # the CRM still exports the customer, unchanged and then changed: erased as loaded, no data comes back
    write(inbox / f"crm/customers_{days[3]:%Y%m%d}.csv", [CUSTOMERS_HEADER, customer("C0000001", email=emails[2]),
                                                          customer("C0000002", first="Matti", hetu="290284-9876")])
    result = ingest(vault, inbox, secret)[f"crm/customers_{days[3]:%Y%m%d}.csv"]
    assert (result.rows_erased, result.rows_changed, result.rows_unchanged) == (1, 0, 2)
    write(inbox / f"crm/customers_{days[3] + timedelta(1):%Y%m%d}.csv", [
        CUSTOMERS_HEADER, customer("C0000001", email="uusi@example.fi", street="Uusikatu 9"),
        customer("C0000002", first="Matti", hetu="290284-9876")])
    result = ingest(vault, inbox, secret)[f"crm/customers_{days[3] + timedelta(1):%Y%m%d}.csv"]
    assert (result.rows_erased, result.rows_changed) == (1, 0)  # new contact data: erased, the same as before
    write(inbox / f"crm/customers_{days[3] + timedelta(2):%Y%m%d}.csv", [
        CUSTOMERS_HEADER, customer("C0000001", email="uusi@example.fi", language="sv"),
        customer("C0000002", first="Matti", hetu="290284-9876")])
    result = ingest(vault, inbox, secret)[f"crm/customers_{days[3] + timedelta(2):%Y%m%d}.csv"]
    assert (result.rows_erased, result.rows_changed) == (1, 1)  # a new language: a version, without the contact
    assert vault.execute("select count(*) from raw_crm.customers where customer_id = 'C0000001' and "
                         "(first_name is not null or email is not null or hetu is not null "
                         "or street_address is not null)").fetchone()[0] == 0
    assert vault.execute("select count(*) from raw_crm.customers where customer_id = 'C0000002' "
                         "and hetu = '290284-9876'").fetchone()[0] == 1


def test_a_deleted_record_makes_no_version_when_exported_again(vault, tmp_path):
    secret = create_key(tmp_path / "pseudonym.key")
    inbox = tmp_path / "inbox"
    handovers = [header("key_handovers"),
                 "H1;C0000006;ESP1;K1;Pekka;Avain;040 765 4321;1.1.2019;1.1.2023;Securitas Oy;1.1.2019",
                 "H2;C0000006;ESP1;K2;Pekka;Avain;040 765 4321;1.1.2019;;Securitas Oy;1.1.2019"]
    write(inbox / f"services/key_handovers_{DAY:%Y%m%d}.csv", handovers)
    ingest(vault, inbox, secret)
    ensure_vault_schema(vault)
    vault.execute("insert into retention.erasure_ledger (record_key, record_type, category, rule_id, action, "
                  "erased_on) values (?, 'key_handover', 'test', 'test', 'delete', current_date)",
                  [pseudonymous_key(secret, "H1")])
    vault.begin()
    erase(vault, TABLES)
    vault.commit()
    write(inbox / f"services/key_handovers_{DAY + timedelta(1):%Y%m%d}.csv", handovers)
    result = ingest(vault, inbox, secret)[f"services/key_handovers_{DAY + timedelta(1):%Y%m%d}.csv"]
    assert (result.rows_erased, result.rows_changed, result.rows_unchanged) == (1, 0, 2)
    assert vault.execute("select handover_id, _valid_to from raw_services.key_handovers").fetchall() == [("H2", None)]



def test_an_erased_superseded_version_goes_alone_and_no_snapshot_of_its_days_brings_it_back(vault, tmp_path):
    """A closed version is a record of its own (`customer_version`, `<id>@<valid_from>`, privacy/config.py):
    erasing it deletes that version only, never a key's latest one. The ingest replays a snapshot of an old
    day over the days after it: one dated before the erased version was superseded drops that customer's row
    (it would make the version again), one dated after it is a snapshot like any other."""
    secret = create_key(tmp_path / "pseudonym.key")
    inbox = tmp_path / "inbox"
    days = [DAY + timedelta(n) for n in range(4)]
    emails = ["a@example.fi", "b@example.fi", "c@example.fi"]

    def snapshot(day: date, email: str, other: str = "matti@example.fi") -> Path:
        return write(inbox / f"crm/customers_{day:%Y%m%d}.csv", [
            CUSTOMERS_HEADER, customer("C0000001", email=email),
            customer("C0000002", first="Matti", hetu="290284-9876", email=other)])

    for day, email in zip(days, emails, strict=False):
        snapshot(day, email)
    ingest(vault, inbox, secret)
    history = ("select email, _valid_from, _valid_to, _is_latest from raw_crm.customers "
               "where customer_id = 'C0000001' order by _valid_from")
    assert [r[0] for r in vault.execute(history).fetchall()] == emails

    ensure_vault_schema(vault)
    erased = [("C0000001", days[0], days[1]),  # the first email, superseded on the second day
              ("C0000002", days[0], None)]     # C0000002's only version is its latest: never a superseded one
    vault.executemany("""
        insert into retention.erasure_ledger (record_key, record_type, category, rule_id, action, erased_on,
            version_of, event_on)
        values (?, 'customer_version', 'superseded_values', 'test', 'delete', current_date, ?, ?)""",
        [(pseudonymous_key(secret, f"{c}@{valid_from}"), pseudonymous_key(secret, c), superseded)
         for c, valid_from, superseded in erased])
    vault.begin()
    touched = erase(vault, TABLES)
    vault.commit()
    assert touched["raw_crm.customers"] == 1
    kept = [("b@example.fi", days[1], days[2], False), ("c@example.fi", days[2], None, True)]
    assert vault.execute(history).fetchall() == kept
    assert vault.execute("select count(*) from raw_crm.customers where customer_id = 'C0000002'").fetchone()[0] == 1

    # the next day: a snapshot like any other, from its date on
    snapshot(days[3], emails[2])
    assert ingest(vault, inbox, secret)[f"crm/customers_{days[3]:%Y%m%d}.csv"].rows_changed == 0
    # the first day corrected (C0000002 too), and the day before it arriving late
    snapshot(days[0], "a2@example.fi", other="matti.v@example.fi")
    before = days[0] - timedelta(1)
    snapshot(before, "a@example.fi")
    results = ingest(vault, inbox, secret)
    assert results[f"crm/customers_{days[0]:%Y%m%d}.csv"].rows_erased == 1
    assert results[f"crm/customers_{before:%Y%m%d}.csv"].rows_erased == 1
    assert vault.execute(history).fetchall() == kept  # nothing before the second day comes back
    assert vault.execute("select email, _valid_from, _valid_to from raw_crm.customers where customer_id = "
                         "'C0000002' order by _valid_from").fetchall() == [
        ("matti@example.fi", before, days[0]), ("matti.v@example.fi", days[0], days[1]),
        ("matti@example.fi", days[1], None)]  # a customer without an erased version replays as before

    # a corrected file of a day after the erased version was superseded is replayed as usual
    snapshot(days[1], "b2@example.fi")
    assert ingest(vault, inbox, secret)[f"crm/customers_{days[1]:%Y%m%d}.csv"].rows_erased == 0
    assert vault.execute(history).fetchall() == [("b2@example.fi", days[1], days[2], False), kept[1]]



def test_an_erased_superseded_version_takes_the_text_of_its_records_rejected_lines_of_then(vault, tmp_path):
    """A rejected line holds the record's values of its day: of a day before an erased version was superseded,
    its text goes with that version; the line stays (file, line, column, reason: the file's accounting)."""
    secret = create_key(tmp_path / "pseudonym.key")
    inbox = tmp_path / "inbox"
    days = [DAY + timedelta(n) for n in range(4)]

    def unreadable(line: str) -> str:
        return line.replace("1.1.2020 8:00:00", "ensi kesänä")

    rows = [  # C0000001: its second day rejected (the version stays open), changed on the third, rejected again
        [customer("C0000001", email="a@example.fi"), customer("C0000002", first="Matti", hetu="290284-9876")],
        [unreadable(customer("C0000001", email="a@example.fi")), customer("C0000002", first="Matti",
                                                                          hetu="290284-9876")],
        [customer("C0000001", email="b@example.fi"), customer("C0000002", first="Matti", hetu="290284-9876")],
        [unreadable(customer("C0000001", email="b@example.fi")),
         customer("C0000002", first="Matti", hetu="290284-9876")],
    ]
    rows[1][1] = unreadable(rows[1][1])  # another customer's line of that day
    third = customer("C0000003", first="Liisa", hetu="150375-456B", email="liisa@example.fi")
    for day, lines in zip(days, rows, strict=True):
        write(inbox / f"crm/customers_{day:%Y%m%d}.csv", [CUSTOMERS_HEADER, *lines, third])
    ingest(vault, inbox, secret)
    assert vault.execute("select email, _valid_from, _valid_to from raw_crm.customers where customer_id = "
                         "'C0000001' order by 2").fetchall() == [("a@example.fi", days[0], days[2]),
                                                                 ("b@example.fi", days[2], None)]
    rejects = ("select f.export_date, r.record_key, r.raw_text is not null from ingest.rejects as r "
               "join ingest.files as f using (load_id) order by all")
    assert vault.execute(rejects).fetchall() == [(days[1], "C0000001", True), (days[1], "C0000002", True),
                                                 (days[3], "C0000001", True)]
    ensure_vault_schema(vault)
    vault.execute("""
        insert into retention.erasure_ledger (record_key, record_type, category, rule_id, action, erased_on,
            version_of, event_on)
        values (?, 'customer_version', 'superseded_values', 'test', 'delete', current_date, ?, ?)""",
        [pseudonymous_key(secret, f"C0000001@{days[0]}"), pseudonymous_key(secret, "C0000001"), days[2]])
    vault.begin()
    touched = erase(vault, TABLES)
    vault.commit()
    assert (touched["raw_crm.customers"], touched["ingest.rejects"]) == (1, 1)
    # the line of the second day loses its text; another customer's, and the one of the current values, stay
    assert vault.execute(rejects).fetchall() == [(days[1], "C0000001", False), (days[1], "C0000002", True),
                                                 (days[3], "C0000001", True)]


# --- the migration of a vault of before ----------------------------------------------------------------------
OLD_DAYS = [DAY + timedelta(n) for n in range(4)]


def old_inbox(inbox: Path) -> None:
    """Snapshot files of four days, with a change, a vanished and a reappearing key, rejected lines (of a listed
    key, and of one that had vanished), a key twice in one file, and a corrected file (loaded after the first
    version of its name)."""
    products_file(inbox, OLD_DAYS[0], ["BB;Kuitu;broadband;29,90;24", "VPS;VPS;vps;10,00;24",
                                       "OLD;ADSL;broadband;9,90;24", "GONE;Pois;vps;3,00;24"])
    products_file(inbox, OLD_DAYS[1], ["BB;Kuitu;broadband;31,90;24", "VPS;VPS;vps;10,00;24",
                                       "VPS;VPS;vps;12,00;24"])  # OLD gone; VPS twice, the later line wins
    products_file(inbox, OLD_DAYS[2], ["BB;Kuitu;broadband;31,9x;24", "OLD;ADSL;broadband;9,90;24",
                                       "GONE;Pois;vps;3,0x;24"])  # BB and GONE rejected
    products_file(inbox, OLD_DAYS[3], ["BB;Kuitu;broadband;31,90;24", "NEW;Uusi;vps;1,00;24"])  # VPS, OLD gone
    write(inbox / f"crm/customers_{OLD_DAYS[0]:%Y%m%d}.csv", [CUSTOMERS_HEADER, customer("C0000001"),
                                                              customer("C0000002", email="b@example.fi")])
    write(inbox / f"crm/customers_{OLD_DAYS[1]:%Y%m%d}.csv", [CUSTOMERS_HEADER, customer("C0000001", email="x@y.fi")])


def old_corrections(inbox: Path) -> None:
    write(inbox / f"crm/customers_{OLD_DAYS[1]:%Y%m%d}.csv", [CUSTOMERS_HEADER, customer("C0000001", email="z@y.fi"),
                                                              customer("C0000002", email="b@example.fi")])


def build_old_vault(con, inbox: Path) -> None:
    """A vault as the ingest before versions left it: every row of every snapshot file in raw with its lineage,
    the load log and the rejects, written with plain SQL (read_csv of each file)."""
    ensure_vault_schema(con)
    con.execute("alter table ingest.files drop column rows_changed; alter table ingest.files drop column "
                "rows_unchanged")
    load_id = 0
    paths = sorted(inbox.glob("*/*.csv"))
    for entity in SNAPSHOTS:
        con.execute(f"create schema if not exists {entity.raw_table.split('.')[0]}")
        spec = ", ".join(f'"{c}" {t}' for c, t in entity.columns.items())
        con.execute(f"create table {entity.raw_table} ({spec}, _load_id bigint, _source_file varchar, "
                    "_line bigint, _export_date date)")
    for stage in ("first", "corrections"):
        if stage == "corrections":
            old_corrections(inbox)
            paths = [inbox / f"crm/customers_{OLD_DAYS[1]:%Y%m%d}.csv"]
        for path in paths:
            entity = next(e for e in SNAPSHOTS if path.name.startswith(e.entity + "_"))
            load_id += 1
            source_file, day = path.relative_to(inbox).as_posix(), entity.export_date(path)
            types = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in entity.columns) + "}"
            casts = ", ".join(f"try_cast(replace(\"{c}\", ',', '.') as {t}) as \"{c}\"" if t.startswith("DECIMAL")
                              else f"strptime(\"{c}\", '%d.%m.%Y %H:%M:%S') as \"{c}\"" if t == "TIMESTAMP"
                              else f"(\"{c}\" = '1') as \"{c}\"" if t == "BOOLEAN" else f'"{c}"'
                              for c, t in entity.columns.items())
            con.execute(f"""create or replace temp table old_file as
                select {casts}, row_number() over () + 1 as _line
                from read_csv('{path}', columns={types}, header=true, delim=';', auto_detect=false)""")
            bad = "monthly_list_price is null" if entity.entity == "products" else "false"
            if entity.entity == "products":
                con.execute(f"insert into ingest.rejects select {load_id}, '{source_file}', _line, "
                            f"'monthly_list_price', 'CAST', 'could not convert', 'text', product_code "
                            f"from old_file where {bad}")
            con.execute(f"insert into {entity.raw_table} select * exclude (_line), {load_id}, '{source_file}', "
                        f"_line, '{day}' from old_file where not ({bad})")
            loaded, rejected = (con.execute(f"select count(*) filter (where not ({bad})), count(*) filter "
                                            f"(where {bad}) from old_file").fetchone())
            con.execute("insert into ingest.files (load_id, system, entity, source_file, file_hash, export_date, "
                        "mode, status, rows_read, rows_loaded, rows_rejected, blank_lines) values "
                        "(?, ?, ?, ?, ?, ?, 'snapshot', 'loaded', ?, ?, ?, 0)",
                        [load_id, entity.system, entity.entity, source_file, f"h{load_id}", day,
                         loaded + rejected, loaded, rejected])


# What staging showed from that vault (the newest version of each file, the latest row per key; deleted at
# the source on the first snapshot after its last listing, a rejected line being a listing), worked out by hand.
OLD_STAGING = {
    "raw_services.products": {
        "BB": ("31.90", False, None), "NEW": ("1.00", False, None),
        "OLD": ("9.90", True, OLD_DAYS[3]), "VPS": ("12.00", True, OLD_DAYS[2]),
        "GONE": ("3.00", True, OLD_DAYS[3])},
    "raw_crm.customers": {"C0000001": ("z@y.fi", False, None), "C0000002": ("b@example.fi", False, None)},
}


def staging_of(con) -> dict:
    return {
        "raw_services.products": {r[0]: r[1:] for r in con.execute(
            "select product_code, monthly_list_price::varchar, _valid_to is not null, _valid_to "
            "from raw_services.products where _is_latest").fetchall()},
        "raw_crm.customers": {r[0]: r[1:] for r in con.execute(
            "select customer_id, email, _valid_to is not null, _valid_to from raw_crm.customers "
            "where _is_latest").fetchall()},
    }


def test_a_vault_of_before_migrates_to_versions_with_the_same_current_state(vault, tmp_path):
    inbox = tmp_path / "inbox"
    old_inbox(inbox)
    build_old_vault(vault, inbox)
    before = vault.execute("select count(*) from raw_services.products").fetchone()[0]
    assert before == 10

    assert ingest(vault, tmp_path / "empty") == {}  # the ingest prepares its schema: the migration
    assert staging_of(vault) == OLD_STAGING
    assert versions(vault) == [
        ("BB", OLD_DAYS[0], OLD_DAYS[1], False, "services/products_20240105.csv", 2, "services/products_20240106.csv"),
        ("BB", OLD_DAYS[1], None, True, "services/products_20240106.csv", 2, None),
        ("GONE", OLD_DAYS[0], OLD_DAYS[1], False, "services/products_20240105.csv", 5,
         "services/products_20240106.csv"),
        ("GONE", OLD_DAYS[2], OLD_DAYS[3], True, "services/products_20240107.csv", None,
         "services/products_20240108.csv"),
        ("NEW", OLD_DAYS[3], None, True, "services/products_20240108.csv", 3, None),
        ("OLD", OLD_DAYS[0], OLD_DAYS[1], False, "services/products_20240105.csv", 4,
         "services/products_20240106.csv"),
        ("OLD", OLD_DAYS[2], OLD_DAYS[3], True, "services/products_20240107.csv", 3, "services/products_20240108.csv"),
        ("VPS", OLD_DAYS[0], OLD_DAYS[1], False, "services/products_20240105.csv", 3,
         "services/products_20240106.csv"),
        ("VPS", OLD_DAYS[1], OLD_DAYS[2], True, "services/products_20240106.csv", 4, "services/products_20240107.csv"),
    ]
    # every file version of before is accounted for; the customers' first version of its name made nothing
    files = vault.execute("select source_file, rows_read, rows_changed, rows_unchanged, rows_rejected "
                          "from ingest.files order by load_id").fetchall()
    assert all(read == changed + unchanged + rejected for _, read, changed, unchanged, rejected in files)
    assert [f[2] for f in files if f[0] == f"crm/customers_{OLD_DAYS[1]:%Y%m%d}.csv"] == [0, 1]
    assert vault.execute("select raw_table, rows_before, versions from ingest.migrations order by all").fetchall() \
        == [("raw_crm.customers", 5, 3), ("raw_services.key_handovers", 0, 0), ("raw_services.products", 10, 9),
            ("raw_services.services", 0, 0)]

    # the next day loads onto the versions; a second migration finds nothing to do
    products_file(inbox, OLD_DAYS[3] + timedelta(1), ["BB;Kuitu;broadband;31,90;24", "NEW;Uusi;vps;1,00;24"])
    result = ingest(vault, inbox)[f"services/products_{OLD_DAYS[3] + timedelta(1):%Y%m%d}.csv"]
    assert (result.status, result.rows_changed, result.rows_unchanged) == ("loaded", 0, 2)
    assert staging_of(vault) == OLD_STAGING


@pytest.mark.parametrize("kill", ["migrate.before_commit@2", "migrate.after_commit@1"])
def test_a_killed_migration_leaves_each_table_old_or_new_and_the_next_run_finishes_it(tmp_path, kill):
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    old_inbox(inbox)
    settings = settings_of(home)
    con = open_vault(settings)
    try:
        build_old_vault(con, inbox)
    finally:
        con.close()
    empty = tmp_path / "empty"
    empty.mkdir()
    command = [sys.executable, "-m", "warehouse.cli", "--home", str(home), "ingest", "--inbox", str(empty)]
    killed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "WAREHOUSE_CRASH_AT": kill})
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    con = open_vault(settings, read_only=True)
    try:
        migrated = [e.raw_table for e in SNAPSHOTS if has_versions(con, e.raw_table)]
        assert migrated == [SNAPSHOTS[0].raw_table]  # crm/customers first; the others still as they were
        assert con.execute("select count(*) from raw_services.products").fetchone()[0] == 10
        assert con.execute("select raw_table from ingest.migrations").fetchall() == [(migrated[0],)]
    finally:
        con.close()
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    con = open_vault(settings, read_only=True)
    try:
        assert all(has_versions(con, e.raw_table) for e in SNAPSHOTS)
        assert staging_of(con) == OLD_STAGING
    finally:
        con.close()


def test_the_staging_models_name_a_vault_not_yet_migrated(tmp_path):
    """A build on a vault of before stops naming the table and what to do (the ingest migrates it)."""
    inbox, home = tmp_path / "inbox", tmp_path / "home"
    old_inbox(inbox)
    con = open_vault(settings_of(home))
    try:
        build_old_vault(con, inbox)
    finally:
        con.close()
    outcome = cli(home, "build")
    assert "holds every snapshot's rows (the layout before versions): run `warehouse ingest`" in outcome.output, \
        outcome.output
