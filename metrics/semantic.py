"""Metric queries over the published analytics database: MetricFlow plans the SQL, DuckDB runs it read-only.

The metrics are defined once, in dbt (`models/marts/churn/_churn__semantic.yml`): dbt writes them into
`semantic_manifest.json` on every parse and build. MetricFlow turns a request (metrics, group-bys, filters) into
SQL over the marts; here that SQL runs in an in-memory DuckDB database with the analytics file attached
read-only as `analytics`, the database the marts' relations name. Nothing here writes anything, nothing goes
to the network (MetricFlow's telemetry has no handler unless one is added), and the values come back as DuckDB
returns them: money as Decimal, counts as int, rates as float.

Names an analyst can use besides MetricFlow's own (`metric_time__month`, `customer_month__region`):
`month` (or day, week, quarter, year) for the metric's time at that grain, and a dimension's bare name
(`region`) when only one semantic model has it; in `--where` those names stand for the dimension, so
`region = 'Uusimaa'` works as well as `{{ Dimension('customer_month__region') }} = 'Uusimaa'`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from core.db import connect
from core.settings import Limits
from core.sql import literal

GRAINS = ("day", "week", "month", "quarter", "year")
METRIC_TIME = "metric_time"
ALIAS = "analytics"  # the database the semantic manifest's relations name (the marts' `database`)
# A quoted string or an identifier: the tokens of a --where filter, so names inside quotes stay as written.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\b[A-Za-z_][A-Za-z0-9_]*\b")


class MetricsError(Exception):
    """The query cannot be answered: an unknown metric or dimension, a filter MetricFlow refuses, no manifest."""


class QueryError(MetricsError):
    """MetricFlow cannot answer the request as asked: an unknown metric or group-by, a filter it refuses."""


class ManifestUnreadable(MetricsError):
    """The semantic manifest is not whole JSON (dbt rewrites it in place on every parse: try again after)."""


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    type: str  # simple, ratio, derived, ...
    description: str


@dataclass(frozen=True)
class MetricsResult:
    """A query's answer: one column per group-by, then one per metric, in the order asked for."""

    columns: list[str]
    rows: list[tuple]
    sql: str

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([[_text(v) for v in row] for row in self.rows])
        return out.getvalue()

    def to_json(self) -> str:
        """A JSON array of objects: money as a number with its cents, dates as ISO strings."""
        return json.dumps(self.records(), default=_json_value, indent=2, ensure_ascii=False)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _json_value(value):
    if isinstance(value, Decimal):
        return float(value)  # cents: the shortest float that reads back as the same amount
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _plain(value):
    """Times at midnight as dates: MetricFlow truncates the month's date to a timestamp."""
    if isinstance(value, datetime) and value.time() == datetime.min.time() and value.tzinfo is None:
        return value.date()
    return value


class DuckDbSqlClient:
    """MetricFlow's SqlClient protocol (metricflow.protocols.sql_client) over one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        from metricflow.protocols.sql_client import SqlEngine
        from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer

        self._con = con
        self.sql_engine_type = SqlEngine.DUCKDB
        self.sql_plan_renderer = DuckDbSqlPlanRenderer()

    def _run(self, stmt: str, sql_bind_parameter_set=None) -> duckdb.DuckDBPyConnection:
        params = dict(sql_bind_parameter_set.param_dict) if sql_bind_parameter_set is not None else {}
        return self._con.execute(stmt, params) if params else self._con.execute(stmt)

    def query(self, stmt: str, sql_bind_parameter_set=None):
        from metricflow.data_table.mf_table import MetricFlowDataTable

        cursor = self._run(stmt, sql_bind_parameter_set)
        return MetricFlowDataTable.create_from_rows(column_names=[d[0] for d in cursor.description],
                                                    rows=cursor.fetchall())

    def execute(self, stmt: str, sql_bind_parameter_set=None) -> None:
        self._run(stmt, sql_bind_parameter_set)

    def dry_run(self, stmt: str, sql_bind_parameter_set=None) -> None:
        self._run(f"explain {stmt}", sql_bind_parameter_set)

    def close(self) -> None:
        pass  # the connection belongs to SemanticLayer

    def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
        return f"${bind_parameter_key}"


class SemanticLayer:
    """The metrics of one semantic manifest, answered from one analytics file (read-only). Close it after use."""

    def __init__(self, manifest: Path, analytics: Path, *, limits: Limits | None = None):
        from metricflow.engine.metricflow_engine import MetricFlowEngine
        from metricflow_semantics.model.dbt_manifest_parser import parse_manifest_from_dbt_generated_manifest
        from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

        if not manifest.exists():
            raise MetricsError(f"no semantic manifest at {manifest}: `dbt parse` writes it")
        if not analytics.exists():
            raise MetricsError(f"no analytics database at {analytics}: run `warehouse build` first")
        try:
            semantic_manifest = parse_manifest_from_dbt_generated_manifest(manifest.read_text(encoding="utf-8"))
        except Exception as exc:  # JSON or pydantic: a file caught while dbt wrote it, or damaged
            raise ManifestUnreadable(f"the semantic manifest {manifest} could not be read ({type(exc).__name__}): "
                                     "`warehouse dbt -- parse` writes it again") from None
        self._con = connect(limits=limits)
        try:
            self._con.execute(f"attach {literal(str(analytics))} as {ALIAS} (read_only)")
            self._engine = MetricFlowEngine(semantic_manifest_lookup=SemanticManifestLookup(semantic_manifest),
                                            sql_client=DuckDbSqlClient(self._con))
        except BaseException:
            self._con.close()
            raise

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> SemanticLayer:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # --- what there is -------------------------------------------------------------------------------------
    def metrics(self) -> list[MetricInfo]:
        return [MetricInfo(m.name, m.label or m.name, str(getattr(m.type, "value", m.type)),
                           " ".join((m.description or "").split()))
                for m in self._engine.list_metrics(include_dimensions=False)]

    def dimensions(self, metric_names: list[str] | None = None) -> list[str]:
        """The group-bys by MetricFlow's name (`customer_month__region`), with the metric time's grains."""
        names = [f"{METRIC_TIME}__{grain}" for grain in GRAINS]
        try:
            names += [d.dunder_name for d in self._engine.list_dimensions(metric_names=metric_names)
                      if d.dunder_name != METRIC_TIME]
        except _mf_errors() as exc:
            raise QueryError(_one_paragraph(exc)) from None
        return list(dict.fromkeys(names))

    def _short_names(self) -> dict[str, str]:
        """Bare dimension names that only one semantic model has -> MetricFlow's name."""
        found: dict[str, list[str]] = {}
        for dunder in self.dimensions():
            if not dunder.startswith(METRIC_TIME):
                found.setdefault(dunder.rsplit("__", 1)[-1], []).append(dunder)
        return {short: names[0] for short, names in found.items() if len(names) == 1}

    def group_by_name(self, name: str) -> str:
        """`month` -> metric_time__month; `region` -> customer_month__region; MetricFlow's own names as they are."""
        name = name.strip()
        if name.lower() in GRAINS:
            return f"{METRIC_TIME}__{name.lower()}"
        return self._short_names().get(name, name)

    def where_template(self, text: str) -> str:
        """A filter in MetricFlow's template language. One that already uses it (`{{ Dimension(...) }}`) is kept;
        otherwise every known name outside quotes becomes its template: `month >= '2025-01-01'` ->
        `{{ TimeDimension('metric_time', 'month') }} >= '2025-01-01'`, `region = 'Uusimaa'` ->
        `{{ Dimension('customer_month__region') }} = 'Uusimaa'`."""
        if "{{" in text:
            return text
        names: dict[str, str] = {}
        for grain in GRAINS:
            template = f"{{{{ TimeDimension('{METRIC_TIME}', '{grain}') }}}}"
            names[grain] = names[f"{METRIC_TIME}__{grain}"] = template
        times = {d.dunder_name for d in self._engine.list_dimensions() if str(d.type).lower().endswith("time")}
        for dunder in self.dimensions():
            if not dunder.startswith(METRIC_TIME):
                kind = "TimeDimension" if dunder in times else "Dimension"
                names[dunder] = f"{{{{ {kind}('{dunder}') }}}}"
        for short, dunder in self._short_names().items():
            names[short] = names[dunder]

        def swap(match: re.Match) -> str:
            token = match.group()
            return token if token[0] in "'\"" else names.get(token, token)

        return _TOKEN.sub(swap, text)

    # --- queries -------------------------------------------------------------------------------------------
    def _request(self, metrics: list[str], by: list[str], where: list[str], order: list[str] | None,
                 limit: int | None):
        from metricflow.engine.metricflow_engine import MetricFlowQueryRequest, OutputColumnOrderMode

        if not metrics:
            raise QueryError("name at least one metric (`warehouse metrics --list` lists them)")
        group_by = [self.group_by_name(b) for b in by]
        return MetricFlowQueryRequest.create(
            metric_names=list(metrics), group_by_names=group_by,
            where_constraints=[self.where_template(w) for w in where] or None,
            order_by_names=[self.group_by_name(o) for o in order] if order else group_by or None, limit=limit,
            output_column_order_mode=OutputColumnOrderMode.INPUT_ORDER)

    def sql(self, metrics: list[str], by: list[str] = (), where: list[str] = (), order: list[str] | None = None,
            limit: int | None = None) -> tuple[str, dict]:
        """The SQL MetricFlow writes for the request, with its bind parameters (usually none)."""
        try:
            statement = self._engine.explain(self._request(list(metrics), list(by), list(where), order,
                                                           limit)).sql_statement
        except _mf_errors() as exc:
            raise QueryError(_one_paragraph(exc)) from None
        return statement.sql, dict(statement.bind_parameter_set.param_dict)

    def query(self, metrics: list[str], by: list[str] = (), where: list[str] = (), order: list[str] | None = None,
              limit: int | None = None) -> MetricsResult:
        sql, params = self.sql(metrics, by, where, order, limit)
        try:
            cursor = self._con.execute(sql, params) if params else self._con.execute(sql)
        except duckdb.CatalogException as exc:
            raise MetricsError(f"the published analytics database lacks a table the metrics read ({exc}): "
                               "run `warehouse build`") from None
        except duckdb.Error as exc:  # what MetricFlow writes runs: the analyst's filter is the likely cause
            raise QueryError(f"the metric query failed in DuckDB (a filter's value?): {exc}") from None
        columns = [d[0] for d in cursor.description]
        return MetricsResult(columns, [tuple(_plain(v) for v in row) for row in cursor.fetchall()], sql)


def _mf_errors() -> tuple[type[Exception], ...]:
    from metricflow_semantics.errors.error_classes import MetricFlowException

    return (MetricFlowException,)


def _one_paragraph(exc: Exception) -> str:
    """MetricFlow's messages span many lines with suggestions; keep them, without blank lines."""
    return "\n".join(line.rstrip() for line in str(exc).splitlines() if line.strip())
