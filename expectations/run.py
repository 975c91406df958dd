"""Run the quality suites on the vault with Great Expectations, keep a history, publish a summary.

Every check is computed in DuckDB: GX's SQL execution engine sends the queries to the vault connection.
Example keys leave this module only as pseudonymous keys (HMAC under the warehouse's key file).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from core.db import connect
from core.pseudonym import pseudonymous_key
from core.reference import country_codes
from core.schema import ensure_vault_schema
from core.settings import Settings
from core.sql import literal, relation_exists
from core.vault import open_vault

SUITES_DIR = Path(__file__).parent / "suites"
EXAMPLES = 20  # example keys kept per failed check
SEVERITIES = ("error", "warning")
SNAPSHOT = "quality_snapshot"  # in-memory catalog of the checked tables (views copied), for a run
ANALYTICS = "quality_analytics"  # the analytics file, attached read-only for the run
# Schemas a suite's queries may name, by the database the suite checks (`database:` in the suite file).
SCHEMAS = {"vault": r"staging|ingest|raw_\w+", "analytics": r"core|churn|privacy"}


# Identifier and value checks as DuckDB macros (temp: they exist on the checks' connection only). They live
# here rather than in the suites because GX formats queries with str.format, which would eat regex braces.
MACROS = """
create or replace temp macro q_hetu_valid(h) as coalesce(
    regexp_full_match(h, '[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-Y]')
    and try_strptime(
        cast(case when substr(h, 7, 1) = '+' then 1800
                  when substr(h, 7, 1) in ('A', 'B', 'C', 'D', 'E', 'F') then 2000
                  else 1900 end + try_cast(substr(h, 5, 2) as integer) as varchar)
        || substr(h, 3, 2) || substr(h, 1, 2), '%Y%m%d') is not null
    and try_cast(substr(h, 8, 3) as integer) >= 2
    and substr('0123456789ABCDEFHJKLMNPRSTUVWXY',
               cast(try_cast(substr(h, 1, 6) || substr(h, 8, 3) as bigint) % 31 as integer) + 1, 1)
        = substr(h, 11, 1),
    false);
create or replace temp macro q_contains_hetu(t) as
    regexp_matches(t, '(^|[^0-9A-Za-z])[0-3][0-9][01][0-9][0-9]{2}[-+A-FU-Y][0-9]{3}[0-9A-Y]($|[^0-9A-Za-z])');
create or replace temp macro q_ytunnus_remainder(y) as
    list_sum(list_transform([7, 9, 10, 5, 8, 4, 2], lambda w, i: w * try_cast(substr(y, i, 1) as integer))) % 11;
create or replace temp macro q_ytunnus_valid(y) as coalesce(
    regexp_full_match(y, '[0-9]{7}-[0-9]')
    and q_ytunnus_remainder(y) <> 1
    and try_cast(right(y, 1) as integer) = (11 - q_ytunnus_remainder(y)) % 11,
    false);
create or replace temp macro q_reference_valid(r) as coalesce(
    regexp_full_match(r, '[0-9]{4,20}')
    and (10 - list_sum(list_transform(string_split(reverse(left(r, length(r) - 1)), ''),
                                      lambda d, i: try_cast(d as integer) * [7, 3, 1][(i - 1) % 3 + 1])) % 10) % 10
        = try_cast(right(r, 1) as integer),
    false);
create or replace temp macro q_postal_code_fi(p) as regexp_full_match(p, '[0-9]{5}');
create or replace temp macro q_email(e) as regexp_full_match(e, '[^@\\s]+@[^@\\s]+\\.[A-Za-z]{2,}');
create or replace temp macro q_vat_rate(d) as
    case when d < date '2013-01-01' then 23.00 when d < date '2024-09-01' then 24.00 else 25.50 end;
create or replace temp macro q_country_code(c) as c in (COUNTRIES);
""".replace("COUNTRIES", ", ".join(f"'{c}'" for c in sorted(country_codes())))



@dataclass(frozen=True)
class Check:
    suite: str
    name: str
    severity: str
    description: str
    expect: str | None = None  # a GX expectation class, e.g. expect_column_values_to_be_unique
    kwargs: dict = field(default_factory=dict)
    query: str | None = None  # or an unexpected-rows query returning `record_key`


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    table: str
    key: tuple[str, ...]
    pseudonymise: bool
    checks: tuple[Check, ...]
    database: str = "vault"  # or "analytics": the marts of the analytics file being published


@dataclass
class CheckResult:
    suite: str
    expectation: str
    severity: str
    description: str
    success: bool
    unexpected_count: int | None
    example_keys: list[str]
    raised: bool = False
    skipped: bool = False  # not run: its database was not there (counts neither as passed nor as failed)


@dataclass
class CheckRun:
    run_id: str
    run_at: datetime
    results: list[CheckResult]
    seconds: float = 0.0
    trend: list[dict] = field(default_factory=list)  # earlier runs, oldest first, for the report
    html_path: Path | None = None  # the quality page, once written

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success]

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.severity == "error" for r in self.failed)

    @property
    def warnings(self) -> int:
        return sum(r.severity == "warning" for r in self.failed)

    @property
    def has_errors(self) -> bool:
        """An error-severity check failed: `warehouse check` exits non-zero so the scheduler alerts."""
        return self.errors > 0

    def summary(self) -> dict:
        return {"run_at": self.run_at, "checks": len(self.results),
                "passed": len(self.results) - len(self.failed) - self.skipped, "errors": self.errors,
                "warnings": self.warnings, "skipped": self.skipped}

    def summary_counts(self) -> dict[str, int]:
        """The summary's counts only (for the run log)."""
        return {k: v for k, v in self.summary().items() if k != "run_at"}

    def print_summary(self, console=None) -> None:
        from rich.console import Console
        from rich.table import Table

        console = console or Console(stderr=True)
        table = Table(title=f"Data quality: {len(self.results)} checks", title_justify="left")
        for column in ("suite", "check", "severity", "result", "rows"):
            table.add_column(column, justify="right" if column == "rows" else "left")
        for r in sorted(self.results, key=lambda r: (r.success, SEVERITIES.index(r.severity), r.suite)):
            if r.success:
                continue
            colour = "red" if r.severity == "error" else "yellow"
            outcome = "raised" if r.raised else "failed"
            table.add_row(r.suite, r.expectation, f"[{colour}]{r.severity}[/]", f"[{colour}]{outcome}[/]",
                          "" if r.unexpected_count is None else f"{r.unexpected_count:,}")
        console.print(table)
        s = self.summary()
        colour = "red" if s["errors"] else "yellow" if s["warnings"] else "green"
        console.print(f"[{colour}]{s['passed']} of {s['checks']} checks passed[/]: {s['errors']} errors, "
                      f"{s['warnings']} warnings ({self.seconds:.1f} s)")
        skipped = sorted({r.suite for r in self.results if r.skipped})
        if skipped:
            console.print(f"[yellow]{s['skipped']} checks skipped[/] (no analytics database): {', '.join(skipped)}")

    def write_html(self, folder: Path, *, controller: str) -> Path:
        from expectations.report import write_html

        return write_html(self, folder, controller=controller)


def load_suites(folder: Path = SUITES_DIR) -> list[Suite]:
    """Read the suite files; refuse (with the file named) a check without a severity or a description."""
    suites = []
    for path in sorted(folder.glob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        params = spec.get("params", {})
        key = tuple(spec["key"])
        checks = []
        for item in spec["expectations"]:
            if item.get("severity") not in SEVERITIES or not item.get("description"):
                raise ValueError(f"{path.name}: {item.get('name')} needs a severity (error|warning) and a description")
            query = item.get("query")
            if "unexpected_rows" in item:
                record_key = " || '/' || ".join(f"cast({k} as varchar)" for k in key)
                query = f"select {record_key} as record_key from {{batch}} where {item['unexpected_rows']} order by 1"
            if query:
                query = _substitute(query, params)
            checks.append(Check(spec["suite"], item["name"], item["severity"], " ".join(item["description"].split()),
                                item.get("expect"), item.get("kwargs", {}), query))
        database = spec.get("database", "vault")
        if database not in SCHEMAS:
            raise ValueError(f"{path.name}: database must be one of {', '.join(SCHEMAS)}")
        suites.append(Suite(spec["suite"], spec.get("description", ""), spec["table"], key,
                            spec.get("pseudonymise", True), tuple(checks), database))
    return suites


def _substitute(query: str, params: dict) -> str:
    """Fill the suite's `{param}` placeholders; `{batch}` is left for GX."""
    return re.sub(r"\{(\w+)\}", lambda m: str(params[m[1]]) if m[1] in params else m[0], query)


def run_checks(settings: Settings, secret: bytes, analytics: Path | None = None, *, history_db: Path | None = None,
               suites: list[Suite] | None = None) -> CheckRun:
    """Run every suite; append results to a history table in the vault (schema `quality`: run id, run_at, suite,
    expectation, severity, success, unexpected_count, a few example keys — as pseudonymous keys (HMAC via the key
    file), never personal data in clear); if `analytics` is given (a writable DuckDB file that is about to be
    published) write `quality.summary` (one row: run_at, checks, passed, errors, warnings) and `quality.results`
    (the latest run's rows, no personal data) into it for the churn report's and catalogue's banner.

    Suites with `database: analytics` check the marts of `analytics`, else of the published analytics file next
    to the vault; without either they are reported as skipped."""
    import time

    from expectations import gx_duckdb

    started = time.perf_counter()
    suites = load_suites() if suites is None else suites
    run = CheckRun(uuid.uuid4().hex, datetime.now().astimezone(), [])
    marts = _analytics_file(settings, analytics)
    con = open_vault(settings, read_only=history_db is not None)
    try:
        vault_catalog = con.execute("select current_database()").fetchone()[0]
        schemas = _snapshot(con, [s for s in suites if s.database == "vault" or marts], marts)
        con.execute(MACROS)
        ctx = gx_duckdb.context()
        source = gx_duckdb.add_datasource(ctx, "vault", con, schemas)
        for suite in suites:
            if suite.database == "analytics" and marts is None:
                run.results.extend(CheckResult(suite.name, c.name, c.severity, c.description, True, None, [],
                                               skipped=True) for c in suite.checks)
                continue
            run.results.extend(_run_suite(ctx, source, suite, secret))
        run.seconds = time.perf_counter() - started
        con.execute(f'use "{vault_catalog}"; detach {SNAPSHOT}; detach database if exists {ANALYTICS}')
        if history_db is None:
            _append_history(con, run)
            run.trend = _trend(con)
    finally:
        con.close()
    if history_db is not None:
        con = connect(history_db, limits=settings.limits)
        try:
            _append_history(con, run)
            run.trend = _trend(con)
        finally:
            con.close()
    if analytics is not None:
        _publish(analytics, run, settings)
    return run


def _analytics_file(settings: Settings, analytics: Path | None) -> Path | None:
    """The analytics file the mart suites check: the one being published, else the published one, if any."""
    path = analytics if analytics is not None else settings.home.analytics
    return path if path.exists() else None


def _snapshot(con, suites: list[Suite], analytics: Path | None = None) -> list[str]:
    """Make an in-memory catalog of every table the suites read, and make it the default catalog.

    The vault's staging views recompute each entity's current state from all file versions (0.1-0.7 s each on
    2,000 customers) and GX sends two queries per check: each view is copied once, which makes the run fast
    and lets every check see the same state of the vault (DuckDB spills the copy to its temp directory under
    memory pressure). A table is read where it is, through a view in the catalog: copying the large tables
    (invoice lines, retention status) only cost time and temp space. The marts of `analytics` are in its file,
    attached read-only for the run (the caller writes the quality banner into it afterwards; their schemas,
    core, churn and privacy, are not in the vault)."""
    tables: dict[str, str] = {}  # schema.table -> the database it is read from
    for suite in suites:
        tables[suite.table] = suite.database
        for check in suite.checks:
            found = re.finditer(rf"\b({SCHEMAS[suite.database]})\.(\w+)", check.query or "")
            tables.update({f"{m[1]}.{m[2]}": suite.database for m in found})
    schemas = sorted({t.split(".")[0] for t in tables})
    catalogs = {"vault": con.execute("select current_database()").fetchone()[0], "analytics": ANALYTICS}
    con.execute(f"attach ':memory:' as {SNAPSHOT}")
    for schema in schemas:
        con.execute(f"create schema {SNAPSHOT}.{schema}")
    if analytics is not None and "analytics" in tables.values():
        con.execute(f"attach {literal(analytics)} as {ANALYTICS} (read_only)")
    views = {f"{catalog}.{schema}.{name}" for catalog, schema, name in con.execute(
        "select table_catalog, table_schema, table_name from information_schema.tables where table_type = 'VIEW'"
    ).fetchall()}
    for table, database in sorted(tables.items()):
        source = f"{catalogs[database]}.{table}"
        kind = "table" if source in views else "view"
        con.execute(f'create {kind} {SNAPSHOT}.{table} as select * from "{catalogs[database]}".{table}')
    con.execute(f"use {SNAPSHOT}")
    return schemas


def _run_suite(ctx, source, suite: Suite, secret: bytes) -> list[CheckResult]:
    import great_expectations as gx

    schema, table = suite.table.split(".")
    asset = source.add_table_asset(suite.name, table_name=table, schema_name=schema)
    batch = asset.add_batch_definition_whole_table("all")
    gx_suite = ctx.suites.add(gx.ExpectationSuite(name=suite.name))
    for check in suite.checks:
        gx_suite.add_expectation(_expectation(check))
    definition = ctx.validation_definitions.add(gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite))
    try:
        # COMPLETE: the unexpected-rows expectations return their rows (at most 200) only then.
        outcome = definition.run(result_format={"result_format": "COMPLETE", "partial_unexpected_count": EXAMPLES,
                                                "unexpected_index_column_names": list(suite.key)})
    except Exception as exc:  # e.g. the table is missing: every check of the suite counts as failed
        print(f"quality suite {suite.name} could not run: {type(exc).__name__}: {exc}")
        return [CheckResult(suite.name, c.name, c.severity, c.description, False, None, [], raised=True)
                for c in suite.checks]
    by_name = {c.name: c for c in suite.checks}
    results = []
    for r in outcome.results:
        check = by_name[r.expectation_config.meta["name"]]
        raised = bool(r.exception_info and r.exception_info.get("raised_exception"))
        if not raised and any(v.get("raised_exception") for v in (r.exception_info or {}).values()
                              if isinstance(v, dict)):
            raised = True
        details = r.result or {}
        count = details.get("observed_value") if check.query else details.get("unexpected_count")
        keys = _example_keys(details, check, suite.key)
        if suite.pseudonymise:
            keys = [pseudonymous_key(secret, k) for k in keys]
        results.append(CheckResult(suite.name, check.name, check.severity, check.description,
                                   bool(r.success) and not raised, None if raised else int(count or 0), keys, raised))
    return results


def _expectation(check: Check):
    import great_expectations as gx

    common = {"description": check.description, "meta": {"name": check.name}, "catch_exceptions": True,
              "severity": "critical" if check.severity == "error" else "warning"}
    if check.query:
        return gx.expectations.UnexpectedRowsExpectation(unexpected_rows_query=check.query, **common)
    cls = getattr(gx.expectations, "".join(part.title() for part in check.expect.split("_")))
    return cls(**check.kwargs, **common)


def _example_keys(details: dict, check: Check, key: tuple[str, ...]) -> list[str]:
    """Record keys of a few failing rows: from the unexpected-rows query's `record_key`, else GX's index list."""
    if check.query:
        rows = (details.get("details") or {}).get("unexpected_rows") or []
        keys = [str(row["record_key"]) for row in rows if row.get("record_key") is not None]
    else:
        rows = details.get("unexpected_index_list") or details.get("partial_unexpected_index_list") or []
        keys = ["/".join(str(row[k]) for k in key) for row in rows]
    return sorted(set(keys))[:EXAMPLES]


def _append_history(con, run: CheckRun) -> None:
    ensure_vault_schema(con)
    con.executemany("insert into quality.check_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (run.run_id, run.run_at, r.suite, r.expectation, r.severity, None if r.skipped else r.success,
         r.unexpected_count, r.example_keys, r.description, r.raised) for r in run.results])


def _trend(con, runs: int = 30) -> list[dict]:
    rows = con.execute("""
        select run_at, count(*), count(*) filter (where success),
               count(*) filter (where not success and severity = 'error'),
               count(*) filter (where not success and severity = 'warning')
        from quality.check_results group by run_id, run_at order by run_at desc limit ?""", [runs]).fetchall()
    return [{"run_at": r[0], "checks": r[1], "passed": r[2], "errors": r[3], "warnings": r[4]} for r in rows[::-1]]


def published_summary(settings: Settings) -> dict | None:
    """The quality summary the published analytics carries (the last check before it was published), if any."""
    path = settings.home.analytics
    if not path.exists():
        return None
    con = connect(path, read_only=True, limits=settings.limits)
    try:
        if not relation_exists(con, "quality.summary"):
            return None
        cursor = con.execute("select run_at, checks, passed, errors, warnings from quality.summary")
        row = cursor.fetchone()
        return dict(zip([d[0] for d in cursor.description], row, strict=True)) if row else None
    finally:
        con.close()


def _publish(analytics: Path, run: CheckRun, settings: Settings) -> None:
    """The latest run into the analytics database: a one-row summary for banners, and its per-check rows."""
    con = connect(analytics, limits=settings.limits)
    try:
        con.execute("create schema if not exists quality")
        s = run.summary()
        con.execute("""create or replace table quality.summary as
                       select ?::varchar as run_id, ?::timestamptz as run_at, ?::integer as checks,
                              ?::integer as passed, ?::integer as errors, ?::integer as warnings""",
                    [run.run_id, s["run_at"], s["checks"], s["passed"], s["errors"], s["warnings"]])
        con.execute("""create or replace table quality.results (
                           run_id varchar, run_at timestamptz, suite varchar, expectation varchar,
                           severity varchar, description varchar, success boolean, unexpected_count bigint,
                           example_keys varchar[])""")
        con.executemany("insert into quality.results values (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            (run.run_id, run.run_at, r.suite, r.expectation, r.severity, r.description, r.success,
             r.unexpected_count, r.example_keys) for r in run.results])
    finally:
        con.close()
