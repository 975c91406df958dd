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

from ingest.config import DEFAULT_CONFIG_DIR, load_entities
from ingest.load import FileResult, find_files, ingest_inbox
from warehouse.db import connect
from warehouse.home import Home, configure_logging

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
              help="DuckDB memory limit, e.g. 4GB; larger work spills to disk.")
@click.option("-v", "--verbose", is_flag=True, help="Debug-level log file.")
@click.pass_context
def main(ctx: click.Context, home_dir: str | None, threads: int | None, memory_limit: str | None,
         verbose: bool) -> None:
    """Customer-register warehouse of Local Loop Oy: exports in, analytics out.

    The vault (raw and staging layers: personal data) and the analytics database (marts) live in the
    home folder, with logs. Logs never contain personal data.
    """
    os.umask(0o077)  # every database, export, report and log we write is owner-only: they concern people
    home = Home.resolve(home_dir).create()
    configure_logging(home, verbose)
    ctx.obj = {"home": home, "threads": threads, "memory_limit": memory_limit}


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
    from warehouse.sample import generate_exports

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
    home: Home = obj["home"]
    entities = load_entities(config_dir)
    con = connect(home.vault, threads=obj["threads"], memory_limit=obj["memory_limit"])
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("Ingesting", total=len(find_files(inbox, entities)))

            def on_file(result: FileResult) -> None:
                if as_json:
                    print(json.dumps(result.as_dict()), flush=True)
                progress.update(task, advance=1, description=f"Ingested {result.source_file}")

            results = ingest_inbox(con, inbox, entities, on_file=on_file)
    finally:
        con.close()
    if not as_json:
        _print_ingest_summary(results)
    for refused in (r for r in results if r.status == "refused"):
        console.print(f"[red]Refused[/] {refused.reason}")
    return results


def _print_ingest_summary(results: list[FileResult]) -> None:
    table = Table(title="Ingest", title_justify="left")
    for column in ("entity", "files", "loaded", "unchanged", "refused", "rows loaded", "rows rejected"):
        table.add_column(column, justify="left" if column == "entity" else "right", no_wrap=True)
    for entity in sorted({r.entity for r in results}):
        mine = [r for r in results if r.entity == entity]
        count = {s: sum(r.status == s for r in mine) for s in ("loaded", "unchanged", "refused")}
        table.add_row(entity, str(len(mine)), str(count["loaded"]), str(count["unchanged"]),
                      str(count["refused"]) if count["refused"] else "",
                      f"{sum(r.rows_loaded for r in mine):,}", f"{sum(r.rows_rejected for r in mine):,}")
    console.print(table)


# --- build ---------------------------------------------------------------------------------------------
@main.command()
@click.pass_obj
def build(obj: dict) -> None:
    """Build the dbt models (staging in the vault, marts in analytics), test them, publish analytics.

    Exit 1 if the build failed (analytics is then left as it was) or a source is stale.
    """
    sys.exit(0 if all(_build(obj)) else 1)


def _build(obj: dict, *, publish: bool = True) -> tuple[bool, bool]:
    """dbt build into analytics.next; returns (built, fresh). Publishes unless the caller has more to add."""
    from warehouse.build import build as dbt_build
    from warehouse.build import discard
    from warehouse.build import publish as publish_analytics

    home: Home = obj["home"]
    if not home.vault.exists():
        raise click.ClickException(f"no vault at {home.vault}: run `warehouse ingest` first")
    try:
        with console.status("Building dbt models and running their tests…"):
            outcomes = dbt_build(home, threads=obj["threads"], memory_limit=obj["memory_limit"])
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
    return built, all(outcome.success for outcome in outcomes[1:])


# --- run, demo -----------------------------------------------------------------------------------------
@main.command()
@click.option("--inbox", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder the operational systems drop their exports into.")
@click.pass_obj
def run(obj: dict, inbox: Path) -> None:
    """The scheduled daily job: ingest the inbox, then build. Exit 1 if anything failed."""
    sys.exit(_run(obj, inbox))


def _run(obj: dict, inbox: Path) -> int:
    results = _ingest(obj, inbox)
    built, fresh = _build(obj)
    return 0 if built and fresh and not any(r.status == "refused" for r in results) else 1


@main.command()
@click.option("--customers", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_obj
def demo(obj: dict, customers: int, seed: int) -> None:
    """Generate sample exports into the home's sample inbox, run the daily job on them, show the results."""
    home: Home = obj["home"]
    shutil.rmtree(home.sample_inbox, ignore_errors=True)  # ours alone: files of an earlier demo would linger
    _generate(home.sample_inbox, customers, seed, date(2019, 1, 1), date.today(), 3, 0.01)
    code = _run(obj, home.sample_inbox)
    _print_demo_summary(home)
    sys.exit(code)


def _print_demo_summary(home: Home) -> None:
    con = connect(home.vault, read_only=True)
    try:
        files, rows, rejected, refused = con.execute("""
            select count(*), sum(rows_loaded), sum(rows_rejected), count(*) filter (where status = 'refused')
            from ingest.files""").fetchone()
    finally:
        con.close()
    console.print(f"""
[bold]Done.[/] {files} files ingested: {rows:,} rows loaded, {rejected:,} rejected (kept in ingest.rejects), \
{refused} files refused.

  sample exports   {home.sample_inbox}  (manifest.json lists the injected defects)
  vault            {home.vault}  (raw + staging: personal data, not for analysts)
  analytics        {home.analytics}  (marts for analysts)
  logs             {home.logs}

Query the analytics database read-only:
  .venv/bin/python -c "import duckdb; print(duckdb.connect('{home.analytics}', read_only=True).sql('show all tables'))"
""")


if __name__ == "__main__":
    main()
