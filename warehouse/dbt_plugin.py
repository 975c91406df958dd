"""The dbt-duckdb plugin of profiles.yml: what every connection and cursor dbt opens needs from the warehouse."""

from __future__ import annotations

import os
from pathlib import Path

from dbt.adapters.duckdb.plugins import BasePlugin

from warehouse.pseudonym import DBT_KEY_FILE_ENV, macro_sql, read_key
from warehouse.vault import ALIAS, load_crypto


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict) -> None:
        path = os.environ.get(DBT_KEY_FILE_ENV)
        if not path or not Path(path).exists():
            raise RuntimeError(f"{DBT_KEY_FILE_ENV} must name the pseudonym key file (warehouse build sets it)")
        self._macro = macro_sql(read_key(Path(path)))

    def configure_connection(self, conn) -> None:
        # Runs before the profile's `attach:`: the encrypted vault can only be written with httpfs loaded.
        load_crypto(conn)
        # profiles.yml's `threads` is how many models dbt builds at once; DuckDB's own threads are set here,
        # as for every other connection (warehouse/db.py), when the operator chose a number.
        if os.environ.get("WAREHOUSE_THREADS"):
            conn.execute(f"set threads = {int(os.environ['WAREHOUSE_THREADS'])}")

    def configure_cursor(self, cursor) -> None:
        # The secret stays in this process: never in compiled SQL, dbt's logs or the target folder.
        cursor.execute(self._macro)
        # Unqualified names (freshness queries on ingest.files) mean the vault, not the in-memory main database.
        cursor.execute(f"use {ALIAS}")
