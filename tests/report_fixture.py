"""A synthetic analytics database with the churn marts, for developing and testing the churn report.

The numbers come from a small simulation of customers (signups, expansions, contractions, churn and
reactivation) so that the marts agree with each other the way the real ones do: the MRR bridge adds up,
cohorts shrink, lost accounts are the month's churners. Deterministic per seed.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from core.db import connect

FIRST_MONTH = date(2023, 1, 1)
MONTHS = 30
CUTOFF_DATE = date(2025, 6, 18)  # mid-month: June 2025 is incomplete, May 2025 the latest complete month
CATEGORIES = {
    # category: (share of persons, share of businesses, MRR range persons, MRR range businesses, hazard)
    "broadband": (0.70, 0.45, (29.9, 54.9), (89.0, 249.0), 0.022),
    "colocation": (0.00, 0.15, (59.0, 59.0), (59.0, 790.0), 0.006),
    "ip_transit": (0.00, 0.08, (450.0, 450.0), (450.0, 1450.0), 0.009),
    "vps": (0.10, 0.15, (9.9, 49.0), (19.9, 98.0), 0.025),
    "email": (0.12, 0.10, (2.9, 6.9), (6.9, 34.5), 0.012),
    "domain": (0.08, 0.07, (1.5, 1.9), (1.5, 9.5), 0.010),
}
REGIONS = {"Uusimaa": 0.55, "Pirkanmaa": 0.12, "Varsinais-Suomi": 0.10, "Pohjois-Pohjanmaa": 0.08,
           "Keski-Suomi": 0.06, "Päijät-Häme": 0.04, "Pohjois-Savo": 0.05}
DATE_COLUMNS = {"month", "cohort_month", "cutoff_date", "cutoff_month", "first_month"}
REASONS = ["customer_request", "moved", "price", "competitor", "other"]
REASON_P = [0.30, 0.25, 0.15, 0.20, 0.10]


def month_add(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def tenure_band(months: int) -> str:
    return ("0-11 months" if months < 12 else "12-23 months" if months < 24 else "24-35 months" if months < 36
            else "36-59 months" if months < 60 else "60+ months")


def _simulate(customers: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-customer attributes and a customer-by-month table of MRR, movement and churn reason."""
    rng = np.random.default_rng(seed)
    business = rng.random(customers) < 0.22
    cats = list(CATEGORIES)
    category = np.where(business, rng.choice(cats, customers, p=[c[1] for c in CATEGORIES.values()]),
                        rng.choice(cats, customers, p=[c[0] for c in CATEGORIES.values()]))
    # A third of the customers were already there in the first month; the rest sign up over time.
    signup = np.where(rng.random(customers) < 0.33, 0, rng.integers(0, MONTHS, customers))
    region = rng.choice(list(REGIONS), customers, p=list(REGIONS.values()))
    keys = [hashlib.sha256(f"fixture-{seed}-{i}".encode()).hexdigest() for i in range(customers)]
    names = [f"{w} {p} Oy" for w, p in zip(rng.choice(["Rakennus", "Tilitoimisto", "Data", "Kuljetus", "Media",
                                                         "Sähkö", "Kone", "Design", "Logistiikka"], customers),
                                             rng.choice(["Espoon", "Helsingin", "Tampereen", "Turun",
                                                         "Oulun", "Uudenmaan"], customers), strict=True)]
    attrs = pd.DataFrame({"customer_key": keys, "customer_type": np.where(business, "business", "person"),
                          "business_name": [n if b else None for n, b in zip(names, business, strict=True)],
                          "product_category": category, "region": region, "signup": signup})
    rows = []
    for i in range(customers):
        low, high = CATEGORIES[category[i]][3 if business[i] else 2]
        base_hazard = CATEGORIES[category[i]][4] * (1.6 if business[i] else 1.0)
        mrr = prev = 0.0
        churned_since = None
        first_mrr_month = None
        for m in range(signup[i], MONTHS):
            reason = churn_type = None
            if prev == 0 and churned_since is None:
                mrr = round(float(rng.uniform(low, high)), 2)
            elif prev == 0:
                # Reactivation: a few churned customers come back within a year.
                mrr = round(float(rng.uniform(low, high)), 2) if rng.random() < 0.02 and m - churned_since < 12 else 0.0
            else:
                tenure = m - first_mrr_month
                hazard = base_hazard * (1.8 if tenure < 12 else 1.0) * (1.25 if m >= MONTHS - 8 else 1.0)
                draw = rng.random()
                if draw < hazard:
                    mrr = 0.0
                    churned_since = m
                    if rng.random() < 0.18:
                        reason, churn_type = "non_payment", "involuntary"
                    else:
                        reason, churn_type = str(rng.choice(REASONS, p=REASON_P)), "voluntary"
                elif draw < hazard + 0.025:
                    mrr = round(prev * float(rng.uniform(1.1, 1.8)), 2)
                elif draw < hazard + 0.04:
                    mrr = round(prev * float(rng.uniform(0.5, 0.85)), 2)
                else:
                    mrr = prev
            if first_mrr_month is None:
                first_mrr_month = m
            movement = ("new" if prev == 0 and m == first_mrr_month
                        else "reactivation" if prev == 0 and mrr > 0
                        else "inactive" if prev == 0
                        else "churn" if mrr == 0
                        else "expansion" if mrr > prev
                        else "contraction" if mrr < prev else "retained")
            rows.append((i, m, mrr, prev, movement, reason, churn_type, m - first_mrr_month))
            prev = mrr
    months = pd.DataFrame(rows, columns=["i", "m", "mrr", "previous_mrr", "movement", "termination_reason",
                                         "churn_type", "tenure"])
    return attrs, months


def _customer_months(attrs: pd.DataFrame, months: pd.DataFrame) -> pd.DataFrame:
    df = months.join(attrs, on="i")
    df["month"] = [month_add(FIRST_MONTH, m) for m in df["m"]]
    df["cohort_month"] = [month_add(FIRST_MONTH, m) for m in df["signup"]]
    df["tenure_band"] = [tenure_band(t) for t in df["tenure"]]
    delta = df["mrr"] - df["previous_mrr"]
    mv = df["movement"]
    df["new_mrr"] = np.where(mv == "new", df["mrr"], 0.0)
    df["expansion_mrr"] = np.where(mv == "expansion", delta, 0.0)
    df["contraction_mrr"] = np.where(mv == "contraction", -delta, 0.0)
    df["churned_mrr"] = np.where(mv == "churn", df["previous_mrr"], 0.0)
    df["reactivation_mrr"] = np.where(mv == "reactivation", df["mrr"], 0.0)
    return df


def _rate(num, den):
    return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _monthly_movements(cm: pd.DataFrame) -> pd.DataFrame:
    g = cm.assign(
        start=cm["previous_mrr"] > 0, end=cm["mrr"] > 0, is_new=cm["movement"] == "new",
        react=cm["movement"] == "reactivation", churned=cm["movement"] == "churn",
        expanded=cm["movement"] == "expansion", contracted=cm["movement"] == "contraction",
        vol=(cm["movement"] == "churn") & (cm["churn_type"] == "voluntary"),
        invol=(cm["movement"] == "churn") & (cm["churn_type"] == "involuntary"),
        vol_mrr=np.where(cm["churn_type"] == "voluntary", cm["churned_mrr"], 0.0),
        invol_mrr=np.where(cm["churn_type"] == "involuntary", cm["churned_mrr"], 0.0),
    ).groupby("month")
    mm = pd.DataFrame({
        "customers_start": g["start"].sum(), "customers_new": g["is_new"].sum(),
        "customers_reactivated": g["react"].sum(), "customers_churned": g["churned"].sum(),
        "customers_end": g["end"].sum(), "start_mrr": g["previous_mrr"].sum(), "new_mrr": g["new_mrr"].sum(),
        "expansion_mrr": g["expansion_mrr"].sum(), "reactivation_mrr": g["reactivation_mrr"].sum(),
        "contraction_mrr": g["contraction_mrr"].sum(), "churned_mrr": g["churned_mrr"].sum(),
        "end_mrr": g["mrr"].sum(), "voluntary_churned_mrr": g["vol_mrr"].sum(),
        "involuntary_churned_mrr": g["invol_mrr"].sum(), "customers_churned_voluntary": g["vol"].sum(),
        "customers_churned_involuntary": g["invol"].sum(), "customers_expanded": g["expanded"].sum(),
        "customers_contracted": g["contracted"].sum(),
    }).reset_index()
    mm["logo_churn_rate"] = _rate(mm["customers_churned"], mm["customers_start"])
    mm["gross_mrr_churn_rate"] = _rate(mm["churned_mrr"] + mm["contraction_mrr"], mm["start_mrr"])
    mm["net_mrr_churn_rate"] = _rate(mm["churned_mrr"] + mm["contraction_mrr"] - mm["expansion_mrr"]
                                     - mm["reactivation_mrr"], mm["start_mrr"])
    return mm


def _cohort_retention(cm: pd.DataFrame) -> pd.DataFrame:
    first = cm[cm["movement"] == "new"][["customer_key", "month", "mrr"]]
    first = first.rename(columns={"month": "cohort_month", "mrr": "start_mrr"})
    df = cm.merge(first, on="customer_key")
    df["k"] = [(a.year - b.year) * 12 + a.month - b.month for a, b in zip(df["month"], df["cohort_month_y"],
                                                                          strict=True)]
    size = first.groupby("cohort_month").agg(cohort_customers=("customer_key", "size"),
                                             cohort_start_mrr=("start_mrr", "sum"))
    out = df.assign(active=df["mrr"] > 0).groupby(["cohort_month_y", "k"]).agg(
        active_customers=("active", "sum"), mrr=("mrr", "sum")).reset_index()
    out = out.rename(columns={"cohort_month_y": "cohort_month", "k": "months_since_start"}).join(
        size, on="cohort_month")
    out["logo_retention"] = out["active_customers"] / out["cohort_customers"]
    out["revenue_retention"] = out["mrr"] / out["cohort_start_mrr"]
    return out[["cohort_month", "months_since_start", "cohort_customers", "active_customers", "logo_retention",
                "cohort_start_mrr", "mrr", "revenue_retention"]]


def _revenue_retention(cm: pd.DataFrame) -> pd.DataFrame:
    wide = cm.pivot_table(index="customer_key", columns="month", values="mrr", fill_value=0.0)
    months = sorted(wide.columns)
    rows = []
    for j in range(12, len(months)):
        before, now = wide[months[j - 12]], wide[months[j]]
        cohort = before > 0
        start = before[cohort].sum()
        retained = np.minimum(before[cohort], now[cohort]).sum()
        end = now[cohort].sum()
        rows.append((months[j], months[j - 12], int(cohort.sum()), start, retained, end,
                     retained / start if start else None, end / start if start else None))
    return pd.DataFrame(rows, columns=["month", "cohort_month", "cohort_customers", "cohort_start_mrr",
                                       "retained_mrr", "end_mrr", "gross_revenue_retention",
                                       "net_revenue_retention"])


def _churn_by_segment(cm: pd.DataFrame) -> pd.DataFrame:
    cm = cm.assign(start=cm["previous_mrr"] > 0, churned=cm["movement"] == "churn",
                   start_tenure_band=[tenure_band(max(t - 1, 0)) for t in cm["tenure"]])
    totals = cm.groupby("month").agg(customers_start=("start", "sum"), start_mrr=("previous_mrr", "sum"))
    parts = []
    for dimension, column in [("product_category", "product_category"), ("customer_type", "customer_type"),
                              ("region", "region"), ("tenure_band", "start_tenure_band")]:
        g = cm.groupby(["month", column]).agg(
            customers_start=("start", "sum"), customers_churned=("churned", "sum"),
            start_mrr=("previous_mrr", "sum"), churned_mrr=("churned_mrr", "sum"),
            contraction_mrr=("contraction_mrr", "sum")).reset_index()
        # One category per customer here: a category's contraction is its customers' contraction.
        parts.append(g.rename(columns={column: "segment"}).assign(dimension=dimension))
    # Reasons and churn types exist only for churners: the denominator is the whole base at the start.
    for dimension in ("termination_reason", "churn_type"):
        g = cm[cm["churned"]].groupby(["month", dimension]).agg(
            customers_churned=("churned", "sum"), churned_mrr=("churned_mrr", "sum")).reset_index()
        g = g.join(totals, on="month").rename(columns={dimension: "segment"}).assign(dimension=dimension)
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    out["logo_churn_rate"] = _rate(out["customers_churned"], out["customers_start"])
    out["mrr_churn_rate"] = _rate(out["churned_mrr"], out["start_mrr"])
    # Churn events (reasons, churn types) have no contraction: null, as in the mart.
    out["gross_mrr_churn_rate"] = _rate(out["churned_mrr"] + out["contraction_mrr"], out["start_mrr"])
    return out[["month", "dimension", "segment", "customers_start", "customers_churned", "start_mrr",
                "churned_mrr", "contraction_mrr", "logo_churn_rate", "mrr_churn_rate", "gross_mrr_churn_rate"]]


def _lost_accounts(cm: pd.DataFrame) -> pd.DataFrame:
    lost = cm[cm["movement"] == "churn"]
    return pd.DataFrame({
        "month": lost["month"], "customer_key": lost["customer_key"], "customer_type": lost["customer_type"],
        "business_name": lost["business_name"], "lost_mrr": lost["churned_mrr"],
        "tenure_months": lost["tenure"], "termination_reasons": lost["termination_reason"],
        "churn_type": lost["churn_type"]})


def _tenure_survival(cm: pd.DataFrame) -> pd.DataFrame:
    """Kaplan-Meier over each customer's first spell: churn is the event, the cut-off censors."""
    spells = []
    for _, g in cm.groupby("customer_key"):
        churn = g[g["movement"] == "churn"]
        if len(churn):
            spells.append((int(churn["tenure"].iloc[0]), 1))
        else:
            spells.append((int(g["tenure"].iloc[-1]) + 1, 0))
    spells = pd.DataFrame(spells, columns=["t", "event"])
    rows, survival = [], 1.0
    for t in range(int(spells["t"].max()) + 1):
        at_risk = int((spells["t"] >= t).sum())
        churned = int(((spells["t"] == t) & (spells["event"] == 1)).sum())
        censored = int(((spells["t"] == t) & (spells["event"] == 0)).sum())
        survival *= 1 - churned / at_risk if at_risk else 1
        rows.append((t, at_risk, churned, censored, survival))
    return pd.DataFrame(rows, columns=["tenure_months", "at_risk", "churned", "censored", "survival"])


def build_fixture(path: Path, *, customers: int = 1200, seed: int = 7, quality: bool = False) -> Path:
    """Write an analytics DuckDB file at `path` with every churn mart the report reads; return the path."""
    attrs, months = _simulate(customers, seed)
    cm = _customer_months(attrs, months)
    tables = {
        "customer_months": cm[["customer_key", "month", "mrr", "previous_mrr", "movement", "new_mrr",
                               "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr",
                               "customer_type", "region", "tenure_band", "cohort_month", "churn_type"]],
        "monthly_movements": _monthly_movements(cm),
        "revenue_retention": _revenue_retention(cm),
        "cohort_retention": _cohort_retention(cm),
        "churn_by_segment": _churn_by_segment(cm),
        "lost_accounts": _lost_accounts(cm),
        "tenure_survival": _tenure_survival(cm),
        "data_cutoff": pd.DataFrame({
            "cutoff_date": [CUTOFF_DATE], "cutoff_month": [CUTOFF_DATE.replace(day=1)],
            "first_month": [FIRST_MONTH], "built_at": [datetime(2025, 6, 18, 6, 12, 3)],
            "crm_newest_export": [CUTOFF_DATE], "billing_newest_export": [date(2025, 6, 17)]}),
    }
    path.unlink(missing_ok=True)
    con = connect(path)
    try:
        con.execute("create schema churn")
        for name, frame in tables.items():
            con.register("frame", frame)
            # Money as DECIMAL and months as DATE, as the real marts have them.
            columns = ", ".join(
                f"cast(round({c}, 2) as decimal(14,2)) as {c}" if c.endswith("mrr")
                else f"cast({c} as date) as {c}" if c in DATE_COLUMNS else c for c in frame.columns)
            con.execute(f"create table churn.{name} as select {columns} from frame")
            con.unregister("frame")
        if quality:
            con.execute("create schema quality")
            con.execute("create table quality.summary as select 'run-1' as run_id, "
                        "timestamp '2025-06-18 06:15:00' as run_at, 42 as checks, 3 as errors, 2 as warnings")
            # Failed checks of the last run: some of the data the churn marts read, some elsewhere.
            con.execute("""create table quality.results as select * from (values
                ('run-1', 'services_services', 'service_has_known_customer', 'error',
                 'Every service belongs to a customer in the register (no orphan services).', false, 1),
                ('run-1', 'crm_customers', 'person_has_email', 'warning', 'A person has an email address.', false, 5),
                ('run-1', 'billing_invoices', 'total_is_net_plus_vat', 'error', 'Invoice total is net plus VAT.',
                 false, 2),
                ('run-1', 'privacy_retention', 'no_overdue_records', 'warning', 'No record is kept past its period.',
                 false, 1277),
                ('run-1', 'crm_ticket_messages', 'no_hetu_in_message', 'error', 'No HETU in a ticket message.',
                 false, 2),
                ('run-1', 'services_services', 'service_id_unique', 'error', 'Every service number appears once.',
                 true, 0)
                ) as t(run_id, suite, expectation, severity, description, success, unexpected_count)""")
    finally:
        con.close()
    return path
