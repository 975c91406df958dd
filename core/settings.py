"""Settings: everything a run of the warehouse is configured with, in one object passed down explicitly.

`Settings.from_environment(...)` is the one place that reads the process environment (and the one place that
quietens third-party libraries' phoning home, which they only take from the environment). Below the command
line, every module receives a `Settings` (or the parts of it it needs); no module of ours passes a setting to
another through `os.environ`.

| variable | setting | default |
|---|---|---|
| WAREHOUSE_HOME | home folder | ./var of the project |
| WAREHOUSE_THREADS | DuckDB threads | all cores |
| WAREHOUSE_MEMORY_LIMIT | DuckDB memory limit per database | 2.5GB |
| WAREHOUSE_VAULT_KEY | the vault's key itself | (the key file) |
| WAREHOUSE_VAULT_KEY_FILE | the vault's key file | <home>/keys/vault.key |
| WAREHOUSE_PSEUDONYM_KEY_FILE | the pseudonym secret's file | <home>/keys/pseudonym.key |
| WAREHOUSE_INGEST_CONFIG | the ingest's configuration folder | ingest/sources |
| WAREHOUSE_RETENTION_POLICY | the retention policy file | retention/policy.yml |
| WAREHOUSE_PRIVACY_CONFIG_DIR | the privacy configuration folder | privacy/ |
| WAREHOUSE_LOCK_WAIT | seconds a command waits for a busy home | 0 (readers: 3600) |
| WAREHOUSE_SMTP_PASSWORD | the churn report's mail server password | (<home>/config/mail.yml `password_file`) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.home import DEFAULT_HOME, PROJECT_DIR, Home

# Per DuckDB database; past it DuckDB spills to disk. Python, dbt and GX around it took 1.4 GB more in the
# 1,000,000-customer build, so that a process of the warehouse stays under 4 GB resident.
DEFAULT_MEMORY_LIMIT = "2.5GB"
DEFAULT_INGEST_CONFIG = PROJECT_DIR / "ingest" / "sources"
DEFAULT_RETENTION_POLICY = PROJECT_DIR / "retention" / "policy.yml"
DEFAULT_PRIVACY_CONFIG = PROJECT_DIR / "privacy"
# Third parties that phone home unless their environment says not to (dbt, Great Expectations).
QUIET_ENVIRONMENT = {"DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false",
                     "GX_ANALYTICS_ENABLED": "false"}
# A test-only kill point (core/faults.py): the process kills itself when it reaches this named step.
CRASH_AT_VARIABLE = "WAREHOUSE_CRASH_AT"


class SettingsError(ValueError):
    """A setting has a value the warehouse cannot use (named, with the value when it is not a secret)."""


@dataclass(frozen=True)
class Limits:
    """What every DuckDB connection of a run may use."""
    threads: int | None = None  # None: all cores
    memory_limit: str = DEFAULT_MEMORY_LIMIT


@dataclass(frozen=True)
class Settings:
    home: Home
    limits: Limits = field(default_factory=Limits)
    ingest_config: Path = DEFAULT_INGEST_CONFIG
    retention_policy: Path = DEFAULT_RETENTION_POLICY
    privacy_config: Path = DEFAULT_PRIVACY_CONFIG
    vault_key: str | None = field(default=None, repr=False)  # the key itself, when given instead of its file
    lock_wait: float | None = None  # None: the command's own default
    smtp_password: str | None = field(default=None, repr=False)  # the mail server's, when given this way
    verbose: bool = False
    crash_at: str | None = None

    @classmethod
    def for_home(cls, root: str | os.PathLike, **values) -> Settings:
        """Settings of a home with defaults for everything else (tests, benchmarks, tools)."""
        return cls(home=Home(Path(root).expanduser().resolve()), **values)

    def with_(self, **values) -> Settings:
        return replace(self, **values)

    @classmethod
    def from_environment(cls, *, home: str | os.PathLike | None = None, threads: int | None = None,
                         memory_limit: str | None = None, ingest_config: Path | None = None,
                         lock_wait: float | None = None, verbose: bool = False,
                         environ: dict[str, str] | None = None) -> Settings:
        """Command-line values win over the environment, which wins over the defaults."""
        env = os.environ if environ is None else environ

        def path(value, variable: str, default: Path | None) -> Path | None:
            chosen = value or env.get(variable)
            return Path(chosen).expanduser().resolve() if chosen else default

        def number(value, variable: str, kind):
            if value is not None:
                return value
            text = env.get(variable)
            try:
                return kind(text) if text else None
            except ValueError as exc:
                raise SettingsError(f"{variable}={text!r} is not a number") from exc

        root = path(home, "WAREHOUSE_HOME", DEFAULT_HOME)
        return cls(
            home=Home(root, vault_key_override=path(None, "WAREHOUSE_VAULT_KEY_FILE", None),
                      pseudonym_key_override=path(None, "WAREHOUSE_PSEUDONYM_KEY_FILE", None)),
            limits=Limits(threads=number(threads, "WAREHOUSE_THREADS", int) or None,
                          memory_limit=memory_limit or env.get("WAREHOUSE_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT),
            ingest_config=path(ingest_config, "WAREHOUSE_INGEST_CONFIG", DEFAULT_INGEST_CONFIG),
            retention_policy=path(None, "WAREHOUSE_RETENTION_POLICY", DEFAULT_RETENTION_POLICY),
            privacy_config=path(None, "WAREHOUSE_PRIVACY_CONFIG_DIR", DEFAULT_PRIVACY_CONFIG),
            vault_key=env.get("WAREHOUSE_VAULT_KEY") or None,
            lock_wait=number(lock_wait, "WAREHOUSE_LOCK_WAIT", float),
            smtp_password=env.get("WAREHOUSE_SMTP_PASSWORD") or None,
            verbose=verbose,
            crash_at=env.get(CRASH_AT_VARIABLE) or None,
        )


def quieten_third_parties() -> None:
    """dbt and Great Expectations read these only from the environment: set them before either is imported."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
