"""Run dbt in-process (dbtRunner: no start-up cost per command) against a home, with the run's settings.

Everything dbt needs from the settings goes in as `--vars` (paths, limits, which policy and privacy
configuration): profiles.yml and the Python models read them there. The secrets never do: the plugin
(warehouse/dbt_plugin.py) reads the key files whose paths it is given, and a vault key the operator gave as a
value is handed to it inside this process for the call's duration.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from core.home import PROJECT_DIR
from core.settings import Settings
from core.vault import vault_key

log = logging.getLogger(__name__)

SLOWEST_LOGGED = 12  # nodes whose time a dbt call logs
DEFAULT_DBT_THREADS = 2  # models built at once when the operator did not set threads
# Never phone home, whatever the operator's environment says (command-line flags win over it).
QUIET = ["--no-send-anonymous-usage-stats", "--no-version-check"]

# dbt commands an analyst may run through `warehouse dbt -- ...` (pipeline.dbt): those that only read run with the
# vault and the published analytics attached read-only; those that write build into the next analytics file,
# which only `warehouse build` publishes.
READING = {"ls", "list", "show", "compile", "parse", "docs", "debug", "source"}
WRITING = {"build", "run", "test", "seed", "snapshot", "run-operation", "retry", "clone"}
REFUSED = {
    "init": "the project exists already",
    "deps": "the project uses no dbt packages (none can be downloaded here)",
    "clean": "dbt's target folder is the home's (<home>/dbt/target), rewritten by every build",
    "docs serve": "it would hold the home while it serves: open <home>/reports/catalogue/index.html instead",
}
# Set by the warehouse for every call, from the settings and the home; a second value would be ignored silently.
OURS = ("--vars", "--project-dir", "--profiles-dir", "--target-path", "--log-path", "--profile", "--target", "-t")


class DbtArgsError(ValueError):
    """dbt arguments `warehouse dbt` does not run (the message says why and what instead)."""


def dbt_command(args: list[str] | tuple[str, ...]) -> tuple[str, bool]:
    """The dbt command the arguments name (`show`, `docs generate`) and whether it writes; DbtArgsError if it is
    not one an analyst runs here or an argument would override what the warehouse sets."""
    if "--version" in args:
        from importlib.metadata import version

        raise DbtArgsError(f"dbt-core {version('dbt-core')}, dbt-duckdb {version('dbt-duckdb')} (`dbt --version` is "
                           "not run: it asks the package index for the latest release)")
    for arg in args:
        if arg.split("=", 1)[0] in OURS:
            raise DbtArgsError(f"{arg.split('=', 1)[0]} is set by the warehouse from its settings (`warehouse "
                               "--home`, `--threads`, `--memory-limit`, the environment): leave it out")
    if not args or args[0].startswith("-"):
        if any(a in ("-h", "--help") for a in args):
            return "", False  # dbt's own help: nothing runs
        raise DbtArgsError("name a dbt command first: ls, show, compile, parse, docs generate, build, run, test, … "
                           "(`warehouse dbt -- --help`)")
    command = args[0]
    if command not in READING | WRITING | REFUSED.keys():
        raise DbtArgsError(f"`{command}` is not a dbt command (`warehouse dbt -- --help` lists them)")
    if command == "docs" and "serve" in args[1:2]:
        command = "docs serve"
    if command in REFUSED:
        raise DbtArgsError(f"`dbt {command}` is not run through the warehouse: {REFUSED[command]}")
    return command, command in WRITING


@dataclass
class DbtOutcome:
    command: str
    success: bool
    counts: dict[str, int] = field(default_factory=dict)  # status -> nodes
    failures: list[str] = field(default_factory=list)  # node names, never row content


def home_path(settings: Settings, target: Path) -> str:
    """A path inside the home relative to it (dbt runs in the home folder), any other as it is."""
    root = settings.home.root
    return target.relative_to(root).as_posix() if target.is_relative_to(root) else str(target)


def dbt_vars(settings: Settings, analytics: Path) -> dict[str, str | int]:
    """Paths inside the home are given relative to it (dbt runs in the home folder): the vars, and so dbt's
    parse of the project, are then the same for every home, and a copied home keeps its partial parse."""
    home, limits = settings.home, settings.limits

    def path(target: Path) -> str:
        return home_path(settings, target)

    return {
        "vault_path": path(home.vault), "analytics_path": path(analytics), "temp_dir": path(home.tmp),
        "memory_limit": limits.memory_limit, "dbt_threads": limits.threads or DEFAULT_DBT_THREADS,
        "duckdb_threads": limits.threads or 0, "vault_key_file": path(home.vault_key),
        "pseudonym_key_file": path(home.pseudonym_key), "retention_policy": str(settings.retention_policy),
        "privacy_config": str(settings.privacy_config),
    }


def dbt_argv(settings: Settings, analytics: Path, args: list[str] | tuple[str, ...],
             extra_vars: dict | None = None) -> list[str]:
    home = settings.home
    return ["--no-use-colors", "--log-path", str(home.dbt_dir / "logs"), *args, *QUIET,
            "--vars", json.dumps(dbt_vars(settings, analytics) | (extra_vars or {})), "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(PROJECT_DIR), "--target-path", str(home.dbt_dir / "target")]


def run_dbt(settings: Settings, *args: str, analytics: Path | None = None, extra_vars: dict | None = None,
            quiet: bool = True, read_only: bool = False, log_file: bool = True, label: str | None = None
            ) -> DbtOutcome:
    """`dbt <args>` against this home, in this process; `analytics`: the file attached as `analytics` (default:
    the one being built); `extra_vars`: dbt vars beside the settings' (a test's `retention_as_of`). `read_only`
    attaches the vault and the published analytics read-only (an empty in-memory database before the first
    build), so a command that tries to write fails instead; the vars stay those of a build, which keeps dbt's
    partial parse. Without `log_file` dbt writes no dbt.log (`show` would log the rows it prints). `label`: what
    the outcome and our log call the command (default: the arguments; an analyst's may hold a query's values)."""
    from dbt.cli.main import dbtRunner  # imported late: it is slow and only some commands need it

    from warehouse import dbt_plugin

    analytics = analytics or settings.home.analytics_next
    argv = (["--quiet"] if quiet else []) + dbt_argv(settings, analytics, args, extra_vars)
    if not log_file:
        argv.insert(0, "--log-level-file=none")
    vault = home_path(settings, settings.home.vault)
    if settings.vault_key:
        dbt_plugin.GIVEN_KEYS[vault] = vault_key(settings)
    if read_only:
        published = settings.home.analytics
        dbt_plugin.READ_ONLY[vault] = home_path(settings, published) if published.exists() else ":memory:"
    try:
        with contextlib.chdir(settings.home.root):  # the vars' relative paths are the home's
            result = dbtRunner().invoke(argv)
    finally:
        dbt_plugin.GIVEN_KEYS.pop(vault, None)
        dbt_plugin.READ_ONLY.pop(vault, None)
        release_duckdb()
    outcome = DbtOutcome(label or " ".join(args), bool(result.success))
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


def dbt_help(args: list[str] | tuple[str, ...]) -> DbtOutcome:
    """dbt's own `--help`: nothing of the project or the home is read."""
    from dbt.cli.main import dbtRunner

    return DbtOutcome("--help", bool(dbtRunner().invoke([*args, *QUIET]).success))


def release_duckdb() -> None:
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
