"""Reading a test home's encrypted vault and analytics database."""

from __future__ import annotations

from pathlib import Path

from core.db import connect
from core.home import Home
from core.keys import read_key
from core.pseudonym import macro_sql
from core.settings import Settings
from core.vault import open_vault


def settings_of(home: Home | Path | str) -> Settings:
    return Settings.for_home(home.root if isinstance(home, Home) else home)


def vault_rows(home: Home | Path | str, sql: str, params: list | dict | None = None, *,
               keyed: bool = False) -> list[tuple]:
    """Rows of a query on the vault (read-only); `keyed`: with `pseudonymous_key()` defined."""
    settings = settings_of(home)
    con = open_vault(settings, read_only=True)
    try:
        if keyed:
            con.execute(macro_sql(read_key(settings.home.pseudonym_key)))
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def analytics_rows(home: Home | Path | str, sql: str, params: list | None = None) -> list[tuple]:
    con = connect(settings_of(home).home.analytics, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def secret_of(home: Home | Path | str) -> bytes:
    return read_key(settings_of(home).home.pseudonym_key)
