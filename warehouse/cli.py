"""`warehouse`: the command line of the customer-register warehouse."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from datetime import date
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.config import DEFAULT_CONFIG_DIR, load_entities, load_inbox
from ingest.load import FileResult, find_files, ingest_inbox
from warehouse.db import DEFAULT_MEMORY_LIMIT
from warehouse.home import Home, configure_logging
from warehouse.spill import SpillWatch
from warehouse.vault import open_vault

# Not a terminal (cron, CI, `make`): Rich would assume 80 columns and truncate the tables.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 110)
log = logging.getLogger("warehouse")


def _date(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", "home_dir", envvar="WAREHOUSE_HOME", type=click.Path(file_okay=False),
              help="Folder for the databases, outputs and logs (env WAREHOUSE_HOME; default: ./var).")
@click.option("--threads", type=int, envvar="WAREHOUSE_THREADS", help="DuckDB threads (default: all cores).")
@click.option("--memory-limit", envvar="WAREHOUSE_MEMORY_LIMIT",
              help="DuckDB memory limit [default: 2.5GB]; larger work spills to <home>/tmp.")
@click.option("-v", "--verbose", is_flag=True, help="Debug-level log file.")
@click.pass_context
def main(ctx: click.Context, home_dir: str | None, threads: int | None, memory_limit: str | None,
         verbose: bool) -> None:
    """Customer-register warehouse of Local Loop Oy: exports in, analytics out.

    The vault (raw and staging layers: personal data) and the analytics database (marts) live in the
    home folder, with logs. Logs never contain personal data.
    """
    os.umask(0o077)  # every database, export, report and log we write is owner-only: they concern people
    # Every DuckDB connection (warehouse.db.connect) and dbt (profiles.yml) read the limits from here.
    if threads:
        os.environ["WAREHOUSE_THREADS"] = str(threads)
    if memory_limit:
        os.environ["WAREHOUSE_MEMORY_LIMIT"] = memory_limit
    home = Home.resolve(home_dir).create()
    configure_logging(home, verbose)
    ctx.obj = {"home": home}
    watch = SpillWatch(home.tmp).__enter__()
    ctx.call_on_close(lambda: _report_spill(watch))


def _report_spill(watch: SpillWatch) -> None:
    """Past the memory limit DuckDB works on disk rather than fail; the operator should know it did."""
    peak = watch.stop()
    if peak:
        limit = os.environ.get("WAREHOUSE_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
        log.warning("DuckDB spilled up to %d MiB to %s (memory limit %s)", peak >> 20, watch.folder, limit)
        console.print(f"[yellow]Note:[/] the work outgrew the memory limit ({limit}): DuckDB spilled up to "
                      f"{peak / 2**20:,.0f} MiB to {watch.folder} and went on. A higher --memory-limit is faster.")


# --- generate ------------------------------------------------------------------------------------------
@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Inbox folder to write the exports into.")
@click.option("--customers", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same files, byte for byte.")
@click.option("--start", callback=_date, default="2019-01-01", show_default=True,
              help="Day the first service opened (YYYY-MM-DD).")
@click.option("--end", callback=_date, default=None, help="Last export date (YYYY-MM-DD) [default: today].")
@click.option("--export-days", type=click.IntRange(1), default=3, show_default=True,
              help="Daily exports up to --end; the first carries the full history.")
@click.option("--defect-rate", type=click.FloatRange(0, 0.5), default=0.01, show_default=True,
              help="Share of rows given a realistic defect (listed in manifest.json).")
def generate(out: Path, customers: int, seed: int, start: date, end: date | None, export_days: int,
             defect_rate: float) -> None:
    """Write realistic sample exports (every file of the contract) with a manifest of injected defects."""
    _generate(out, customers, seed, start, end or date.today(), export_days, defect_rate)


def _generate(out: Path, customers: int, seed: int, start: date, end: date, export_days: int,
              defect_rate: float) -> dict:
    from samplegen import generate_exports

    with console.status("Generating sample exports…") as status:
        manifest = generate_exports(out, customers=customers, seed=seed, start=start, end=end,
                                    export_days=export_days, defect_rate=defect_rate,
                                    progress=lambda stage: status.update(f"Generating: {stage}"))
    files = manifest.get("files", [])
    console.print(f"[green]Wrote[/] {len(files)} files, {sum(f.get('rows', 0) for f in files):,} rows, "
                  f"{len(manifest.get('defects', []))} injected defects into {out}")
    log.info("generated %s files for %s customers (seed %s) into %s", len(files), customers, seed, out)
    return manifest


# --- ingest --------------------------------------------------------------------------------------------
@main.command()
@click.option("--inbox", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder the operational systems drop their exports into.")
@click.option("--config", "config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=DEFAULT_CONFIG_DIR, show_default="the export contract",
              help="Folder of source-entity configuration files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file on stdout.")
@click.pass_obj
def ingest(obj: dict, inbox: Path, config_dir: Path, as_json: bool) -> None:
    """Load new export files into the vault; exit 1 if any file was refused.

    Each file loads in one transaction. Rows that cannot be read go to ingest.rejects with file, line,
    column and reason; a file that cannot be read at all is refused whole and named.
    """
    results = _ingest(obj, inbox, config_dir, as_json)
    sys.exit(1 if any(r.status == "refused" for r in results) else 0)


def _ingest(obj: dict, inbox: Path, config_dir: Path = DEFAULT_CONFIG_DIR, as_json: bool = False
            ) -> list[FileResult]:
    from warehouse.pseudonym import key_file

    home: Home = obj["home"]
    entities = load_entities(config_dir)
    con = open_vault(home.vault)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("Ingesting", total=len(find_files(inbox, entities)))

            def on_file(result: FileResult) -> None:
                if as_json:
                    print(json.dumps(result.as_dict()), flush=True)
                progress.update(task, advance=1, description=f"Ingested {result.source_file}")

            results = ingest_inbox(con, inbox, entities, on_file=on_file, key_path=key_file(home.root),
                                   ignore=load_inbox(config_dir).ignore)
    finally:
        con.close()
    if not as_json:
        _print_ingest_summary(results)
    labels = {"refused": "[red]Refused[/]", "unrecognised": "[yellow]Unrecognised[/]", "loaded": "[yellow]Warning[/]"}
    for result in results:  # refusals, schema drift and unrecognised files, one line per file
        if message := result.message():
            console.print(f"{labels[result.status]} {message}")
    return results


def _print_ingest_summary(results: list[FileResult]) -> None:
    table = Table(title="Ingest", title_justify="left")
    for column in ("entity", "files", "loaded", "unchanged", "refused", "rows loaded", "rows rejected"):
        table.add_column(column, justify="left" if column == "entity" else "right", no_wrap=True)
    for entity in sorted({r.entity for r in results if r.entity}):  # unrecognised files have none
        mine = [r for r in results if r.entity == entity]
        count = {s: sum(r.status == s for r in mine) for s in ("loaded", "unchanged", "refused")}
        table.add_row(entity, str(len(mine)), str(count["loaded"]), str(count["unchanged"]),
                      str(count["refused"]) if count["refused"] else "",
                      f"{sum(r.rows_loaded for r in mine):,}", f"{sum(r.rows_rejected for r in mine):,}")
    console.print(table)


# --- build ---------------------------------------------------------------------------------------------
FULL_REFRESH = click.option(
    "--full-refresh", is_flag=True,
    help="Rebuild the incremental tables from the whole history (the same result, slower).")


@main.command()
@FULL_REFRESH
@click.pass_obj
def build(obj: dict, full_refresh: bool) -> None:
    """Build the dbt models (staging in the vault, marts in analytics), test them, publish analytics.

    The large tables are built incrementally: only what changed since the last build is recomputed.
    Exit 1 if the build failed (analytics is then left as it was) or a source is stale.
    """
    sys.exit(0 if all(_build(obj, full_refresh=full_refresh)) else 1)


def _build(obj: dict, *, publish: bool = True, full_refresh: bool = False) -> tuple[bool, bool]:
    """dbt build into analytics.next; returns (built, fresh). Publishes unless the caller has more to add."""
    from warehouse.build import build as dbt_build
    from warehouse.build import discard
    from warehouse.build import publish as publish_analytics

    home: Home = obj["home"]
    if not home.vault.exists():
        raise click.ClickException(f"no vault at {home.vault}: run `warehouse ingest` first")
    try:
        with console.status("Building dbt models and running their tests…"):
            outcomes = dbt_build(home, full_refresh=full_refresh)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    for outcome in outcomes:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items()))
        colour = "green" if outcome.success else "red"
        console.print(f"[{colour}]dbt {outcome.command}[/]: {counts or 'nothing to do'}")
        for failure in outcome.failures:
            console.print(f"  [red]✗[/] {failure}")
    built = outcomes[0].success
    if not built:
        discard(home)
        console.print(f"[red]Build failed:[/] {home.analytics} was left as it was")
    elif publish:
        publish_analytics(home)
        console.print(f"[green]Published[/] {home.analytics}")
    # A stale source (freshness error) fails the job too: the scheduler must alert on missing exports.
    return built, built and outcomes[1].success


# --- report ---------------------------------------------------------------------------------------------
@main.group()
def report() -> None:
    """Reports for management, written into <home>/reports (no personal data)."""


@report.command("churn")
@click.option("--month", help="YYYY-MM [default: the latest complete month].")
@click.option("--lang", type=click.Choice(["en", "fi"]), default="en", show_default=True)
@click.option("--no-pdf", is_flag=True, help="HTML only (the PDF takes a few seconds).")
@click.pass_obj
def report_churn(obj: dict, month: str | None, lang: str, no_pdf: bool) -> None:
    """Monthly churn report: KPIs, MRR bridge, trends, cohorts, segments, lost accounts (HTML + PDF)."""
    _report_churn(obj, month, [lang], pdf=not no_pdf)


def _report_churn(obj: dict, month: str | None, langs: list[str], pdf: bool = True) -> list[Path]:
    from reports.churn import ReportError, render_churn_report

    home: Home = obj["home"]
    written = []
    for lang in langs:
        try:
            with console.status(f"Rendering the churn report ({lang})…"):
                paths = render_churn_report(home.analytics, home.reports / "churn", month=month, lang=lang, pdf=pdf)
        except ReportError as exc:
            raise click.ClickException(str(exc)) from exc
        written += paths.values()
    for path in written:
        console.print(f"[green]Wrote[/] {path}")
    return written


# --- audit ---------------------------------------------------------------------------------------------
@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for audit-YYYY-MM-DD.html and .json [default: <home>/reports/retention].")
@click.pass_obj
def audit(obj: dict, out_dir: Path | None) -> None:
    """Retention audit: records held, due and overdue per data category; exit 1 if any record is overdue.

    Reads privacy.retention_status from the published analytics database, appends the figures to the
    vault's retention.audits history and writes a dated HTML and JSON report for the privacy officer.
    Meant for cron or a systemd timer (retention/SCHEDULING.md).
    """
    sys.exit(_audit(obj, out_dir))


def _audit(obj: dict, out_dir: Path | None = None) -> int:
    from retention.audit import AuditError, run_audit, summary_text

    home: Home = obj["home"]
    try:
        result = run_audit(home, out_dir or home.reports / "retention")
    except AuditError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(summary_text(result), highlight=False)
    return result.exit_code


# --- retention -----------------------------------------------------------------------------------------
@main.group()
def retention() -> None:
    """Retention enforcement: erase what the retention policy no longer allows to keep."""


@retention.command("enforce")
@click.option("--dry-run/--apply", "dry_run", default=True, show_default=True,
              help="Dry run: list what would be deleted or anonymised, write nothing. Apply: do it, then rebuild.")
@click.pass_obj
def retention_enforce(obj: dict, dry_run: bool) -> None:
    """Delete or anonymise the records kept past their retention period, in raw, staging and marts.

    Overdue records (intermediate.int_retention__records) are anonymised (customers: identifying fields;
    services: user IDs; invoices stay, accounting law keeps them longer) or deleted (invoices, lines,
    payments, collection cases, tickets, key handovers past their own period). Apply records them in the
    erasure ledger (pseudonymous keys only; the ingest consults it), writes erasure request lists per source
    system into <home>/reports/retention, then rebuilds and publishes. A second apply is a no-op.
    """
    sys.exit(_retention_enforce(obj, dry_run))


def _retention_enforce(obj: dict, dry_run: bool) -> int:
    from retention.enforce import EnforceError, apply, counts, plan

    home: Home = obj["home"]
    try:
        actions = plan(home)
    except EnforceError as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table(title="Retention enforcement" + (" (dry run: nothing written)" if dry_run else ""),
                  title_justify="left")
    for column in ("category", "action", "records"):
        table.add_column(column, justify="right" if column == "records" else "left", no_wrap=True)
    for (category, action), n in sorted(counts(actions).items()):
        table.add_row(category, action, f"{n:,}")
    console.print(table if actions else "Nothing is overdue that is not erased already.")
    if dry_run or not actions:
        log.info("retention enforcement %s: %s records to erase", "dry run" if dry_run else "apply", len(actions))
        return 0
    result = apply(home, actions)
    for path in result.request_files:
        console.print(f"[green]Wrote[/] {path}")
    built, _fresh = _build(obj)
    return 0 if built else 1


# --- check ---------------------------------------------------------------------------------------------
@main.command()
@click.pass_obj
def check(obj: dict) -> None:
    """Data-quality checks (Great Expectations, computed in DuckDB) on the vault's staging layer.

    Results go to the vault's quality history (example keys pseudonymised) and to a quality page in
    <home>/reports/quality. Exit 1 if an error-severity check failed.
    """
    sys.exit(1 if _check(obj, analytics=None) else 0)


def _check(obj: dict, analytics: Path | None) -> bool:
    """Run the checks; with `analytics`, also write the quality banner tables into that (unpublished) file.

    Returns whether an error-severity check failed.
    """
    from expectations.run import run_checks
    from warehouse.build import stamp_catalogue
    from warehouse.pseudonym import key_file

    home: Home = obj["home"]
    with console.status("Checking data quality…"):
        result = run_checks(home.vault, analytics, key_file(home.root))
    result.print_summary(console)
    stamp_catalogue(home, result.summary())
    console.print(f"[green]Wrote[/] {result.write_html(home.reports / 'quality')}")
    return result.has_errors


# --- run, demo -----------------------------------------------------------------------------------------
@main.command()
@click.option("--inbox", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder the operational systems drop their exports into.")
@FULL_REFRESH
@click.pass_obj
def run(obj: dict, inbox: Path, full_refresh: bool) -> None:
    """The scheduled daily job: ingest, build, check, publish, churn report, retention audit.

    Exit 1 if a file was refused, the build failed, a source is stale, an error-severity quality check
    failed or a record is kept past its retention period: the scheduler alerts on any of them.
    """
    problems = _run(obj, inbox, full_refresh=full_refresh)
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    sys.exit(1 if problems else 0)


def _run(obj: dict, inbox: Path, *, full_refresh: bool = False) -> list[str]:
    """The daily job; returns what went wrong, in words (no personal data)."""
    from warehouse.build import publish

    home: Home = obj["home"]
    problems = []
    refused = sum(r.status == "refused" for r in _ingest(obj, inbox))
    if refused:
        problems.append(f"{refused} file(s) refused by the ingest")
    built, fresh = _build(obj, publish=False, full_refresh=full_refresh)
    if built:
        if not fresh:
            problems.append("a source is stale (dbt source freshness)")
        if _check(obj, analytics=home.analytics_next):
            problems.append("an error-severity data-quality check failed")
        publish(home)  # after the checks, so the published file carries their banner
        console.print(f"[green]Published[/] {home.analytics}")
        _report_churn(obj, None, ["en", "fi"])
    else:
        problems.append("dbt build failed: analytics was left as it was")
    # Audit even after a failed build, on the last published analytics: a failure must not hide overdue data.
    if home.analytics.exists() and _audit(obj):
        problems.append("records are kept past their retention period")
    _privacy_notice(obj, ["fi", "en"])  # from the configuration the run used: the notice cannot drift from it
    return problems


@main.command()
@click.option("--customers", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_obj
def demo(obj: dict, customers: int, seed: int) -> None:
    """Generate sample exports into the home's sample inbox, run the daily job on them, show the results.

    The sample data carries defects and overdue records on purpose, so the job's alerts are listed but the
    demo itself exits 0 when every step ran.
    """
    home: Home = obj["home"]
    shutil.rmtree(home.sample_inbox, ignore_errors=True)  # ours alone: files of an earlier demo would linger
    _generate(home.sample_inbox, customers, seed, date(2019, 1, 1), date.today(), 3, 0.01)
    problems = _run(obj, home.sample_inbox)
    if any(p.startswith("dbt build failed") for p in problems):
        _print_demo_summary(home, problems, None)
        sys.exit(1)
    _print_demo_summary(home, problems, _demo_access_request(home))


def _demo_access_request(home: Home) -> Path:
    """An example subject-access package: a sample customer with a key handover and a debt collection case if
    there is one, so the package shows disclosures to both kinds of recipient."""
    from privacy.access import subject_access

    con = open_vault(home.vault, read_only=True)
    try:
        customer_id = con.execute("""
            select customers.customer_id
            from staging.stg_crm__customers as customers
            left join staging.stg_services__key_handovers as keys using (customer_id)
            left join staging.stg_billing__collection_cases as cases using (customer_id)
            where customers.hetu is not null
            group by customers.customer_id
            order by
                (count(distinct keys.handover_id) > 0)::int + (count(distinct cases.case_id) > 0)::int desc,
                customers.customer_id
            limit 1""").fetchone()[0]
    finally:
        con.close()
    result = subject_access(home, "customer_id", customer_id, verified_by="warehouse demo (sample data)",
                            request_ref="DEMO")
    return result.html_paths["en"]


def _print_demo_summary(home: Home, problems: list[str], access_page: Path | None) -> None:
    con = open_vault(home.vault, read_only=True)
    try:
        files, rows, rejected, refused = con.execute("""
            select count(*), sum(rows_loaded), sum(rows_rejected), count(*) filter (where status = 'refused')
            from ingest.files""").fetchone()
    finally:
        con.close()
    alerts = "".join(f"\n  - {p}" for p in problems) or " none"
    reports = home.reports
    console.print(f"""
[bold]Done.[/] {files} files ingested: {rows:,} rows loaded, {rejected:,} rejected (kept in ingest.rejects), \
{refused} files refused.
The daily job would alert on (the sample data carries defects and overdue records on purpose):{alerts}

  sample exports   {home.sample_inbox}  (manifest.json lists the injected defects)
  vault            {home.vault}  (raw + staging: personal data, not for analysts)
  analytics        {home.analytics}  (pseudonymised marts for analysts)
  catalogue        {reports / 'catalogue' / 'index.html'}  (every model and column, opens offline)
  churn report     {reports / 'churn'}  (HTML and PDF, English and Finnish)
  quality page     {reports / 'quality'}
  retention audit  {reports / 'retention'}
  privacy notice   {reports / 'privacy'}  (the register description, generated from the configuration)
  access package   {access_page or '-'}  (an example answer to a data subject's request: personal data)
  logs             {home.logs}

Query the analytics database read-only, e.g.:
  .venv/bin/python -c "import duckdb; print(duckdb.connect('{home.analytics}', read_only=True)\
.sql('from churn.monthly_movements order by month desc limit 6'))"
""", soft_wrap=True)


# --- subject-access ------------------------------------------------------------------------------------
@main.command("subject-access")
@click.option("--customer-id", help="The customer number, e.g. C0100025.")
@click.option("--hetu", help="The personal identity code (HETU).")
@click.option("--email", help="The email address.")
@click.option("--verified-by", required=True, help="Who verified the requester's identity (logged).")
@click.option("--request-ref", help="Reference of the request, e.g. the helpdesk ticket (logged).")
@click.pass_obj
def subject_access(obj: dict, customer_id: str | None, hetu: str | None, email: str | None, verified_by: str,
                   request_ref: str | None) -> None:
    """Right of access (GDPR art. 15): everything the register holds about one person, as JSON and HTML.

    Give exactly one of --customer-id, --hetu, --email. Writes access.json and the pages access.fi.html and
    access.en.html owner-only into <home>/access/<request id>/ and logs the request in the vault
    (privacy.access_requests: identifier type, verifier, pseudonymous key; never the identifier or the
    answer). Exit 1 if no single person matches (the request is still logged).
    """
    from privacy.access import AccessError, SubjectNotFound
    from privacy.access import subject_access as answer

    given = {k: v for k, v in {"customer_id": customer_id, "hetu": hetu, "email": email}.items() if v is not None}
    if len(given) != 1:
        raise click.UsageError("give exactly one of --customer-id, --hetu, --email")
    (identifier_type, value), = given.items()
    try:
        with console.status("Assembling the access package…"):
            result = answer(obj["home"], identifier_type, value, verified_by=verified_by, request_ref=request_ref)
    except SubjectNotFound as exc:
        console.print(f"[red]Not found:[/] {exc}")
        sys.exit(1)
    except AccessError as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table(title=f"Access package {result.request_id}", title_justify="left")
    table.add_column("dataset", no_wrap=True)
    table.add_column("records", justify="right")
    for dataset, rows in result.rows_by_dataset.items():
        table.add_row(dataset, f"{rows:,}")
    console.print(table)
    console.print(f"{result.customer_records} customer record(s), {result.datasets} datasets, {result.rows:,} records")
    for path in (result.json_path, *result.html_paths.values()):
        console.print(f"[green]Wrote[/] {path}")


# --- rectify -------------------------------------------------------------------------------------------
@main.command("rectify")
@click.option("--customer-id", required=True, help="The customer number, e.g. C0100025.")
@click.option("--field", "column", required=True,
              help="Column to correct: one of the data map's `rectifiable` columns of the dataset, e.g. last_name.")
@click.option("--value", required=True, help="The correct value (cleaned as staging cleans exports); '' removes it.")
@click.option("--request-ref", required=True, help="Reference of the data subject's request, e.g. the ticket.")
@click.option("--recorded-by", required=True, help="Who records the correction (and verified the identity).")
@click.option("--dataset", default="staging.stg_crm__customers", show_default=True,
              help="Staging model of the field, as the data map names it (staging.stg_services__key_handovers).")
@click.option("--record-id", help="The one row to correct when the customer has several with different values "
              "(e.g. a handover id).")
@click.option("--rebuild/--no-rebuild", default=True, show_default=True,
              help="Rebuild and publish analytics afterwards (staging applies the correction at once).")
@click.pass_obj
def rectify_command(obj: dict, customer_id: str, column: str, value: str, request_ref: str, recorded_by: str,
                    dataset: str, record_id: str | None, rebuild: bool) -> None:
    """Right to rectification (GDPR art. 16, 19): correct a customer's data and list who must be told.

    Records the correction in the vault's audit trail (privacy.rectifications); the staging views apply it
    on top of the exports while the export still carries the corrected value (a later change at the source
    wins); raw keeps the exports as they came. Lists the recipients that received the field before, from the
    disclosure register, so they can be told. Then rebuilds and publishes, unless --no-rebuild. Prints no
    personal data: field names, recipients, dates and counts only.
    """
    from privacy.rectify import RectifyError, rectify

    try:
        result = rectify(obj["home"], customer_id, column, value, request_ref=request_ref, recorded_by=recorded_by,
                         dataset=dataset, record_id=record_id)
    except RectifyError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"[green]Recorded[/] rectification {result.id} of {result.field}: {result.rows} staging "
                  f"row(s) now show the new value.", highlight=False)
    if not result.has_register:
        console.print("[yellow]No disclosure register in the vault yet[/]: run `warehouse build`, then look up "
                      "the recipients of this field in privacy.disclosures.")
    elif result.recipients:
        table = Table(title="Recipients that received the old value: tell them of the correction (GDPR art. 19)",
                      title_justify="left")
        for column_name in ("recipient", "country", "flow", "rule", "disclosures", "first", "last"):
            table.add_column(column_name, justify="right" if column_name == "disclosures" else "left", no_wrap=True)
        for notice in result.recipients:
            table.add_row(notice.recipient or "(unnamed)", notice.country or "?", notice.flow_id, notice.rule_id,
                          str(notice.disclosures), str(notice.first_on or ""), str(notice.last_on or ""))
        console.print(table)
    else:
        console.print("No recorded disclosure carried this field: no recipient to tell.")
    if rebuild:
        built, _fresh = _build(obj)
        sys.exit(0 if built else 1)


# --- privacy-notice ------------------------------------------------------------------------------------
@main.command("privacy-notice")
@click.option("--lang", "langs", type=click.Choice(["fi", "en"]), multiple=True,
              help="fi (authoritative) or en; repeat for both [default: both].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for tietosuojaseloste.fi.html/.md and privacy-notice.en.html/.md "
                   "[default: <home>/reports/privacy].")
@click.pass_obj
def privacy_notice(obj: dict, langs: tuple[str, ...], out_dir: Path | None) -> None:
    """The register description (tietosuojaseloste, GDPR art. 13, 14 and 30) as HTML and Markdown.

    Generated from the configuration the warehouse runs on: privacy/register.yml, data_map.yml and
    disclosures.yml, and the retention policy (WAREHOUSE_RETENTION_POLICY, else retention/policy.yml), in the
    sections of the controller's notice. Reads no customer data. Exit 1 if words are missing for something the
    configuration says (a data category, a legal basis, a safeguard): the message names the file to complete.
    """
    _privacy_notice(obj, list(langs) or ["fi", "en"], out_dir)


def _privacy_notice(obj: dict, langs: list[str], out_dir: Path | None = None) -> list[Path]:
    from privacy.config import PrivacyConfigError
    from privacy.notice import NoticeError, write_notice
    from retention.policy import PolicyError

    home: Home = obj["home"]
    try:
        written = write_notice(out_dir or home.reports / "privacy", langs)
    except (NoticeError, PrivacyConfigError, PolicyError) as exc:
        raise click.ClickException(str(exc)) from exc
    for path in written:
        console.print(f"[green]Wrote[/] {path}")
    log.info("privacy notice (%s) written into %s", ", ".join(langs), written[0].parent)
    return written


if __name__ == "__main__":
    main()
