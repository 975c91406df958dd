"""`warehouse`: the command line of the customer-register warehouse.

Each command parses its options, calls one pipeline function (warehouse/pipeline.py) and prints what it
returns. One error handler turns every failure into one line and an exit code; every run leaves one JSON line
in <home>/logs/runs.jsonl.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core import faults
from core.lock import HomeBusy
from core.runlog import configure_logging, record_run
from core.settings import Settings, SettingsError, quieten_third_parties
from core.spill import SpillWatch
from warehouse import pipeline
from warehouse.pipeline import PipelineError, Status

# Not a terminal (cron, CI, `make`): Rich would assume 80 columns and truncate the tables.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 110)
log = logging.getLogger("warehouse")

EXIT_CODES = """Exit codes: 0 done; 1 findings for a person to act on (records past their retention period,
failed data-quality checks, no such data subject); 2 wrong options; 3 broken (a file refused, the build
failed, a source is stale, an error); 75 another command holds the home (try again later)."""


class Finished(Exception):
    """A command's outcome, on its way to the run log and the exit code."""

    def __init__(self, status: Status, counts: dict[str, Any] | None = None, alerts: list[str] | None = None,
                 command: str | None = None):
        super().__init__(status.name)
        self.status, self.counts, self.alerts, self.command = status, counts or {}, alerts or [], command


def finish(status: Status, counts: dict[str, Any] | None = None, alerts: list[str] | None = None) -> None:
    # the command's name as typed (`report churn`), never its option values: they may be personal
    command = click.get_current_context().command_path.split(" ", 1)[-1]
    raise Finished(status, counts, alerts, command)


class WarehouseGroup(click.Group):
    """The one error handler: every command ends here with an exit code and a line in the run log."""

    def invoke(self, ctx: click.Context) -> Any:
        started = time.monotonic()
        outcome = Finished(Status.OK)
        try:
            super().invoke(ctx)
        except Finished as done:
            outcome = done
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise  # --help, a prompt answered no: click's own ways to end
        except HomeBusy as exc:
            console.print(f"[yellow]Busy:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            outcome = Finished(Status.BUSY, alerts=[str(exc)])
        except (PipelineError, SettingsError, click.ClickException) as exc:
            if isinstance(exc, click.UsageError):
                raise
            message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            console.print(f"[red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
            log.error("%s", message)
            outcome = Finished(Status.BROKEN, alerts=[message])
        except KeyboardInterrupt:
            console.print("[red]Interrupted.[/]")
            outcome = Finished(Status.BROKEN, alerts=["interrupted"])
        except Exception as exc:  # a bug: one line for the user, where it happened for the log (no message text)
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("internal error %s in\n%s", type(exc).__name__, frames)
            console.print(f"[red]Internal error[/] ({type(exc).__name__}): details in the log "
                          f"{escape(str(_log_file(ctx)))}", highlight=False, soft_wrap=True)
            outcome = Finished(Status.BROKEN, alerts=[f"internal error {type(exc).__name__}"])
        settings = ctx.obj if isinstance(ctx.obj, Settings) else None
        if settings is not None and ctx.invoked_subcommand:
            record_run(settings.home.run_log, {
                "command": outcome.command or ctx.invoked_subcommand, "result": outcome.status.name.lower(),
                "exit_code": int(outcome.status), "duration_s": round(time.monotonic() - started, 1),
                "counts": outcome.counts, "alerts": outcome.alerts})
        ctx.exit(int(outcome.status))


def _log_file(ctx: click.Context) -> Path | str:
    return ctx.obj.home.log_file if isinstance(ctx.obj, Settings) else "warehouse.log"


def _date(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from exc


def _status(message: str):
    """A spinner line while a step runs (on stderr: stdout stays for --json)."""
    return console.status(escape(message))


def _say(message: str) -> None:
    console.print(escape(message), highlight=False, soft_wrap=True)


def _progress_to(status) -> pipeline.Progress:
    return lambda message: status.update(escape(message))


@click.group(cls=WarehouseGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.option("--home", "home_dir", type=click.Path(file_okay=False),
              help="Folder for the databases, keys, outputs and logs (env WAREHOUSE_HOME; default: ./var).")
@click.option("--threads", type=click.IntRange(1), help="DuckDB threads (env WAREHOUSE_THREADS; default: all cores).")
@click.option("--memory-limit", help="DuckDB memory limit (env WAREHOUSE_MEMORY_LIMIT) [default: 2.5GB]; larger "
              "work spills to <home>/tmp.")
@click.option("--wait", "lock_wait", type=click.FloatRange(0), metavar="SECONDS",
              help="How long to wait for another command that holds the home (env WAREHOUSE_LOCK_WAIT) "
                   "[default: writers 0, audit/subject-access 3600].")
@click.option("-v", "--verbose", is_flag=True, help="Debug-level log file.")
@click.pass_context
def main(ctx: click.Context, home_dir: str | None, threads: int | None, memory_limit: str | None,
         lock_wait: float | None, verbose: bool) -> None:
    """Customer-register warehouse of Local Loop Oy: exports in, analytics out.

    The vault (raw and staging layers: personal data) and the analytics database (marts) live in the
    home folder, with keys and logs. Logs never contain personal data.
    """
    os.umask(0o077)  # every database, export, report and log we write is owner-only: they concern people
    quieten_third_parties()
    settings = Settings.from_environment(home=home_dir, threads=threads, memory_limit=memory_limit,
                                         lock_wait=lock_wait, verbose=verbose)
    faults.arm(settings.crash_at)
    settings.home.create()
    configure_logging(settings.home.logs, verbose)
    ctx.obj = settings
    watch = ctx.with_resource(SpillWatch(settings.home.tmp))
    ctx.call_on_close(lambda: _report_spill(settings, watch))


def _report_spill(settings: Settings, watch: SpillWatch) -> None:
    """Past the memory limit DuckDB works on disk rather than fail; the operator should know it did."""
    peak = watch.stop()
    if peak:
        limit = settings.limits.memory_limit
        log.warning("DuckDB spilled up to %d MiB to %s (memory limit %s)", peak >> 20, watch.folder, limit)
        console.print(f"[yellow]Note:[/] the work outgrew the memory limit ({limit}): DuckDB spilled up to "
                      f"{peak / 2**20:,.0f} MiB to {escape(str(watch.folder))} and went on. A higher "
                      "--memory-limit is faster.")


def _wrote(paths) -> None:
    for path in paths:
        console.print(f"[green]Wrote[/] {escape(str(path))}", highlight=False)


# --- generate ------------------------------------------------------------------------------------------
@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Inbox folder to write the exports into.")
@click.option("--customers", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same files, byte for byte.")
@click.option("--start", callback=_date, default="2019-01-01", show_default=True,
              help="Day the first service opened (YYYY-MM-DD).")
@click.option("--end", callback=_date, default=None, help="Last export date (YYYY-MM-DD) [default: today].")
@click.option("--days", type=click.IntRange(1), default=3, show_default=True,
              help="Consecutive daily exports up to --end: the first carries the full history, each later one "
                   "that day's changes at realistic rates (samplegen/rates.py).")
@click.option("--static-days", is_flag=True,
              help="Nothing changes after the first day: days 2..N repeat its snapshots byte for byte and "
                   "their deltas are empty (benchmarks of unchanged data).")
@click.option("--defect-rate", type=click.FloatRange(0, 0.5), default=0.01, show_default=True,
              help="Share of rows given a realistic defect (listed in manifest.json).")
def generate(out: Path, customers: int, seed: int, start: date, end: date | None, days: int, static_days: bool,
             defect_rate: float) -> None:
    """Write realistic sample exports (every file of the contract) with a manifest of injected defects."""
    with _status("Generating sample exports…") as status:
        manifest = pipeline.generate(out, customers=customers, seed=seed, start=start, end=end or date.today(),
                                     days=days, static_days=static_days, defect_rate=defect_rate,
                                     progress=_progress_to(status))
    written = manifest.get("files", [])
    rows = sum(f.get("rows", 0) for f in written)
    console.print(f"[green]Wrote[/] {len(written)} files, {rows:,} rows, {len(manifest.get('defects', []))} "
                  f"injected defects into {escape(str(out))}", highlight=False)
    finish(Status.OK, {"files": len(written), "rows": rows})


# --- ingest --------------------------------------------------------------------------------------------
@main.command()
@click.option("--inbox", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder the operational systems drop their exports into.")
@click.option("--config", "config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of source-entity configuration files [default: the export contract, ingest/sources].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file on stdout.")
@click.pass_obj
def ingest(settings: Settings, inbox: Path, config_dir: Path | None, as_json: bool) -> None:
    """Load new export files into the vault; exit 3 if any file was refused.

    Each file loads in one transaction. Rows that cannot be read go to ingest.rejects with file, line,
    column and reason; a file that cannot be read at all is refused whole and named.
    """
    settings = settings.with_(ingest_config=config_dir.resolve()) if config_dir else settings
    result = _ingest(settings, inbox, as_json)
    finish(result.status, _ingest_counts(result), result.alerts)


def _ingest(settings: Settings, inbox: Path, as_json: bool) -> pipeline.IngestResult:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("Ingesting", total=pipeline.count_files(settings, inbox))

        def on_file(result) -> None:
            if as_json:
                print(json.dumps(result.as_dict()), flush=True)
            progress.update(task, advance=1, description=f"Ingested {escape(result.source_file)}")

        result = pipeline.ingest(settings, inbox, on_file=on_file, progress=_say)
    _print_ingest(result, table=not as_json)
    return result


def _ingest_counts(result: pipeline.IngestResult) -> dict[str, int]:
    return {"files": len(result.files), "loaded": len(result.loaded), "refused": len(result.refused),
            "rows_loaded": sum(r.rows_loaded for r in result.files),
            "rows_rejected": sum(r.rows_rejected for r in result.files)}


def _print_ingest(result: pipeline.IngestResult, table: bool = True) -> None:
    """The summary table (stderr), and one line per file refused, drifted or unrecognised (also with --json)."""
    if table:
        console.print(_ingest_table(result))
    labels = {"refused": "[red]Refused[/]", "unrecognised": "[yellow]Unrecognised[/]", "loaded": "[yellow]Warning[/]"}
    for file in result.files:
        if message := file.message():
            console.print(f"{labels[file.status]} {escape(message)}", highlight=False, soft_wrap=True)


def _ingest_table(result: pipeline.IngestResult) -> Table:
    table = Table(title="Ingest", title_justify="left")
    for column in ("entity", "files", "loaded", "unchanged", "refused", "rows loaded", "rows rejected"):
        table.add_column(column, justify="left" if column == "entity" else "right", no_wrap=True)
    for entity in sorted({r.entity for r in result.files if r.entity}):  # unrecognised files have none
        mine = [r for r in result.files if r.entity == entity]
        count = {s: sum(r.status == s for r in mine) for s in ("loaded", "unchanged", "refused")}
        table.add_row(entity, str(len(mine)), str(count["loaded"]), str(count["unchanged"]),
                      str(count["refused"]) if count["refused"] else "",
                      f"{sum(r.rows_loaded for r in mine):,}", f"{sum(r.rows_rejected for r in mine):,}")
    return table


# --- build ---------------------------------------------------------------------------------------------
FULL_REFRESH = click.option(
    "--full-refresh", is_flag=True,
    help="Rebuild the incremental tables from the whole history (the same result, slower).")


@main.command()
@FULL_REFRESH
@click.pass_obj
def build(settings: Settings, full_refresh: bool) -> None:
    """Build the dbt models (staging in the vault, marts in analytics), test them, publish analytics.

    The large tables are built incrementally: only what changed since the last build is recomputed.
    Exit 3 if the build failed (analytics is then left as it was) or a source is stale.
    """
    with _status("Building dbt models and running their tests…"):
        outcome = pipeline.build(settings, full_refresh=full_refresh)
    _print_build(settings, outcome)
    finish(outcome.status, _build_counts(outcome), outcome.alerts)


def _build_counts(outcome: pipeline.BuildOutcome | None) -> dict[str, Any]:
    if outcome is None or outcome.build is None:
        return {"built": False, "skipped": True}
    return {"built": outcome.build.built, "published": outcome.published, "full_refresh": outcome.build.full_refresh,
            **{k: v for k, v in outcome.build.outcomes[0].counts.items()}}


def _print_build(settings: Settings, outcome: pipeline.BuildOutcome | None) -> None:
    if outcome is None:
        return
    if outcome.build is None:
        console.print("Nothing new since the last build: the published analytics stands.")
        return
    for dbt in outcome.build.outcomes:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(dbt.counts.items()))
        colour = "green" if dbt.success else "red"
        console.print(f"[{colour}]dbt {escape(dbt.command)}[/]: {counts or 'nothing to do'}", highlight=False)
        for failure in dbt.failures:
            console.print(f"  [red]✗[/] {escape(failure)}", highlight=False)
    if not outcome.build.built:
        console.print(f"[red]Build failed:[/] {escape(str(settings.home.analytics))} was left as it was")
    elif outcome.published:
        console.print(f"[green]Published[/] {escape(str(settings.home.analytics))}"
                      + (" (rebuilt from scratch after an erasure)" if outcome.build.erasures else ""))


# --- check ---------------------------------------------------------------------------------------------
@main.command()
@click.pass_obj
def check(settings: Settings) -> None:
    """Data-quality checks (Great Expectations, computed in DuckDB) on the vault's staging layer.

    Results go to the vault's quality history (example keys pseudonymised) and to a quality page in
    <home>/reports/quality. Exit 1 if an error-severity check failed.
    """
    with _status("Checking data quality…"):
        result = pipeline.check(settings)
    _print_check(result)
    finish(Status.FINDINGS if result.has_errors else Status.OK, result.summary_counts())


def _print_check(result) -> None:
    if result is None:
        return
    result.print_summary(console)
    _wrote([result.html_path])


# --- report --------------------------------------------------------------------------------------------
@main.group()
def report() -> None:
    """Reports for management, written into <home>/reports (no personal data)."""


@report.command("churn")
@click.option("--month", help="YYYY-MM [default: the latest closed month].")
@click.option("--lang", type=click.Choice(["en", "fi"]), default=None, help="[default: en; with --send: the "
              "languages of the mail configuration]")
@click.option("--no-pdf", is_flag=True, help="HTML only (the PDF takes a few seconds).")
@click.option("--send", is_flag=True, help="E-mail the month's report (PDF attached, its summary in the body) to "
              "the recipients of <home>/config/mail.yml; a closed month only.")
@click.pass_obj
def report_churn(settings: Settings, month: str | None, lang: str | None, no_pdf: bool, send: bool) -> None:
    """Monthly churn report: summary, key figures, MRR bridge, trends, cohorts, segments, lost accounts (HTML + PDF).

    Written into the dated archive <home>/reports/churn/YYYY-MM/ with an index page (index.en.html,
    index.fi.html). A closed month, once archived, is kept as it was issued; it is issued again, the earlier
    issue kept, only when that month's figures change. The running month's report is provisional.

    --send mails the report through the SMTP server of <home>/config/mail.yml (server, port, security
    starttls/ssl, sender, recipients, username; the password in an owner-only password_file or
    WAREHOUSE_SMTP_PASSWORD). The daily job sends each closed month once when that file exists.

    Reads the published analytics database only: it runs while a build does.
    """
    if send and no_pdf:
        raise click.UsageError("--send attaches the PDF: it cannot go with --no-pdf")
    with _status("Rendering the churn report…") as status:
        outcome = pipeline.report(settings, month=month, langs=(lang or "en",), pdf=not no_pdf, send=send,
                                  progress=_progress_to(status))
    _print_report(outcome)
    counts = {"files": len(outcome.written), "months": {m.month.isoformat()[:7]: m.action for m in outcome.archived}}
    if outcome.sent is not None:
        counts["sent_to"] = outcome.sent.recipients
    finish(Status.OK, counts)


def _print_report(outcome: pipeline.ReportOutcome) -> None:
    for done in outcome.archived:
        month = done.month.isoformat()[:7]
        if done.action == "kept":
            console.print(f"[green]Archived[/] {month}, issue {done.issue}, unchanged: "
                          f"{escape(str(done.folder))}", highlight=False)
        else:
            note = {"issued": f"issue {done.issue}", "reissued": f"issue {done.issue}: its figures changed, the "
                    "earlier issue is kept", "completed": f"issue {done.issue}", "provisional": "provisional"}
            console.print(f"[green]Archived[/] {month} ({note[done.action]})", highlight=False)
    _wrote(outcome.written)
    if outcome.sent is not None:
        _print_sent(outcome.sent)


def _print_sent(sent) -> None:
    recipients = f"{sent.recipients} recipient{'s' if sent.recipients != 1 else ''}"
    console.print(f"[green]E-mailed[/] the churn report of {sent.month} (issue {sent.issue}) to {recipients}, "
                  f"{len(sent.attachments)} PDFs attached", highlight=False)


# --- metrics, dbt: for analysts -------------------------------------------------------------------------
def _names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


@main.command("metrics")
@click.option("--metrics", "names", metavar="NAMES",
              help="Comma-separated metrics, e.g. mrr,logo_churn_rate (`--list` lists them).")
@click.option("--by", metavar="NAMES",
              help="Comma-separated group-bys: month (day, week, quarter, year) and dimensions such as "
                   "customer_type, region, tenure_band, cohort_month.")
@click.option("--where", multiple=True, metavar="FILTER",
              help="A filter in SQL over those names, e.g. \"month >= '2025-01-01'\" or \"region = 'Uusimaa'\" "
                   "(MetricFlow's {{ Dimension('customer_month__region') }} works too); repeat: all must hold.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--list", "list_only", is_flag=True, help="List the metrics and the group-bys there are.")
@click.option("--sql", "sql_only", is_flag=True, help="Print the SQL MetricFlow writes instead of running it.")
@click.pass_obj
def metrics_command(settings: Settings, names: str | None, by: str | None, where: tuple[str, ...], fmt: str,
                    list_only: bool, sql_only: bool) -> None:
    """The churn metrics of the semantic layer (MetricFlow), from the published analytics database (read-only).

    Every metric is defined once, in models/marts/churn/_churn__semantic.yml: the churn report, this command
    and any tool that reads MetricFlow's definitions compute the same numbers. Stocks (MRR, customers) are
    taken at the end of each period, start figures at its beginning; rates are decimals (0.012 = 1.2 %).
    """
    if not list_only and not _names(names):
        raise click.UsageError("give --metrics NAMES, or --list")
    try:
        outcome = pipeline.metrics(settings, _names(names), by=_names(by), where=list(where), list_only=list_only,
                                   sql_only=sql_only)
    except pipeline.WrongOptions as exc:
        raise click.UsageError(str(exc)) from None
    out = Console(width=None if sys.stdout.isatty() else 160, highlight=False)  # the answer goes to stdout
    if list_only:
        table = Table(title="Metrics", title_justify="left")
        for column in ("metric", "type", "what"):
            table.add_column(column, overflow="fold")
        for metric in outcome.metrics:
            table.add_row(metric.name, metric.type, escape(metric.description))
        out.print(table)
        out.print("Group by: " + ", ".join(outcome.dimensions), soft_wrap=True)
        finish(Status.OK, {"metrics": len(outcome.metrics)})
    if sql_only:
        print(outcome.sql)
        finish(Status.OK)
    result = outcome.result
    if fmt == "csv":
        sys.stdout.write(result.to_csv())
    elif fmt == "json":
        print(result.to_json())
    else:
        table = Table(title_justify="left")
        for column in result.columns:
            table.add_column(column, justify="left" if "__" in column else "right", no_wrap=True)
        for row in result.rows:
            table.add_row(*(escape(_cell(value)) for value in row))
        out.print(table)
    finish(Status.OK, {"metrics": len(_names(names)), "rows": len(result.rows)})


def _cell(value) -> str:
    """For the eye: money with cents, rates with four decimals; csv and json keep every digit."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@main.command("dbt", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def dbt_command(settings: Settings, args: tuple[str, ...]) -> None:
    """dbt on the warehouse's project and profile, with this home's settings: `warehouse dbt -- ARGS`.

    `warehouse dbt -- ls`, `-- show --select customers --limit 5`, `-- compile --select monthly_movements`,
    `-- docs generate` only read: the vault and the published analytics are attached read-only, and they wait
    for a running build. `-- build --select customers+` (run, test, seed, …) holds the home like a build and
    builds into <home>/analytics.next.duckdb, a copy of the published file: it is never published from there
    (`warehouse build` publishes, after its checks). dbt prints its own output; `show` leaves no dbt.log.
    """
    try:
        outcome = pipeline.dbt(settings, list(args), progress=_say)
    except pipeline.WrongOptions as exc:
        raise click.UsageError(str(exc)) from None
    if outcome.built_into is not None:
        console.print(f"Built into {escape(str(outcome.built_into))}: not published (`warehouse build` "
                      "publishes, after its checks; the next build starts it afresh).", highlight=False, soft_wrap=True)
    for alert in outcome.alerts:
        console.print(f"[red]✗[/] {escape(alert)}", highlight=False)
    finish(outcome.status, dict(outcome.dbt.counts), outcome.alerts)


# --- audit ---------------------------------------------------------------------------------------------
@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for audit-YYYY-MM-DD.html and .json [default: <home>/reports/retention].")
@click.pass_obj
def audit(settings: Settings, out_dir: Path | None) -> None:
    """Retention audit: records held, due and overdue per data category; exit 1 if any record is overdue.

    Reads privacy.retention_status from the published analytics database, appends the figures to the
    vault's retention.audits history and writes a dated HTML and JSON report for the privacy officer.
    Waits for a running build rather than fail. Meant for cron or a systemd timer (retention/SCHEDULING.md).
    """
    from retention.audit import summary_text

    result = pipeline.audit(settings, out_dir=out_dir, progress=_say)
    console.print(escape(summary_text(result)), highlight=False)
    finish(Status.FINDINGS if result.overdue_count else Status.OK, _audit_counts(result),
           ["records are kept past their retention period"] if result.overdue_count else [])


def _audit_counts(result) -> dict[str, int]:
    return {"held": result.held_count, "overdue": result.overdue_count, "due_soon": result.due_soon_count,
            "on_hold": result.on_hold_count}


# --- retention -----------------------------------------------------------------------------------------
@main.group()
def retention() -> None:
    """Retention enforcement: erase what the retention policy no longer allows to keep."""


@retention.command("enforce")
@click.option("--dry-run/--apply", "dry_run", default=True, show_default=True,
              help="Dry run: list what would be deleted or anonymised, write nothing. Apply: do it, then rebuild.")
@click.pass_obj
def retention_enforce(settings: Settings, dry_run: bool) -> None:
    """Delete or anonymise the records kept past their retention period, in raw, staging and marts.

    Overdue records (intermediate.int_retention__records) are anonymised (customers: identifying fields;
    services: user IDs; invoices stay, accounting law keeps them longer) or deleted (invoices, lines,
    payments, collection cases, tickets, key handovers past their own period), in raw and in the ingest's
    rejects. Apply records them in the erasure ledger (pseudonymous keys only; the ingest applies it to
    every new file), writes erasure request lists per source system into <home>/reports/retention, removes
    access packages of erased people and those past their period, then rebuilds analytics from scratch and
    publishes. A killed apply is finished by the next apply (or `run`); a second apply is a no-op.
    """
    with _status("Retention enforcement…") as status:
        outcome = pipeline.enforce(settings, apply=not dry_run, progress=_progress_to(status))
    _print_enforce(outcome, dry_run)
    _print_build(settings, outcome.build)
    finish(outcome.status, {"records": len(outcome.planned), "applied": outcome.applied,
                            "request_files": len(outcome.request_files), "packages_removed": outcome.packages_removed},
           outcome.alerts)


def _print_enforce(outcome: pipeline.EnforceOutcome, dry_run: bool) -> None:
    from retention.enforce import counts

    table = Table(title="Retention enforcement" + (" (dry run: nothing written)" if dry_run else ""),
                  title_justify="left")
    for column in ("category", "action", "records"):
        table.add_column(column, justify="right" if column == "records" else "left", no_wrap=True)
    for (category, action), n in sorted(counts(outcome.planned).items()):
        table.add_row(category, action, f"{n:,}")
    console.print(table if outcome.planned else "Nothing is overdue that is not erased already.")
    _wrote(outcome.request_files)
    if outcome.packages_removed:
        console.print(f"Removed {outcome.packages_removed} access package(s) of erased people or past their period.")


# --- run, demo -----------------------------------------------------------------------------------------
@main.command()
@click.option("--inbox", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder the operational systems drop their exports into.")
@click.option("--config", "config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of source-entity configuration files [default: the export contract, ingest/sources].")
@FULL_REFRESH
@click.pass_obj
def run(settings: Settings, inbox: Path, config_dir: Path | None, full_refresh: bool) -> None:
    """The scheduled daily job: ingest, build, check, publish, churn report, retention audit.

    Without new files or changes (configuration, models, corrections), nothing is rebuilt. Exit 3 if a file
    was refused, the build failed or a source is stale; else 1 if an error-severity quality check failed or
    a record is kept past its retention period; else 0.
    """
    settings = settings.with_(ingest_config=config_dir.resolve()) if config_dir else settings
    outcome = _run(settings, inbox, full_refresh)
    finish(outcome.status, _run_counts(outcome), outcome.alerts + outcome.findings)


def _run(settings: Settings, inbox: Path, full_refresh: bool) -> pipeline.RunOutcome:
    with _status("The daily job…") as status:
        outcome = pipeline.daily_run(settings, inbox, full_refresh=full_refresh, progress=_progress_to(status))
    _print_run(settings, outcome)
    return outcome


def _print_run(settings: Settings, outcome: pipeline.RunOutcome) -> None:
    if outcome.erasures and (outcome.erasures.request_files or outcome.erasures.packages_removed):
        _print_enforce(outcome.erasures, dry_run=False)
    _print_ingest(outcome.ingest)
    _print_build(settings, outcome.build)
    _print_check(outcome.check)
    _wrote(outcome.reports)
    if outcome.sent is not None:
        _print_sent(outcome.sent)
    if outcome.audit is not None:
        from retention.audit import summary_text

        console.print(escape(summary_text(outcome.audit)), highlight=False)
    _wrote(outcome.notice)
    for problem in outcome.alerts + outcome.findings:
        console.print(f"[red]✗[/] {escape(problem)}", highlight=False)


def _run_counts(outcome: pipeline.RunOutcome) -> dict[str, Any]:
    counts: dict[str, Any] = {"ingest": _ingest_counts(outcome.ingest), "build": _build_counts(outcome.build)}
    if outcome.check is not None:
        counts["check"] = outcome.check.summary_counts()
    if outcome.audit is not None:
        counts["audit"] = _audit_counts(outcome.audit)
    if outcome.sent is not None:
        counts["churn_report_sent_to"] = outcome.sent.recipients
    return counts


@main.command()
@click.option("--customers", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_obj
def demo(settings: Settings, customers: int, seed: int) -> None:
    """Generate sample exports into the home's sample inbox, run the daily job on them, show the results.

    The sample data carries defects and overdue records on purpose, so the job's findings are listed but the
    demo itself exits 0 when every step ran.
    """
    with _status("The demo…") as status:
        outcome = pipeline.demo(settings, customers=customers, seed=seed, progress=_progress_to(status))
    _print_run(settings, outcome.run)
    _print_demo_summary(settings, outcome)
    finish(outcome.status, _run_counts(outcome.run), outcome.run.alerts + outcome.run.findings)


def _print_demo_summary(settings: Settings, outcome: pipeline.DemoOutcome) -> None:
    home, (files, rows, rejected, refused) = settings.home, outcome.ingested
    alerts = "".join(f"\n  - {escape(p)}" for p in outcome.run.alerts + outcome.run.findings) or " none"
    reports = home.reports
    console.print(f"""
[bold]Done.[/] {files} files ingested: {rows:,} rows loaded, {rejected:,} rejected (kept in ingest.rejects), \
{refused} files refused.
The daily job would alert on (the sample data carries defects and overdue records on purpose):{alerts}

  sample exports   {home.sample_inbox}  (manifest.json lists the injected defects)
  vault            {home.vault}  (raw + staging: personal data, not for analysts)
  analytics        {home.analytics}  (pseudonymised marts for analysts)
  catalogue        {home.catalogue}  (every model and column, opens offline)
  churn report     {home.churn_reports / 'index.en.html'}  (the archive: HTML and PDF per month, English and Finnish)
  quality page     {reports / 'quality'}
  retention audit  {reports / 'retention'}
  privacy notice   {reports / 'privacy'}  (the register description, generated from the configuration)
  access package   {outcome.access_page or '-'}  (an example answer to a data subject's request: personal data)
  logs             {home.logs}  (runs.jsonl: one line per command run)

Query the analytics database read-only, e.g.:
  .venv/bin/python -c "import duckdb; print(duckdb.connect('{home.analytics}', read_only=True)\
.sql('from churn.monthly_movements order by month desc limit 6'))"
""", soft_wrap=True, highlight=False, markup=True)


# --- subject-access ------------------------------------------------------------------------------------
@main.command("subject-access")
@click.option("--customer-id", help="The customer number, e.g. C0100025.")
@click.option("--hetu", help="The personal identity code (HETU).")
@click.option("--email", help="The email address.")
@click.option("--verified-by", required=True, help="Who verified the requester's identity (logged).")
@click.option("--request-ref", help="Reference of the request, e.g. the helpdesk ticket (logged).")
@click.pass_obj
def subject_access(settings: Settings, customer_id: str | None, hetu: str | None, email: str | None,
                   verified_by: str, request_ref: str | None) -> None:
    """Right of access (GDPR art. 15): everything the register holds about one person, as JSON and HTML.

    Give exactly one of --customer-id, --hetu, --email. Writes access.json and the pages access.fi.html and
    access.en.html owner-only into <home>/access/<request id>/ and logs the request in the vault
    (privacy.access_requests: identifier type, verifier, pseudonymous key; never the identifier or the
    answer). Waits for a running build rather than fail. Exit 1 if no single person matches (the request is
    still logged).
    """
    from privacy.access import SubjectNotFound

    given = {k: v for k, v in {"customer_id": customer_id, "hetu": hetu, "email": email}.items() if v is not None}
    if len(given) != 1:
        raise click.UsageError("give exactly one of --customer-id, --hetu, --email")
    (identifier_type, value), = given.items()
    try:
        with _status("Assembling the access package…") as status:
            result = pipeline.subject_access(settings, identifier_type, value, verified_by=verified_by,
                                             request_ref=request_ref, progress=_progress_to(status))
    except SubjectNotFound as exc:
        console.print(f"[red]Not found:[/] {escape(str(exc))}", highlight=False)
        finish(Status.FINDINGS, {"found": 0}, ["no single person matches"])
    table = Table(title=f"Access package {result.request_id}", title_justify="left")
    table.add_column("dataset", no_wrap=True)
    table.add_column("records", justify="right")
    for dataset, rows in result.rows_by_dataset.items():
        table.add_row(dataset, f"{rows:,}")
    console.print(table)
    console.print(f"{result.customer_records} customer record(s), {result.datasets} datasets, {result.rows:,} records")
    _wrote((result.json_path, *result.html_paths.values()))
    finish(Status.OK, {"found": 1, "datasets": result.datasets, "records": result.rows})


# --- erase, object --------------------------------------------------------------------------------------
REQUEST_OPTIONS = [
    click.option("--customer-id", required=True, help="The customer number, e.g. C0100025."),
    click.option("--request-ref", required=True, help="Reference of the data subject's request, e.g. the ticket."),
    click.option("--verified-by", required=True, help="Who verified the requester's identity (logged)."),
]


def request_options(command):
    for option in reversed(REQUEST_OPTIONS):
        command = option(command)
    return command


@main.command()
@request_options
@click.option("--dry-run/--apply", "dry_run", default=True, show_default=True,
              help="Dry run: say what would be erased and what is kept, write nothing but the log. Apply: erase.")
@click.pass_obj
def erase(settings: Settings, customer_id: str, request_ref: str, verified_by: str, dry_run: bool) -> None:
    """Right to erasure (GDPR art. 17): erase a customer's data that the warehouse need not keep.

    Accounting vouchers (invoices, lines, payments) are kept, as the Accounting Act obliges; so is what a legal
    hold or a relationship still going on (an active service, an open debt, a key still out, an open ticket)
    needs. The rest is erased at once as the retention enforcement erases it (ledger, raw, rejects, request
    lists for the source systems, analytics rebuilt from scratch). The answer (what was erased, what is kept,
    why and until when; no personal data) is written owner-only into <home>/access/<request id>/erasure.json
    and the request is logged like an access request. Exit 1 if no customer has that id.
    """
    try:
        with _status("Erasure request…") as status:
            outcome = pipeline.erase(settings, customer_id, request_ref=request_ref, verified_by=verified_by,
                                     dry_run=dry_run, progress=_progress_to(status))
    except pipeline.NoSuchSubject as exc:
        console.print(f"[red]Not found:[/] {escape(str(exc))}", highlight=False)
        finish(Status.FINDINGS, {"found": 0}, ["no such customer"])
    _print_erasure(outcome)
    if outcome.erasures:
        _wrote(outcome.erasures.request_files)
        _print_build(settings, outcome.erasures.build)
    finish(outcome.status, {"erased": outcome.answer.erased_count, "kept": outcome.answer.kept_count,
                            "applied": not outcome.dry_run}, outcome.alerts)


def _print_erasure(outcome: pipeline.EraseOutcome) -> None:
    answer = outcome.answer
    title = f"Erasure request {outcome.request_id}" + (" (dry run: nothing erased)" if outcome.dry_run else "")
    table = Table(title=title, title_justify="left")
    for column in ("category", "records", "outcome"):
        table.add_column(column, justify="right" if column == "records" else "left")
    for category, actions in sorted(answer.erased.items()):
        for action, n in sorted(actions.items()):
            table.add_row(category, f"{n:,}", f"{'would be ' if outcome.dry_run else ''}{action}d")
    for kept in answer.kept:
        until = f" until {kept.until:%-d.%-m.%Y}" if kept.until else ""
        table.add_row(kept.category, f"{kept.records:,}", f"kept{until}: {kept.reason.replace('_', ' ')}")
    console.print(table if answer.erased or answer.kept else "The customer has no records left to erase.")
    if outcome.answer_path:
        _wrote([outcome.answer_path])


@main.command("object")
@request_options
@click.option("--rebuild/--no-rebuild", default=True, show_default=True,
              help="Rebuild and publish analytics afterwards (staging applies the objection at once).")
@click.pass_obj
def object_command(settings: Settings, customer_id: str, request_ref: str, verified_by: str, rebuild: bool) -> None:
    """Objection to direct marketing (GDPR art. 21): recorded and applied over the CRM's marketing consent.

    From then on the customer's `has_marketing_consent` is false whatever a later CRM export says; the access
    package shows the objection. Logged like an access request.
    """
    with _status("Recording the objection…") as status:
        outcome = pipeline.object_to_marketing(settings, customer_id, request_ref=request_ref,
                                               verified_by=verified_by, rebuild=rebuild,
                                               progress=_progress_to(status))
    if outcome.objection.already:
        console.print(f"The customer had objected already (objection {outcome.objection.id}): nothing new.")
    else:
        console.print(f"[green]Recorded[/] objection {outcome.objection.id} to direct marketing "
                      f"(request {outcome.request_id}).")
    _print_build(settings, outcome.build)
    finish(outcome.status, {"recorded": not outcome.objection.already},
           outcome.build.alerts if outcome.build else [])


@main.command()
@click.option("--key", required=True, help="The pseudonymous key, as the audit or quality page shows it.")
@click.option("--verified-by", required=True, help="Who asks, and may see who the record is (logged).")
@click.option("--request-ref", help="Why: the case or ticket (logged).")
@click.pass_obj
def lookup(settings: Settings, key: str, verified_by: str, request_ref: str | None) -> None:
    """From a pseudonymous key back to its record, for the privacy officer and billing staff.

    Prints the record's type and id, its customer, data category and retention status. Reads the vault;
    logged like an access request (privacy.access_requests: who asked, the customer's pseudonymous key).
    Exit 1 if no record has that key.
    """
    outcome = pipeline.lookup(settings, key, verified_by=verified_by, request_ref=request_ref, progress=_say)
    if not outcome.matches:
        console.print(f"No record has that key (look-up {outcome.request_id} logged).")
        finish(Status.FINDINGS, {"records": 0}, ["no record has that key"])
    table = Table(title=f"Look-up {outcome.request_id}", title_justify="left")
    for column in ("record type", "record id", "customer", "category", "status"):
        table.add_column(column, no_wrap=True)
    for match in outcome.matches:
        table.add_row(match.record_type, escape(match.record_id), escape(match.customer_id or ""), match.category,
                      match.status)
    console.print(table)
    finish(Status.OK, {"records": len(outcome.matches)})


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
def rectify_command(settings: Settings, customer_id: str, column: str, value: str, request_ref: str,
                    recorded_by: str, dataset: str, record_id: str | None, rebuild: bool) -> None:
    """Right to rectification (GDPR art. 16, 19): correct a customer's data and list who must be told.

    Records the correction in the vault's audit trail (privacy.rectifications); the staging views apply it
    on top of the exports while the export still carries the corrected value (a later change at the source
    wins); raw keeps the exports as they came. Lists the recipients that received the field before, from the
    disclosure register, so they can be told. Then rebuilds and publishes, unless --no-rebuild. Prints no
    personal data: field names, recipients, dates and counts only.
    """
    with _status("Recording the correction…") as status:
        outcome = pipeline.rectify(settings, customer_id, column, value, request_ref=request_ref,
                                   recorded_by=recorded_by, dataset=dataset, record_id=record_id, rebuild=rebuild,
                                   progress=_progress_to(status))
    result = outcome.rectification
    console.print(f"[green]Recorded[/] rectification {result.id} of {escape(result.field)}: {result.rows} staging "
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
            table.add_row(escape(notice.recipient or "(unnamed)"), notice.country or "?", notice.flow_id,
                          notice.rule_id, str(notice.disclosures), str(notice.first_on or ""),
                          str(notice.last_on or ""))
        console.print(table)
    else:
        console.print("No recorded disclosure carried this field: no recipient to tell.")
    _print_build(settings, outcome.build)
    finish(outcome.status, {"rows": result.rows, "recipients": len(result.recipients)},
           outcome.build.alerts if outcome.build else [])


# --- privacy-notice ------------------------------------------------------------------------------------
@main.command("privacy-notice")
@click.option("--lang", "langs", type=click.Choice(["fi", "en"]), multiple=True,
              help="fi (authoritative) or en; repeat for both [default: both].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for tietosuojaseloste.fi.html/.md and privacy-notice.en.html/.md "
                   "[default: <home>/reports/privacy].")
@click.pass_obj
def privacy_notice(settings: Settings, langs: tuple[str, ...], out_dir: Path | None) -> None:
    """The register description (tietosuojaseloste, GDPR art. 13, 14 and 30) as HTML and Markdown.

    Generated from the configuration the warehouse runs on: privacy/register.yml, data_map.yml and
    disclosures.yml, and the retention policy (WAREHOUSE_RETENTION_POLICY, else retention/policy.yml), in the
    sections of the controller's notice. Reads no customer data. Exit 3 if words are missing for something the
    configuration says (a data category, a legal basis, a safeguard): the message names the file to complete.
    """
    written = pipeline.privacy_notice(settings, langs=tuple(langs) or ("fi", "en"), out_dir=out_dir)
    _wrote(written)
    finish(Status.OK, {"files": len(written)})


if __name__ == "__main__":
    main()
