"""Run dbt in-process (dbtRunner: no start-up cost per command) and publish the analytics database.

dbt writes staging views into the vault and marts into `analytics.next.duckdb`, attached as `analytics`:
a copy of the published file, which the incremental marts update (a fresh one with --full-refresh). Only a
successful build replaces `analytics.duckdb`, by an atomic rename: an analyst who has the old file open
keeps reading it undisturbed and never sees a half-built state.
"""

from __future__ import annotations

import html
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from privacy.rectify import ensure_rectifications
from warehouse import pseudonym
from warehouse.db import connect
from warehouse.home import PROJECT_DIR, Home
from warehouse.keys import create_key
from warehouse.vault import vault_key

log = logging.getLogger(__name__)

# Set before dbt is imported anywhere: no usage statistics, no version checks over the network.
QUIET_ENV = {"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false"}
os.environ.update(QUIET_ENV)


SLOWEST_LOGGED = 12  # nodes whose time a dbt call logs


@dataclass
class DbtOutcome:
    command: str
    success: bool
    counts: dict[str, int] = field(default_factory=dict)  # status -> nodes
    failures: list[str] = field(default_factory=list)  # node names, never row content


@contextmanager
def dbt_env(home: Home) -> Iterator[None]:
    """Paths and the vault key of this home for profiles.yml, for one dbt call; threads and memory limit it
    reads from WAREHOUSE_* as set. The key leaves the environment when dbt returns."""
    env = {
        "WAREHOUSE_VAULT_PATH": str(home.vault),
        "WAREHOUSE_ANALYTICS_PATH": str(home.analytics_next),
        "WAREHOUSE_TEMP_DIR": str(home.tmp),
        "DBT_ENV_SECRET_VAULT_KEY": vault_key(home.vault, create=True),
        pseudonym.DBT_KEY_FILE_ENV: str(pseudonym.key_file(home.root)),
    }
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.pop("DBT_ENV_SECRET_VAULT_KEY")


def run_dbt(home: Home, *args: str) -> DbtOutcome:
    """`dbt <args>` against this home, in this process."""
    from dbt.cli.main import dbtRunner  # imported late: it is slow and only some commands need it

    argv = ["--quiet", "--no-use-colors", "--log-path", str(home.dbt_dir / "logs"), *args,
            "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(home.dbt_dir / "target")]
    try:
        with dbt_env(home):
            result = dbtRunner().invoke(argv)
    finally:
        _release_duckdb()
    outcome = DbtOutcome(" ".join(args), bool(result.success))
    nodes = getattr(result.result, "results", None) or []
    for node in nodes:
        status = str(node.status).lower().split(".")[-1]
        outcome.counts[status] = outcome.counts.get(status, 0) + 1
        if status in ("error", "fail", "runtime error"):
            outcome.failures.append(node.node.unique_id)
    if result.exception is not None:
        outcome.failures.append(f"dbt: {type(result.exception).__name__}: {result.exception}")
    log.info("dbt %s: success=%s %s", outcome.command, outcome.success, outcome.counts)
    # Where a build's time goes (node names and seconds only), for whoever tunes the models.
    slowest = sorted(nodes, key=lambda node: node.execution_time or 0, reverse=True)[:SLOWEST_LOGGED]
    if slowest:
        log.info("dbt %s: slowest: %s", outcome.command,
                 ", ".join(f"{node.node.name} {node.execution_time:.1f} s" for node in slowest))
    return outcome


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after dbt returns.

    Otherwise the vault stays locked against our own later connections ("different configuration than
    existing connections") and the analytics file may still be held open when it is renamed. dbt-duckdb
    has no public call for this: its `close_all_connections` only drops the reference.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
        DuckDBConnectionManager.close_all_connections()


def build(home: Home, *, full_refresh: bool = False) -> list[DbtOutcome]:
    """Build staging and marts (analytics into `analytics.next`), check source freshness, write the catalogue.

    Incremental models recompute what changed since their last build, unless `full_refresh`.

    The caller publishes (`publish`) once everything that writes into the new analytics file is done.
    """
    ensure_pseudonym_key(home)
    home.analytics_next.unlink(missing_ok=True)
    if home.analytics.exists() and not full_refresh:
        _seed_next(home)
    ensure_rectifications(home.vault)  # a source of the staging models
    outcomes = [run_dbt(home, "build", *(["--full-refresh"] if full_refresh else []))]
    if not outcomes[0].success:
        discard(home)
        return outcomes
    # Before publishing: every dbt invocation attaches (and would re-create) analytics.next.
    outcomes.append(run_dbt(home, "source", "freshness"))
    # The browsable catalogue of every model and column: one static HTML file that opens offline.
    docs = run_dbt(home, "docs", "generate", "--static")
    if docs.success:
        catalogue_path(home).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(home.dbt_dir / "target" / "static_index.html", catalogue_path(home))
    outcomes.append(docs)
    return outcomes


def catalogue_path(home: Home) -> Path:
    return home.reports / "catalogue" / "index.html"


BANNER = re.compile(r'<div id="quality-banner".*?</div>', re.S)


def stamp_catalogue(home: Home, summary: dict) -> None:
    """Put the latest data-quality run's one-line summary on the catalogue, so analysts see it first."""
    path = catalogue_path(home)
    if not path.exists():
        return
    colour = "#b42318" if summary["errors"] else "#b54708" if summary["warnings"] else "#027a48"
    text = html.escape(
        f"Data quality {summary['run_at']:%Y-%m-%d %H:%M}: {summary['passed']} of {summary['checks']} checks "
        f"passed, {summary['errors']} errors, {summary['warnings']} warnings (reports/quality/quality.html)")
    banner = (f'<div id="quality-banner" style="position:fixed;bottom:0;left:0;right:0;z-index:9999;'
              f'padding:6px 16px;font:13px sans-serif;color:#fff;background:{colour}">{text}</div>')
    page = BANNER.sub("", path.read_text(encoding="utf-8"))
    path.write_text(page.replace("<body>", "<body>" + banner, 1), encoding="utf-8")


def ensure_pseudonym_key(home: Home) -> None:
    """The first build creates the secret; later, a missing secret is an error, not a silent rotation."""
    path = pseudonym.key_file(home.root)
    if path.exists():
        return
    if home.analytics.exists():
        raise FileNotFoundError(
            f"pseudonym key {path} is missing but analytics was built with one: restore it, or rotate "
            "deliberately by deleting analytics.duckdb (every pseudonymous key will change)")
    create_key(path)
    log.info("created pseudonym key %s", path)


def _seed_next(home: Home) -> None:
    """Start the new analytics file as a copy of the published one, for the incremental marts to update.

    The published file stays untouched for its readers. The quality results the last check wrote into it
    describe the last data, not the next: they go, and the next check writes its own.
    """
    shutil.copyfile(home.analytics, home.analytics_next)
    home.analytics_next.chmod(0o600)
    con = connect(home.analytics_next)
    try:
        con.execute("drop schema if exists quality cascade")
    finally:
        con.close()


def discard(home: Home) -> None:
    home.analytics_next.unlink(missing_ok=True)


def publish(home: Home) -> None:
    """Swap the freshly built analytics database in; a reader of the old one is not disturbed."""
    home.analytics_next.chmod(0o600)
    os.replace(home.analytics_next, home.analytics)
    log.info("published %s", home.analytics.name)
