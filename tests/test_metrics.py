"""The semantic layer (models/marts/churn/_churn__semantic.yml, metrics/semantic.py) and the analysts' tools.

MetricFlow's answers on the shared demo home equal the figures the churn report reads from the marts
(reports.churn.load): counts and money exactly, rates to 1e-9. `warehouse metrics` and `warehouse dbt` run through
the real CLI (`warehouse dbt` on copies of the demo home: it takes the home lock and may build); the README's
Python examples for analysts run as written.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import cli, copy_home

from core.db import connect
from metrics.semantic import QueryError, SemanticLayer
from reports.churn import load, month_add

# metric -> the monthly_movements column the report reads
COUNTS = {"customers": "customers_end", "customers_start": "customers_start", "new_customers": "customers_new",
          "reactivated_customers": "customers_reactivated", "churned_customers": "customers_churned"}
MONEY = {"mrr": "end_mrr", "start_mrr": "start_mrr", "new_mrr": "new_mrr", "expansion_mrr": "expansion_mrr",
         "reactivation_mrr": "reactivation_mrr", "contraction_mrr": "contraction_mrr", "churned_mrr": "churned_mrr",
         "voluntary_churned_mrr": "voluntary_churned_mrr", "involuntary_churned_mrr": "involuntary_churned_mrr"}
RATES = {"logo_churn_rate": "logo_churn_rate", "gross_mrr_churn_rate": "gross_mrr_churn_rate",
         "net_mrr_churn_rate": "net_mrr_churn_rate"}
RETENTION = {"gross_revenue_retention": "grr", "net_revenue_retention": "nrr"}
EVERY_METRIC = [*COUNTS, *MONEY, *RATES, *RETENTION, "arpa", "gross_mrr_churn", "net_mrr_churn",
                "involuntary_churn_share"]


def manifest(home) -> Path:
    return home.dbt_dir / "target" / "semantic_manifest.json"


@pytest.fixture(scope="module")
def layer(demo):
    with SemanticLayer(manifest(demo.home), demo.home.analytics) as layer:
        yield layer


@pytest.fixture(scope="module")
def monthly(layer) -> dict[date, dict]:
    """Every metric by month, as MetricFlow answers."""
    return {row["metric_time__month"]: row for row in layer.query(EVERY_METRIC, ["month"]).records()}


@pytest.fixture(scope="module")
def analytics(demo):
    con = connect(demo.home.analytics, read_only=True)
    yield con
    con.close()


def months(analytics) -> list[date]:
    return [m for (m,) in analytics.execute("select month from churn.monthly_movements order by month").fetchall()]


def same_rate(metric, mart) -> bool:
    return (metric is None and mart is None) or (metric is not None and mart is not None
                                                 and abs(metric - mart) <= 1e-9)


def test_the_report_reads_the_metrics_figures(analytics, monthly):
    """The report's KPI inputs for its default month (the latest complete one), the cut-off month, the first
    month with 12-month retention and one in the middle: each equal to its metric."""
    spine = months(analytics)
    default = load(analytics)
    chosen = [default.month, spine[-1], spine[12], spine[len(spine) // 2]]
    assert default.month < spine[-1]  # the demo's cut-off is mid-month: the default month is the one before
    for month in chosen:
        data = load(analytics, month)
        current, metrics = data.current, monthly[month]
        assert current["month"] == month
        for metric, column in COUNTS.items():
            assert metrics[metric] == current[column], (month, metric)
        for metric, column in MONEY.items():
            # the report reads DECIMAL money as float; MetricFlow's sum is the DECIMAL itself
            assert isinstance(metrics[metric], Decimal) and float(metrics[metric]) == current[column], (month, metric)
        for metric, column in RATES.items():
            assert same_rate(metrics[metric], current[column]), (month, metric)
        retention = data.retention.get(month, {"grr": None, "nrr": None})
        for metric, key in RETENTION.items():
            assert same_rate(metrics[metric], retention[key]), (month, metric)
        assert same_rate(metrics["arpa"], current["end_mrr"] / current["customers_end"]), month
        # the report computes this one itself, under its churn-by-type chart
        share = current["involuntary_churned_mrr"] / current["churned_mrr"] if current["churned_mrr"] else None
        assert same_rate(metrics["involuntary_churn_share"], share), month
    assert monthly[default.month]["gross_revenue_retention"] is not None  # the demo has history enough


def test_every_month_of_the_marts_equals_the_metrics(analytics, monthly):
    """Every month of the spine, against the marts' own DECIMAL and integer columns."""
    cursor = analytics.execute("""
        select m.*, r.gross_revenue_retention, r.net_revenue_retention
        from churn.monthly_movements m left join churn.revenue_retention r using (month) order by month""")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert len(rows) > 24
    for row in rows:
        metrics = monthly.get(row["month"])
        assert metrics is not None, row["month"]  # a month without any customer row would have none
        for metric, column in {**COUNTS, **MONEY}.items():
            assert metrics[metric] == row[column], (row["month"], metric)
        assert metrics["gross_mrr_churn"] == row["churned_mrr"] + row["contraction_mrr"]
        assert metrics["net_mrr_churn"] == (row["churned_mrr"] + row["contraction_mrr"] - row["expansion_mrr"]
                                            - row["reactivation_mrr"])
        for metric in (*RATES, *RETENTION):
            assert same_rate(metrics[metric], row[metric if metric in RETENTION else RATES[metric]]), metric


def test_stocks_are_not_summed_over_a_quarter(layer, monthly):
    """By quarter: MRR and customers of its last month, the start figures of its first, the movements summed."""
    quarters = {row["metric_time__quarter"]: row
                for row in layer.query(["mrr", "customers", "start_mrr", "customers_start", "churned_customers",
                                        "logo_churn_rate", "net_revenue_retention"], ["quarter"]).records()}
    for quarter, row in list(quarters.items())[-6:]:
        inside = [monthly[m] for m in sorted(monthly) if quarter <= m < month_add(quarter, 3)]
        assert row["mrr"] == inside[-1]["mrr"] and row["customers"] == inside[-1]["customers"]
        assert row["start_mrr"] == inside[0]["start_mrr"]
        assert row["customers_start"] == inside[0]["customers_start"]
        assert row["churned_customers"] == sum(m["churned_customers"] for m in inside)
        assert same_rate(row["logo_churn_rate"], row["churned_customers"] / row["customers_start"])
        assert same_rate(row["net_revenue_retention"], inside[-1]["net_revenue_retention"])


@pytest.mark.parametrize("dimension", ["customer_type", "region", "tenure_band"])
def test_churn_by_segment_equals_the_metrics_by_dimension(layer, analytics, dimension):
    """The report's segment panels read churn_by_segment: its figures are the metrics split by the dimension."""
    found = layer.query(["customers_start", "churned_customers", "start_mrr", "churned_mrr", "contraction_mrr",
                         "logo_churn_rate", "mrr_churn_rate", "gross_mrr_churn_rate"], ["month", dimension],
                        [f"month >= '{months(analytics)[-13]}'"])
    metrics = {(r["metric_time__month"], r[f"customer_month__{dimension}"]): r for r in found.records()}
    cursor = analytics.execute("""
        select month, segment, customers_start, customers_churned, start_mrr, churned_mrr, contraction_mrr,
               logo_churn_rate, mrr_churn_rate, gross_mrr_churn_rate
        from churn.churn_by_segment where dimension = ? and month >= ?""", [dimension, months(analytics)[-13]])
    rows = cursor.fetchall()
    assert rows
    for month, segment, start, churned, start_mrr, churned_mrr, contraction, logo_rate, mrr_rate, gross in rows:
        row = metrics[(month, segment)]
        assert (row["customers_start"], row["churned_customers"]) == (start, churned), (month, segment)
        assert (row["start_mrr"], row["churned_mrr"]) == (start_mrr, churned_mrr), (month, segment)
        assert same_rate(row["logo_churn_rate"], logo_rate) and same_rate(row["mrr_churn_rate"], mrr_rate)
        # the report's segment panels: gross, contraction included, as the key figure
        assert row["contraction_mrr"] == contraction and same_rate(row["gross_mrr_churn_rate"], gross)
    listed = {(month, segment) for month, segment, *_ in rows}
    assert all(r["customers_start"] == 0 for key, r in metrics.items() if key not in listed)  # only new customers


def test_filters_in_plain_names_and_in_metricflows_own(layer):
    plain = layer.query(["mrr", "customers"], ["month"], ["customer_type = 'business'", "month >= '2026-01-01'"])
    templated = layer.query(["mrr", "customers"], ["metric_time__month"], [
        "{{ Dimension('customer_month__customer_type') }} = 'business'",
        "{{ TimeDimension('metric_time', 'month') }} >= '2026-01-01'"])
    assert plain.rows == templated.rows and plain.rows
    assert all(row[0] >= date(2026, 1, 1) for row in plain.rows)
    # a name inside quotes stays a value
    assert layer.where_template("region = 'region'") == "{{ Dimension('customer_month__region') }} = 'region'"


def test_unknown_names_and_impossible_splits_are_the_askers_mistake(layer):
    with pytest.raises(QueryError, match="mrr"):
        layer.query(["mrx"], ["month"])
    with pytest.raises(QueryError):  # 12-month retention has no customer dimension
        layer.query(["gross_revenue_retention"], ["region"])


def test_metric_queries_stay_off_the_network(demo, monkeypatch):
    attempts = []

    def refuse(*args, **_kwargs):
        attempts.append(args[:1])
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    with SemanticLayer(manifest(demo.home), demo.home.analytics) as layer:
        assert layer.query(["mrr"], ["month"]).rows
    assert attempts == []


# --- the commands ------------------------------------------------------------------------------------------
def test_warehouse_metrics_prints_csv_json_and_a_table(demo, monthly):
    month = sorted(monthly)[-2]
    result = cli(demo.home, "metrics", "--metrics", "mrr,logo_churn_rate", "--by", "month", "--where",
                 f"month = '{month}'", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["metric_time__month,mrr,logo_churn_rate",
                                          f"{month},{monthly[month]['mrr']},{monthly[month]['logo_churn_rate']!r}"]
    result = cli(demo.home, "metrics", "--metrics", "customers", "--by", "quarter,customer_type", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["customer_month__customer_type"] for r in rows} >= {"person", "business"}
    result = cli(demo.home, "metrics", "--metrics", "arpa", "--by", "month")
    assert result.exit_code == 0 and "arpa" in result.output
    result = cli(demo.home, "metrics", "--list")
    assert result.exit_code == 0 and "logo_churn_rate" in result.output and "customer_month__region" in result.output
    result = cli(demo.home, "metrics", "--metrics", "mrx", "--by", "month")
    assert result.exit_code == 2 and "mrr" in result.output  # MetricFlow's suggestion


def test_without_a_semantic_manifest_the_wrapper_parses_first(demo, tmp_path):
    home = copy_home(demo.home, tmp_path / "home")
    manifest(home).unlink()
    result = cli(home, "metrics", "--metrics", "customers", "--by", "year", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert manifest(home).exists() and result.output.startswith("metric_time__year,customers\n")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_warehouse_dbt_ls_and_show_read_only(demo, tmp_path):
    home = copy_home(demo.home, tmp_path / "home")
    published = digest(home.analytics)
    result = cli(home, "dbt", "--", "ls", "--select", "marts.churn", "--resource-type", "model")
    assert result.exit_code == 0, result.output
    assert "customer_register.marts.churn.monthly_movements" in result.output
    result = cli(home, "dbt", "--", "show", "--select", "customers", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert "Previewing node 'customers'" in result.output
    preview = result.output.split("Previewing node 'customers':", 1)[1]
    assert len(re.findall(r"^\| (person|business|unknown) ", preview, re.M)) == 5
    # what `show` printed is not in dbt's log, and nothing was written or published
    assert "Previewing" not in (home.dbt_dir / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert digest(home.analytics) == published and not home.analytics_next.exists()
    # read-only means read-only: the vault and analytics are attached so
    result = cli(home, "dbt", "--", "show", "--inline", "select database_name, readonly from duckdb_databases() "
                 "where database_name in ('vault', 'analytics') order by 1")
    assert re.search(r"analytics\s*\|\s*True", result.output) and re.search(r"vault\s*\|\s*True", result.output)


def test_warehouse_dbt_build_builds_aside_and_publishes_nothing(demo, tmp_path):
    home = copy_home(demo.home, tmp_path / "home")
    published = digest(home.analytics)
    result = cli(home, "dbt", "--", "build", "--select", "monthly_movements")
    assert result.exit_code == 0, result.output
    assert "Completed successfully" in result.output and "not published" in result.output
    assert home.analytics_next.exists() and digest(home.analytics) == published
    runs = [json.loads(line) for line in home.run_log.read_text(encoding="utf-8").splitlines()]
    assert runs[-1]["command"] == "dbt" and runs[-1]["result"] == "ok"


@pytest.mark.parametrize(("args", "says"), [
    (["deps"], "no dbt packages"), (["docs", "serve"], "catalogue"), (["--version"], "dbt-core"),
    (["ls", "--vars", "{}"], "--vars is set by the warehouse"), ([], "name a dbt command"),
    (["--log-level", "debug", "build"], "name a dbt command first"), (["bulid"], "not a dbt command")])
def test_warehouse_dbt_refuses_what_it_does_not_run(demo, args, says):
    result = cli(demo.home, "dbt", "--", *args)
    assert result.exit_code == 2 and says in result.output


# --- the README's tools for analysts ---------------------------------------------------------------------------
def readme_examples() -> list[str]:
    """The Python examples of the README's "For analysts: tools" section, as written."""
    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("## For analysts: tools", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def run_python(code: str, cwd: Path) -> str:
    """`code` in a Python of its own, as an analyst runs it (this process holds the demo's analytics open with
    other settings, which DuckDB refuses within one process)."""
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_readmes_python_examples_run_as_written(demo, tmp_path):
    examples = readme_examples()
    pandas_example = next(e for e in examples if ".df()" in e)
    metrics_example = next(e for e in examples if "SemanticLayer" in e)
    assert any(".pl()" in e for e in examples)  # polars: not installed here, so not run
    (tmp_path / "var").symlink_to(demo.home.root)  # the project folder's var/, as the examples expect
    printed = run_python(pandas_example, tmp_path).splitlines()
    assert printed[0].split() == ["month", "end_mrr", "customers_end", "logo_churn_rate"] and len(printed) == 13
    printed = run_python(metrics_example + "\nprint(sorted(rows[0]))", tmp_path)
    assert printed.strip() == str(sorted(["metric_time__month", "customer_month__customer_type", "mrr",
                                          "logo_churn_rate"]))


def test_the_readmes_superset_uri_opens_analytics_read_only(demo, tmp_path):
    """Superset (and any SQLAlchemy tool) through duckdb-engine, with the README's URI form."""
    uri = f"duckdb:///{demo.home.analytics}?access_mode=read_only"
    printed = run_python(f"""
import sqlalchemy
engine = sqlalchemy.create_engine({uri!r})
with engine.connect() as con:
    print(con.execute(sqlalchemy.text("select count(*) from churn.monthly_movements")).scalar())
    try:
        con.execute(sqlalchemy.text("create table churn.scratch as select 1 as x"))
    except sqlalchemy.exc.DBAPIError as exc:
        print("refused:", "read-only" in str(exc))
""", tmp_path).split()
    assert int(printed[0]) > 24 and printed[1:] == ["refused:", "True"]
