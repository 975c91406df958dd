"""Reading a test home's encrypted vault."""

from __future__ import annotations

from warehouse.home import Home
from warehouse.vault import open_vault


def vault_rows(home: Home, sql: str, params: list | None = None) -> list[tuple]:
    con = open_vault(home.vault, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
