"""Churn marts on hand-built exports: one customer per movement type and per trap of the definitions.

Cut-off 15.6.2024 (the services snapshot's export date). `terminated_on` is the first day without service.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import cli
from exports import fi, header, write

from core.db import connect

CUSTOMERS_HEADER, PRODUCTS_HEADER, SERVICES_HEADER = header("customers"), header("products"), header("services")


def customer_row(customer_id: str, customer_type: str = "person") -> str:
    company = "Testi Oy" if customer_type == "business" else ""
    business_id = "1234567-8" if customer_type == "business" else ""
    hetu = "010180-123A" if customer_type == "person" else ""
    return (f"{customer_id};{customer_type};Testi;Asiakas;{company};{business_id};{hetu};t@example.com;040 123 4567;"
            "Testikatu 1;02200;Espoo;FI;;;;;;fi;0;1.1.2024 8:00:00;1.1.2024 8:00:00")


def service_row(service_id: str, customer_id: str, product: str, fee: str, opened: date,
                terminated: date | None = None, reason: str = "") -> str:
    return (f"{service_id};{customer_id};{product};{fee};{fi(opened)};{fi(terminated)};{reason};;user;"
            f"10.0.0.0/30;1.1.2024 8:00:00")


def write_exports(inbox: Path, export_date: date, customers: list[str], services: list[str],
                  products: list[str] | None = None) -> None:
    stamp = export_date.strftime("%Y%m%d")
    write(inbox / f"crm/customers_{stamp}.csv", [CUSTOMERS_HEADER, *customers])
    write(inbox / f"services/products_{stamp}.csv", [PRODUCTS_HEADER, *(products or [
        "BB100;Kuitu 100;broadband;29,90;24", "VPS;Virtuaalipalvelin;vps;10,00;24"])])
    write(inbox / f"services/services_{stamp}.csv", [SERVICES_HEADER, *services])


def run_pipeline(home: Path, inbox: Path) -> None:
    assert cli(home, "ingest", "--inbox", str(inbox)).exit_code == 0
    ran = cli(home, "build")
    # The fixture's exports are old and have no billing files, so source freshness fails the build (exit 3);
    # the build itself must have succeeded and published analytics.
    assert "Published" in ran.output and "Build failed" not in ran.output, ran.output
    assert (home / "analytics.duckdb").exists()


CUTOFF = date(2024, 6, 15)
D = date


@pytest.fixture(scope="module")
def analytics(tmp_path_factory):
    home = tmp_path_factory.mktemp("churn-home")
    inbox = home / "inbox"
    customers = [customer_row(f"C000000{n}", "business" if n == 3 else "person") for n in range(1, 9)]
    # An earlier snapshot lists a service that the latest one no longer lists: deleted at the source.
    write_exports(inbox, D(2024, 3, 1), customers, [
        service_row("S00000099", "C0000008", "BB100", "99,00", D(2024, 1, 1))])
    write_exports(inbox, CUTOFF, customers, [
        # 1: open-ended since January -> new, then retained to the cut-off
        service_row("S00000001", "C0000001", "BB100", "10,00", D(2024, 1, 10)),
        # 2: a second service in March -> expansion
        service_row("S00000002", "C0000002", "BB100", "20,00", D(2024, 1, 5)),
        service_row("S00000003", "C0000002", "VPS", "5,00", D(2024, 3, 10)),
        # 3: two services, one ends on 1.4. (first day without) -> contraction in April, not churn
        service_row("S00000004", "C0000003", "BB100", "30,00", D(2024, 1, 1)),
        service_row("S00000005", "C0000003", "VPS", "10,00", D(2024, 1, 1), D(2024, 4, 1), "price"),
        # 4: churn in February, reactivation in April
        service_row("S00000006", "C0000004", "BB100", "15,00", D(2024, 1, 1), D(2024, 2, 20), "competitor"),
        service_row("S00000007", "C0000004", "BB100", "15,00", D(2024, 4, 3)),
        # 5: ends on the cut-off day for non-payment -> involuntary churn in the cut-off month
        service_row("S00000008", "C0000005", "BB100", "40,00", D(2024, 2, 1), CUTOFF, "non_payment"),
        # 6: terminated on 31.3. -> not active on the month's last day: churn in March
        service_row("S00000009", "C0000006", "BB100", "25,00", D(2024, 1, 1), D(2024, 3, 31), "customer_request"),
        # 7: two services end together, one for non-payment, one moved -> voluntary churn in May
        service_row("S00000010", "C0000007", "BB100", "5,00", D(2024, 1, 1), D(2024, 5, 1), "non_payment"),
        service_row("S00000011", "C0000007", "VPS", "7,00", D(2024, 1, 1), D(2024, 5, 1), "moved"),
    ])
    run_pipeline(home, inbox)
    con = connect(home / "analytics.duckdb", read_only=True)
    yield con
    con.close()




def customer_history(con) -> dict[int, list[tuple[str, str, Decimal]]]:
    """customer number -> [(month, movement, mrr)], identified by their first month and MRR pattern."""
    rows = con.execute("""select customer_key, strftime(month, '%m'), movement, mrr, churn_type
                          from churn.customer_months order by customer_key, month""").fetchall()
    history: dict[str, list[tuple]] = {}
    for key, month, movement, mrr, churn_type in rows:
        history.setdefault(key, []).append((month, movement, mrr, churn_type))
    return history


EXPECTED = {
    1: [("01", "new", "10.00", None)] + [(m, "retained", "10.00", None) for m in ("02", "03", "04", "05", "06")],
    2: [("01", "new", "20.00", None), ("02", "retained", "20.00", None), ("03", "expansion", "25.00", None),
        ("04", "retained", "25.00", None), ("05", "retained", "25.00", None), ("06", "retained", "25.00", None)],
    3: [("01", "new", "40.00", None), ("02", "retained", "40.00", None), ("03", "retained", "40.00", None),
        ("04", "contraction", "30.00", None), ("05", "retained", "30.00", None), ("06", "retained", "30.00", None)],
    4: [("01", "new", "15.00", None), ("02", "churn", "0.00", "voluntary"), ("03", "inactive", "0.00", None),
        ("04", "reactivation", "15.00", None), ("05", "retained", "15.00", None),
        ("06", "retained", "15.00", None)],
    5: [("02", "new", "40.00", None), ("03", "retained", "40.00", None), ("04", "retained", "40.00", None),
        ("05", "retained", "40.00", None), ("06", "churn", "0.00", "involuntary")],
    6: [("01", "new", "25.00", None), ("02", "retained", "25.00", None), ("03", "churn", "0.00", "voluntary"),
        ("04", "inactive", "0.00", None), ("05", "inactive", "0.00", None), ("06", "inactive", "0.00", None)],
    7: [("01", "new", "12.00", None), ("02", "retained", "12.00", None), ("03", "retained", "12.00", None),
        ("04", "retained", "12.00", None), ("05", "churn", "0.00", "voluntary"), ("06", "inactive", "0.00", None)],
}


def test_each_customer_gets_the_movements_of_the_definitions(analytics):
    histories = {tuple((m, mv, str(mrr), ct) for m, mv, mrr, ct in rows)
                 for rows in customer_history(analytics).values()}
    expected = {tuple(rows) for rows in EXPECTED.values()}
    # Customer 8's only service was deleted at the source: it has no months at all.
    assert histories == expected


def test_monthly_bridge_on_the_fixture(analytics):
    rows = analytics.execute("""
        select strftime(month, '%Y-%m'), customers_start, customers_new, customers_reactivated, customers_churned,
               customers_end, start_mrr, new_mrr, expansion_mrr, reactivation_mrr, contraction_mrr, churned_mrr,
               end_mrr, voluntary_churned_mrr, involuntary_churned_mrr
        from churn.monthly_movements order by month""").fetchall()
    money = [tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in rows]
    assert money == [
        ("2024-01", 0, 6, 0, 0, 6, "0.00", "122.00", "0.00", "0.00", "0.00", "0.00", "122.00", "0.00", "0.00"),
        ("2024-02", 6, 1, 0, 1, 6, "122.00", "40.00", "0.00", "0.00", "0.00", "15.00", "147.00", "15.00", "0.00"),
        ("2024-03", 6, 0, 0, 1, 5, "147.00", "0.00", "5.00", "0.00", "0.00", "25.00", "127.00", "25.00", "0.00"),
        ("2024-04", 5, 0, 1, 0, 6, "127.00", "0.00", "0.00", "15.00", "10.00", "0.00", "132.00", "0.00", "0.00"),
        ("2024-05", 6, 0, 0, 1, 5, "132.00", "0.00", "0.00", "0.00", "0.00", "12.00", "120.00", "12.00", "0.00"),
        # The cut-off month is the last month: a service ending on the cut-off day is churned in it.
        ("2024-06", 5, 0, 0, 1, 4, "120.00", "0.00", "0.00", "0.00", "0.00", "40.00", "80.00", "0.00", "40.00"),
    ]


def test_rates_and_cutoff(analytics):
    june = analytics.execute("""select logo_churn_rate, gross_mrr_churn_rate, net_mrr_churn_rate
                                from churn.monthly_movements where month = date '2024-06-01'""").fetchone()
    assert june == pytest.approx((1 / 5, 40 / 120, 40 / 120))
    april = analytics.execute("""select logo_churn_rate, gross_mrr_churn_rate, net_mrr_churn_rate
                                 from churn.monthly_movements where month = date '2024-04-01'""").fetchone()
    assert april == pytest.approx((0.0, 10 / 127, (10 - 15) / 127))
    first = analytics.execute("select logo_churn_rate from churn.monthly_movements order by month").fetchone()
    assert first == (None,)  # no customers at the start of the first month: no rate
    cutoff = analytics.execute("select cutoff_date, cutoff_month, first_month from churn.data_cutoff").fetchall()
    assert cutoff == [(CUTOFF, D(2024, 6, 1), D(2024, 1, 1))]


def test_lost_accounts_and_segments(analytics):
    lost = analytics.execute("""select strftime(month, '%m'), lost_mrr, tenure_months, termination_reasons,
                                       churn_type
                                from churn.lost_accounts order by month""").fetchall()
    assert [(m, str(mrr), t, r, c) for m, mrr, t, r, c in lost] == [
        ("02", "15.00", 1, "competitor", "voluntary"), ("03", "25.00", 2, "customer_request", "voluntary"),
        ("05", "12.00", 4, "moved, non_payment", "voluntary"), ("06", "40.00", 4, "non_payment", "involuntary")]
    may = dict(((d, s), (cs, cc, str(sm), str(cm))) for d, s, cs, cc, sm, cm in analytics.execute(
        """select dimension, segment, customers_start, customers_churned, start_mrr, churned_mrr
           from churn.churn_by_segment where month = date '2024-05-01'""").fetchall())
    assert may[("product_category", "vps")] == (2, 1, "12.00", "7.00")  # customers 2 and 7
    assert may[("termination_reason", "non_payment")] == (6, 1, "132.00", "5.00")
    assert may[("termination_reason", "moved")] == (6, 1, "132.00", "7.00")
    assert may[("churn_type", "voluntary")] == (6, 1, "132.00", "12.00")
    assert may[("customer_type", "business")] == (1, 0, "30.00", "0.00")


def test_contraction_by_segment_gives_the_gross_mrr_churn_of_the_key_figure(analytics):
    """April: customer 3 (a business) ends its VPS and keeps broadband. The segments count that contraction as
    the month's gross MRR churn does; a product category counts the fall of its own MRR."""
    april = {(d, s): (cs, str(sm), str(cm), str(co), g) for d, s, cs, sm, cm, co, g in analytics.execute(
        """select dimension, segment, customers_start, start_mrr, churned_mrr, contraction_mrr, gross_mrr_churn_rate
           from churn.churn_by_segment where month = date '2024-04-01'""").fetchall()}
    assert april[("customer_type", "business")] == (1, "40.00", "0.00", "10.00", pytest.approx(10 / 40))
    assert april[("customer_type", "person")][2:] == ("0.00", "0.00", 0.0)
    # VPS held at the start by customers 2, 3 and 7: 5 + 10 + 7; broadband by 1, 2, 3, 5 and 7
    assert april[("product_category", "vps")] == (3, "22.00", "0.00", "10.00", pytest.approx(10 / 22))
    assert april[("product_category", "broadband")] == (5, "105.00", "0.00", "0.00", 0.0)
    may = {(d, s): (co, g) for d, s, co, g in analytics.execute(
        """select dimension, segment, contraction_mrr, gross_mrr_churn_rate from churn.churn_by_segment
           where month = date '2024-05-01' and dimension in ('termination_reason', 'churn_type')""").fetchall()}
    assert may and set(may.values()) == {(None, None)}  # churn events: no contraction
    counts = analytics.execute("""select strftime(month, '%m'), customers_expanded, customers_contracted
                                  from churn.monthly_movements order by month""").fetchall()
    assert counts == [("01", 0, 0), ("02", 0, 0), ("03", 1, 0), ("04", 0, 1), ("05", 0, 0), ("06", 0, 0)]


def test_bridge_identity_and_no_identifiers_in_analytics(analytics):
    unbalanced = analytics.execute("""select count(*) from churn.monthly_movements
        where start_mrr + new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churned_mrr <> end_mrr
        """).fetchone()[0]
    assert unbalanced == 0
    keys = {k for (k,) in analytics.execute("select distinct customer_key from churn.customer_months").fetchall()}
    assert len(keys) == 7 and all(len(k) == 32 and not k.startswith("C") for k in keys)


def test_core_customers_status_on_the_cutoff(analytics):
    statuses = dict(analytics.execute("select status, count(*) from core.customers group by all").fetchall())
    # 1-4 active; 5 (ended on the cut-off day), 6, 7 churned; 8's only service was deleted at the source.
    assert statuses == {"active": 4, "churned": 3, "never_active": 1}
    business = analytics.execute("""select business_name, current_mrr, active_services, current_products,
                                           current_categories, products_ever
                                    from core.customer_relationships where customer_type = 'business'""").fetchall()
    assert [(n, str(m), a, p, c, e) for n, m, a, p, c, e in business] == [
        ("Testi Oy", "30.00", 1, "BB100", "broadband", "BB100, VPS")]


def test_no_direct_identifier_reaches_analytics(analytics):
    identifiers = ["C0000001", "S00000001", "010180-123A", "t@example.com", "+358401234567", "Testikatu",
                   "Asiakas", "10.0.0.0/30", "02200"]
    columns = analytics.execute("""select table_schema, table_name, column_name from information_schema.columns
                                   where data_type = 'VARCHAR'""").fetchall()
    for schema, table, column in columns:
        hits = analytics.execute(
            f'select count(*) from "{schema}"."{table}" where list_contains(?, "{column}") '
            f'or contains("{column}", \'C000000\')', [identifiers]).fetchone()[0]
        assert hits == 0, f"{schema}.{table}.{column} carries an identifier"
