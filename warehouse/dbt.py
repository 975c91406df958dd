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


@dataclass
class DbtOutcome:
    command: str
    success: bool
    counts: dict[str, int] = field(default_factory=dict)  # status -> nodes
    failures: list[str] = field(default_factory=list)  # node names, never row content


def dbt_vars(settings: Settings, analytics: Path) -> dict[str, str | int]:
    """Paths inside the home are given relative to it (dbt runs in the home folder): the vars, and so dbt's
    parse of the project, are then the same for every home, and a copied home keeps its partial parse."""
    home, limits = settings.home, settings.limits

    def path(target: Path) -> str:
        return target.relative_to(home.root).as_posix() if target.is_relative_to(home.root) else str(target)

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
            quiet: bool = True) -> DbtOutcome:
    """`dbt <args>` against this home, in this process; `analytics`: the file attached as `analytics` (default:
    the one being built); `extra_vars`: dbt vars beside the settings' (a test's `retention_as_of`)."""
    from dbt.cli.main import dbtRunner  # imported late: it is slow and only some commands need it

    from warehouse import dbt_plugin

    analytics = analytics or settings.home.analytics_next
    argv = (["--quiet"] if quiet else []) + dbt_argv(settings, analytics, args, extra_vars)
    vault = dbt_vars(settings, analytics)["vault_path"]
    if settings.vault_key:
        dbt_plugin.GIVEN_KEYS[vault] = vault_key(settings)
    try:
        with contextlib.chdir(settings.home.root):  # the vars' relative paths are the home's
            result = dbtRunner().invoke(argv)
    finally:
        dbt_plugin.GIVEN_KEYS.pop(vault, None)
        release_duckdb()
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
