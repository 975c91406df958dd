"""Churn marts against public reference data that no one on this project wrote.

- dbt-labs/mrr-playbook subscription periods -> services: the monthly MRR bridge must equal a plain-Python
  computation of the same definitions, every month, to the cent.
- IBM Telco customer churn (tenure + churn flag) -> services: `churn.tenure_survival` must equal lifelines'
  Kaplan-Meier estimate at every tenure.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import cli
from exports import fi, header

from core.db import connect

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference-data"
PLAYBOOK = REFERENCE / "mrr-playbook-subscription-periods.csv"
TELCO = REFERENCE / "ibm-telco-customer-churn.csv"

CUSTOMERS_HEADER, PRODUCTS_HEADER, SERVICES_HEADER = header("customers"), header("products"), header("services")


def money(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


def write_inbox(inbox: Path, cutoff: date, customer_ids: list[str], services: list[tuple]) -> None:
    """services: (service_id, customer_id, fee, opened_on, terminated_on, reason) in the export contract."""
    stamp = cutoff.strftime("%Y%m%d")
    (inbox / "crm").mkdir(parents=True)
    (inbox / "services").mkdir(parents=True)
    (inbox / f"crm/customers_{stamp}.csv").write_text("\n".join([CUSTOMERS_HEADER, *(
        f"{c};person;A;B;;;;;;;;;FI;;;;;;fi;0;1.1.2017 8:00:00;1.1.2017 8:00:00" for c in customer_ids)]) + "\n")
    (inbox / f"services/products_{stamp}.csv").write_text(
        f"{PRODUCTS_HEADER}\nSUB;Subscription;broadband;1,00;24\n")
    (inbox / f"services/services_{stamp}.csv").write_text("\n".join([SERVICES_HEADER, *(
        f"{sid};{cid};SUB;{money(fee)};{fi(opened)};{fi(ended)};{reason};;;;1.1.2017 8:00:00"
        for sid, cid, fee, opened, ended, reason in services)]) + "\n")


def build(home: Path, inbox: Path):
    assert cli(home, "ingest", "--inbox", str(inbox)).exit_code == 0
    ran = cli(home, "build")
    # Old exports without billing files fail source freshness (exit 3); the build must still publish.
    assert "Published" in ran.output and "Build failed" not in ran.output, ran.output
    return connect(home / "analytics.duckdb", read_only=True)


def add_months(d: date, n: int) -> date:
    month = d.month - 1 + n
    return date(d.year + month // 12, month % 12 + 1, d.day)


# --- mrr-playbook: the monthly bridge --------------------------------------------------------------------

PLAYBOOK_CUTOFF = date(2020, 2, 1)


def expected_bridge(periods: list[dict], cutoff: date) -> dict[date, dict]:
    """The churn definitions, computed independently: MRR on each month's last day (the cut-off day in the
    cut-off month), a period [start, end) active on day d when start <= d < end, then ChartMogul movements."""
    month = min(p["start"] for p in periods).replace(day=1)
    last_month = cutoff.replace(day=1)
    previous: dict[str, Decimal] = {}
    ever: set[str] = set()
    bridge = {}
    while month <= last_month:
        as_of = min(add_months(month, 1) - timedelta(days=1), cutoff)
        mrr: dict[str, Decimal] = {}
        for p in periods:
            if p["start"] <= as_of and (p["end"] is None or as_of < p["end"]):
                mrr[p["customer"]] = mrr.get(p["customer"], Decimal(0)) + p["amount"]
        row = dict.fromkeys(["start_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
                             "churned_mrr", "end_mrr"], Decimal(0))
        row.update(dict.fromkeys(["customers_start", "customers_new", "customers_reactivated",
                                  "customers_churned", "customers_end"], 0))
        for customer in set(previous) | set(mrr):
            before, now = previous.get(customer, Decimal(0)), mrr.get(customer, Decimal(0))
            row["start_mrr"] += before
            row["end_mrr"] += now
            row["customers_start"] += before > 0
            row["customers_end"] += now > 0
            if before == 0 and now > 0:
                kind = "reactivation" if customer in ever else "new"
                row[f"{kind}_mrr"] += now
                row["customers_reactivated" if kind == "reactivation" else "customers_new"] += 1
            elif before > 0 and now == 0:
                row["churned_mrr"] += before
                row["customers_churned"] += 1
            elif now > before > 0:
                row["expansion_mrr"] += now - before
            elif 0 < now < before:
                row["contraction_mrr"] += before - now
        ever |= {c for c, v in mrr.items() if v > 0}
        previous = {c: v for c, v in mrr.items() if v > 0}
        bridge[month] = row
        month = add_months(month, 1)
    return bridge


@pytest.fixture(scope="module")
def playbook(tmp_path_factory):
    if not PLAYBOOK.exists():
        pytest.skip(f"reference data not found: {PLAYBOOK} (the shared reference-data folder is absent)")
    with PLAYBOOK.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    periods = []
    for r in rows:
        end = date.fromisoformat(r["end_date"])
        periods.append({
            "id": int(r["subscription_id"]), "customer": f"C{int(r['customer_id']):07d}",
            "start": date.fromisoformat(r["start_date"]),
            # Periods ending on the cut-off are still running: exported open-ended.
            "end": None if end >= PLAYBOOK_CUTOFF else end,
            "amount": Decimal(r["monthly_amount"]),
        })
    home = tmp_path_factory.mktemp("playbook-home")
    write_inbox(home / "inbox", PLAYBOOK_CUTOFF, sorted({p["customer"] for p in periods}), [
        (f"S{p['id']:08d}", p["customer"], p["amount"], p["start"], p["end"], "other" if p["end"] else "")
        for p in periods])
    con = build(home, home / "inbox")
    yield periods, con
    con.close()


def test_playbook_monthly_movements_equal_an_independent_computation(playbook):
    periods, con = playbook
    expected = expected_bridge(periods, PLAYBOOK_CUTOFF)
    columns = list(next(iter(expected.values())))
    actual = {row[0]: dict(zip(columns, row[1:], strict=True)) for row in con.execute(
        f"select month, {', '.join(columns)} from churn.monthly_movements order by month").fetchall()}
    assert list(actual) == list(expected)  # the same months: first period's month to the cut-off month
    for month, row in expected.items():
        assert actual[month] == row, month
    # The cut-off is not a mass churn: the periods running into it stay active.
    last = actual[PLAYBOOK_CUTOFF]
    assert last["customers_churned"] == 0 and last["end_mrr"] > 0


def test_playbook_bridge_balances_and_retention_is_consistent(playbook):
    _, con = playbook
    months = con.execute("""select start_mrr + new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr
                                   - churned_mrr = end_mrr from churn.monthly_movements""").fetchall()
    assert all(ok for (ok,) in months)
    retention = con.execute("""select r.month, r.cohort_start_mrr, m.end_mrr
                               from churn.revenue_retention as r
                               join churn.monthly_movements as m on m.month = r.cohort_month""").fetchall()
    assert retention and all(start == end for _, start, end in retention)


# --- IBM telco: Kaplan-Meier over tenure -----------------------------------------------------------------

TELCO_CUTOFF = date(2024, 12, 15)


@pytest.fixture(scope="module")
def telco(tmp_path_factory):
    if not TELCO.exists():
        pytest.skip(f"reference data not found: {TELCO} (the shared reference-data folder is absent)")
    lifelines = pytest.importorskip("lifelines")
    with TELCO.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    services, customers, durations, events = [], [], [], []
    for n, r in enumerate(rows, start=1):
        tenure, churned = int(r["tenure"]), r["Churn"] == "Yes"
        customer = f"C{n:07d}"
        customers.append(customer)
        # Opened `tenure` months before the cut-off; a churned customer's service ends on the cut-off day.
        services.append((f"S{n:08d}", customer, Decimal(r["MonthlyCharges"]), add_months(TELCO_CUTOFF, -tenure),
                         TELCO_CUTOFF if churned else None, "other" if churned else ""))
        durations.append(tenure)
        events.append(churned)
    home = tmp_path_factory.mktemp("telco-home")
    write_inbox(home / "inbox", TELCO_CUTOFF, customers, services)
    con = build(home, home / "inbox")
    fitter = lifelines.KaplanMeierFitter().fit(durations, event_observed=events)
    yield fitter, con
    con.close()


def test_tenure_survival_equals_lifelines_kaplan_meier(telco):
    fitter, con = telco
    rows = con.execute("select tenure_months, at_risk, churned, censored, survival from churn.tenure_survival "
                       "order by tenure_months").fetchall()
    assert [r[0] for r in rows] == list(range(0, 73))
    expected = fitter.survival_function_at_times([r[0] for r in rows]).to_numpy()
    assert [r[4] for r in rows] == pytest.approx(list(expected), abs=1e-12)
    events = fitter.event_table
    for tenure, at_risk, churned, censored, _ in rows:
        if tenure in events.index:
            assert (at_risk, churned, censored) == (
                events.at[tenure, "at_risk"], events.at[tenure, "observed"], events.at[tenure, "censored"]), tenure
