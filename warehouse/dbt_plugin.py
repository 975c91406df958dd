"""The dbt-duckdb plugin of profiles.yml: what every connection and cursor dbt opens needs from the warehouse.

It attaches the encrypted vault itself, with the key read from the vault's key file (or handed over in this
process by warehouse/dbt.py when the operator gave the key itself), and defines `pseudonymous_key()` from the
pseudonym key file: neither secret is ever a dbt var, so neither reaches dbt's logs or target folder. For a dbt
command that only reads (`warehouse dbt -- show`), warehouse/dbt.py asks it to attach the vault and the
analytics database read-only, which dbt-duckdb's `attach:` cannot be told per command.
"""

from __future__ import annotations

from pathlib import Path

from dbt.adapters.duckdb.plugins import BasePlugin

from core.keys import read_key, read_passphrase
from core.pseudonym import macro_sql
from core.sql import literal
from core.vault import ALIAS, attach_sql, load_crypto

# vault path -> its key, for a key the operator gave as a value (WAREHOUSE_VAULT_KEY): set by warehouse/dbt.py
# for the duration of one dbt call in this process.
GIVEN_KEYS: dict[str, str] = {}
# vault path -> the analytics file to attach read-only as `analytics` (`:memory:` when none is published yet), with
# the vault read-only too: set by warehouse/dbt.py for the duration of a dbt call that only reads.
READ_ONLY: dict[str, str] = {}
ANALYTICS_ALIAS = "analytics"  # profiles.yml's alias of the analytics database


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict) -> None:
        self._vault = str(plugin_config["vault_path"])
        self._key = GIVEN_KEYS.get(self._vault) or read_passphrase(Path(plugin_config["vault_key_file"]))
        self._macro = macro_sql(read_key(Path(plugin_config["pseudonym_key_file"])))
        self._threads = int(plugin_config.get("duckdb_threads") or 0)
        self._analytics_read_only = READ_ONLY.get(self._vault)

    def configure_connection(self, conn) -> None:
        # Before the profile's `attach:` list, whose vault entry (without a key) is then a no-op.
        load_crypto(conn)
        read_only = self._analytics_read_only is not None
        conn.execute(attach_sql(self._vault, self._key, read_only=read_only)
                     .replace("attach ", "attach if not exists ", 1))
        if read_only:  # before the profile's entry, which is then a no-op too
            memory = self._analytics_read_only == ":memory:"
            conn.execute(f"attach if not exists {literal(self._analytics_read_only)} as {ANALYTICS_ALIAS}"
                         + ("" if memory else " (read_only)"))
        # profiles.yml's `threads` is how many models dbt builds at once; DuckDB's own threads are set here,
        # as for every other connection (core/db.py), when the operator chose a number.
        if self._threads:
            conn.execute(f"set threads = {self._threads}")

    def configure_cursor(self, cursor) -> None:
        # The secret stays in this process: never in compiled SQL, dbt's logs or the target folder.
        cursor.execute(self._macro)
        # Unqualified names (freshness queries on ingest.files) mean the vault, not the in-memory main database.
        cursor.execute(f"use {ALIAS}")
