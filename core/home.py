"""The warehouse home: the one folder that holds the databases, keys, outputs and logs of an installation.

`Home` is the one owner of every path the warehouse writes; nothing else derives a path from another one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_HOME = PROJECT_DIR / "var"  # git-ignored


@dataclass(frozen=True)
class Home:
    root: Path
    # Where the operator keeps a key outside the home (settings), else None: <home>/keys/<name>.key
    vault_key_override: Path | None = None
    pseudonym_key_override: Path | None = None

    @property
    def vault(self) -> Path:
        """Raw and staging layers: personal data in clear, encrypted at rest."""
        return self.root / "vault.duckdb"

    @property
    def analytics(self) -> Path:
        """Marts for analysts and reports: pseudonymised, published atomically."""
        return self.root / "analytics.duckdb"

    @property
    def analytics_next(self) -> Path:
        """Where the next analytics database is built before it replaces the published one."""
        return self.root / "analytics.next.duckdb"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def vault_key(self) -> Path:
        return self.vault_key_override or self.keys / "vault.key"

    @property
    def pseudonym_key(self) -> Path:
        return self.pseudonym_key_override or self.keys / "pseudonym.key"

    @property
    def sample_inbox(self) -> Path:
        return self.root / "sample-inbox"

    @property
    def reports(self) -> Path:
        """Churn reports, quality pages and retention audits: written for people, never personal data."""
        return self.root / "reports"

    @property
    def churn_reports(self) -> Path:
        """The churn report's archive: one folder per month (`YYYY-MM/`), an index page per language."""
        return self.reports / "churn"

    @property
    def churn_archive_lock(self) -> Path:
        """Held while the archive is written: reports run beside a build (which holds the home), not beside
        each other."""
        return self.churn_reports / ".lock"

    @property
    def config(self) -> Path:
        """The installation's own configuration (not in the repository): e-mail delivery."""
        return self.root / "config"

    @property
    def mail_config(self) -> Path:
        """SMTP server, sender and recipients of the churn report (reports/mail.py); absent: no e-mail."""
        return self.config / "mail.yml"

    @property
    def catalogue(self) -> Path:
        """The dbt catalogue: one static page of every model and column."""
        return self.reports / "catalogue" / "index.html"

    @property
    def access(self) -> Path:
        """Answers to data subjects (access packages): personal data, owner-only, one folder per request."""
        return self.root / "access"

    @property
    def dbt_dir(self) -> Path:
        return self.root / "dbt"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs / "warehouse.log"

    @property
    def run_log(self) -> Path:
        """One JSON line per command run: what cron users watch."""
        return self.logs / "runs.jsonl"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def tmp(self) -> Path:
        """Where DuckDB spills past its memory limit: inside the owner-only home, beside the vault."""
        return self.root / "tmp"

    @property
    def scratch(self) -> Path:
        """Transient clear-text copies (the UTF-8 copy of an export): emptied at the start of every ingest."""
        return self.tmp / "scratch"

    def create(self) -> Home:
        # Owner-only from the start: the vault and the logs concern real people.
        for folder in (self.root, self.logs, self.dbt_dir, self.reports, self.tmp, self.keys):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self
