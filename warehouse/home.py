"""The warehouse home: the one folder that holds the databases, outputs and logs of an installation."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_HOME = PROJECT_DIR / "var"  # git-ignored


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike | None = None) -> Home:
        """`--home` wins over `WAREHOUSE_HOME`, which wins over the project's own `var/`."""
        root = Path(home or os.environ.get("WAREHOUSE_HOME") or DEFAULT_HOME).expanduser().resolve()
        return cls(root)

    @property
    def vault(self) -> Path:
        """Raw and staging layers: personal data in clear."""
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
    def sample_inbox(self) -> Path:
        return self.root / "sample-inbox"

    @property
    def reports(self) -> Path:
        """Churn reports, quality pages and retention audits: written for people, never personal data."""
        return self.root / "reports"

    @property
    def access(self) -> Path:
        """Subject-access packages (GDPR art. 15): personal data, owner-only, one folder per request."""
        return self.root / "access"

    @property
    def dbt_dir(self) -> Path:
        return self.root / "dbt"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tmp(self) -> Path:
        """Where DuckDB spills past its memory limit: inside the owner-only home, beside the vault."""
        return self.root / "tmp"

    def create(self) -> Home:
        # Owner-only from the start: the vault and the logs concern real people.
        for folder in (self.root, self.logs, self.dbt_dir, self.reports, self.tmp):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self


def configure_logging(home: Home, verbose: bool = False) -> None:
    """Log to `<home>/logs/warehouse.log`. Messages carry file names, counts and ids, never row content."""
    handler = logging.FileHandler(home.logs / "warehouse.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
