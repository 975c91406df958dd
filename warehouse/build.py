"""Build the dbt models into a new analytics file and publish it.

dbt writes staging views into the vault and marts into `analytics.next.duckdb`, attached as `analytics`: a
copy of the published file, which the incremental marts update, or a fresh file (`--full-refresh`, and always
after an erasure: a copy would keep the erased records' keys in its free blocks). Only a successful build
replaces `analytics.duckdb`, by an atomic rename: an analyst who has the old file open keeps reading it
undisturbed and never sees a half-built state.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from core import erasure, faults, files, render
from core.db import connect
from core.home import PROJECT_DIR
from core.keys import KeyFileError
from core.pseudonym import load_secret
from core.schema import ensure_vault_schema
from core.settings import Settings
from core.vault import open_vault
from warehouse.dbt import DbtOutcome, run_dbt

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    built: bool
    fresh: bool = True  # every source within its freshness threshold
    full_refresh: bool = False
    erasures: list[int] = field(default_factory=list)  # erasure runs this build publishes
    outcomes: list[DbtOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [f for outcome in self.outcomes for f in outcome.failures]


def prepare_vault(settings: Settings) -> tuple[list[int], bool]:
    """Every table the models read exists; returns (unpublished erasure runs, whether the ledger is empty)."""
    con = open_vault(settings)
    try:
        ensure_vault_schema(con)
        return erasure.unpublished_runs(con), erasure.ledger_size(con) == 0
    finally:
        con.close()


def ensure_pseudonym_key(settings: Settings, ledger_empty: bool) -> None:
    """The first build creates the secret. Later a missing or damaged one is an error, never a silent rotation:
    the published keys and the erasure ledger were made with it."""
    home = settings.home
    try:
        load_secret(home.pseudonym_key, may_create=ledger_empty and not home.analytics.exists())
    except KeyFileError as exc:
        raise BuildError(str(exc)) from None


class BuildError(RuntimeError):
    """The build cannot start (no vault, a key missing)."""


def build(settings: Settings, *, full_refresh: bool = False) -> BuildResult:
    """Build staging and marts (analytics into `analytics.next`), check source freshness, write the catalogue.

    Incremental models recompute what changed since their last build, unless `full_refresh`, or an erasure is
    not published yet: then everything is rebuilt into a fresh file. The caller publishes (`publish`) once
    everything that writes into the new analytics file is done.
    """
    home = settings.home
    erasures = _start(settings, full_refresh=full_refresh)
    full_refresh = full_refresh or bool(erasures)
    result = BuildResult(False, full_refresh=full_refresh, erasures=erasures)
    result.outcomes.append(run_dbt(settings, "build", *(["--full-refresh"] if full_refresh else [])))
    if not result.outcomes[0].success:
        discard(settings)
        return result
    result.built = True
    # Before publishing: every dbt invocation attaches (and would re-create) analytics.next.
    freshness = run_dbt(settings, "source", "freshness")
    result.outcomes.append(freshness)
    result.fresh = freshness.success  # a stale source fails the job: the scheduler must alert on missing exports
    # The browsable catalogue of every model and column: one static HTML file that opens offline. It holds the
    # project's descriptions and the tables' columns, no figures: made again only when the project changed.
    project = project_fingerprint(settings)
    if catalogue_project(home.catalogue) != project:
        docs = run_dbt(settings, "docs", "generate", "--static")
        if docs.success:
            page = (home.dbt_dir / "target" / "static_index.html").read_text(encoding="utf-8")
            files.write_text(home.catalogue, page.replace("<head>", f"<head>{CATALOGUE_MARK.format(project)}", 1))
        result.outcomes.append(docs)
    return result


def start_next(settings: Settings, *, full_refresh: bool = False) -> None:
    """Prepare the next analytics file for a dbt command an analyst runs (`warehouse dbt -- build --select …`):
    a copy of the published one (a fresh file with `full_refresh`), as `build` starts. It is never published
    from there: the next `build` discards it and starts again. Refused while an erasure waits to be published:
    that build must come first, from scratch."""
    _start(settings, full_refresh=full_refresh, refuse_erasures=True)


def _start(settings: Settings, *, full_refresh: bool, refuse_erasures: bool = False) -> list[int]:
    """The vault ready, the pseudonym key there, the next analytics file begun; the erasure runs not yet
    published (a build after them starts from a fresh file; an analyst's dbt command is refused)."""
    home = settings.home
    if not home.vault.exists():
        raise BuildError(f"no vault at {home.vault}: run `warehouse ingest` first")
    erasures, ledger_empty = prepare_vault(settings)
    if erasures and refuse_erasures:
        raise BuildError("an erasure is not published yet: run `warehouse build` (it rebuilds analytics from "
                         "scratch) before building with dbt by hand")
    ensure_pseudonym_key(settings, ledger_empty)
    discard(settings)
    if home.analytics.exists() and not (full_refresh or erasures):
        _seed_next(settings)
    return erasures


# What a build's output depends on besides the vault's data: the project's models and the configuration files.
PROJECT_INPUTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds")


def _digest_files(digest, path: Path) -> None:
    for item in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if item.is_file() and "__pycache__" not in item.parts:
            digest.update(item.name.encode() + b"\0" + item.read_bytes())


def project_fingerprint(settings: Settings) -> str:
    """A digest of what the models' shape and descriptions follow: dbt's version, the project and configuration."""
    digest = hashlib.sha256(version("dbt-core").encode())
    for path in (settings.retention_policy, settings.privacy_config, settings.ingest_config,
                 *(PROJECT_DIR / name for name in PROJECT_INPUTS)):
        _digest_files(digest, path)
    return digest.hexdigest()


CATALOGUE_MARK = '<meta name="warehouse-project" content="{}">'


def catalogue_project(path: Path) -> str | None:
    """The project fingerprint the catalogue was made for (None: no catalogue, or one made before the mark)."""
    if not path.exists():
        return None
    found = re.search(CATALOGUE_MARK.format("([0-9a-f]{64})"), path.read_text(encoding="utf-8"))
    return found.group(1) if found else None


def inputs_fingerprint(settings: Settings) -> str:
    """A digest of everything a build reads: the newest loaded file, the corrections, objections and erasures
    recorded in the vault, the retention policy, the privacy and ingest configuration, and the dbt project."""
    digest = hashlib.sha256()
    con = open_vault(settings, read_only=True)
    try:
        state = con.execute("""
            select (select max(load_id) from ingest.files where status = 'loaded'),
                   (select count(*) || '/' || coalesce(max(id), 0) from privacy.rectifications),
                   (select count(*) || '/' || coalesce(max(id), 0) from privacy.objections),
                   (select count(*) from retention.erasure_ledger)""").fetchone()
    finally:
        con.close()
    digest.update(repr(state).encode() + project_fingerprint(settings).encode())
    return digest.hexdigest()


def last_published_inputs(settings: Settings) -> str | None:
    con = open_vault(settings, read_only=True)
    try:
        row = con.execute("select inputs from runs.builds order by published_at desc limit 1").fetchone()
    finally:
        con.close()
    return row[0] if row else None


def record_published(settings: Settings, inputs: str, full_refresh: bool) -> None:
    con = open_vault(settings)
    try:
        con.execute("insert into runs.builds values (current_timestamp, ?, ?)", [inputs, full_refresh])
    finally:
        con.close()


BANNER = re.compile(r'<div id="quality-banner".*?</div>', re.S)


def stamp_catalogue(settings: Settings, summary: dict) -> None:
    """Put the latest data-quality run's one-line summary on the catalogue, so analysts see it first."""
    path = settings.home.catalogue
    if not path.exists():
        return
    colour = "#b42318" if summary["errors"] else "#b54708" if summary["warnings"] else "#027a48"
    text = html.escape(
        f"Data quality {render.timestamp(summary['run_at'], 'en')}: {summary['passed']} of {summary['checks']} checks "
        f"passed, {summary['errors']} errors, {summary['warnings']} warnings (reports/quality/quality.html)")
    banner = (f'<div id="quality-banner" style="position:fixed;bottom:0;left:0;right:0;z-index:9999;'
              f'padding:6px 16px;font:13px sans-serif;color:#fff;background:{colour}">{text}</div>')
    page = BANNER.sub("", path.read_text(encoding="utf-8"))
    files.write_text(path, page.replace("<body>", "<body>" + banner, 1))


def _seed_next(settings: Settings) -> None:
    """Start the new analytics file as a copy of the published one, for the incremental marts to update.

    The published file stays untouched for its readers. The quality results the last check wrote into it
    describe the last data, not the next: they go, and the next check writes its own.
    """
    home = settings.home
    files.copy(home.analytics, home.analytics_next)
    con = connect(home.analytics_next, limits=settings.limits)
    try:
        con.execute("drop schema if exists quality cascade")
    finally:
        con.close()


def discard(settings: Settings) -> None:
    settings.home.analytics_next.unlink(missing_ok=True)
    settings.home.analytics_next.with_name(settings.home.analytics_next.name + ".wal").unlink(missing_ok=True)


def publish(settings: Settings, erasures: list[int]) -> None:
    """Swap the freshly built analytics database in (a reader of the old one is not disturbed), then record
    that the erasures it was built after are published."""
    home = settings.home
    home.analytics_next.chmod(0o600)
    faults.point("build.before_publish")
    os.replace(home.analytics_next, home.analytics)
    files.sync_folder(home.root)
    log.info("published %s", home.analytics.name)
    faults.point("build.after_publish")
    if erasures:
        con = open_vault(settings)
        try:
            erasure.mark_published(con, erasures)
        finally:
            con.close()
        log.info("erasure run(s) %s published: analytics was rebuilt from scratch", erasures)
