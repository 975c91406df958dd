"""The vault: raw and staging layers with personal data in clear, in an encrypted DuckDB file.

DuckDB's own encryption (AES-GCM). Writing an encrypted file needs the httpfs extension's crypto module, loaded
from its installed Python package (duckdb-extension-httpfs), never downloaded. The file is ATTACHed as
`vault` to an in-memory database: the only way to hand DuckDB the key, and the name every staging view's SQL
already uses.

The key is `WAREHOUSE_VAULT_KEY` if set, else the file named by `WAREHOUSE_VAULT_KEY_FILE`, else
`<home>/keys/vault.key` (owner-only, created with a new vault). Without it the vault does not open.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import duckdb_extension_httpfs

from warehouse.db import connect, extension_file
from warehouse.keys import create_key

KEY_ENV = "WAREHOUSE_VAULT_KEY"
KEY_FILE_ENV = "WAREHOUSE_VAULT_KEY_FILE"
ALIAS = "vault"


class VaultKeyError(RuntimeError):
    pass


def key_file(vault: Path) -> Path:
    return Path(os.environ.get(KEY_FILE_ENV) or vault.parent / "keys" / "vault.key")


def vault_key(vault: Path, *, create: bool = False) -> str:
    """The vault's key; `create` makes one (owner-only file) for a vault that does not exist yet."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV]
    path = key_file(vault)
    if not path.exists():
        if vault.exists() and _opens_without_key(vault):
            raise VaultKeyError(f"{vault} is not encrypted (it was made before the vault was): move it away and "
                                "ingest the exports again into a new, encrypted vault")
        if vault.exists() or not create:
            raise VaultKeyError(f"no key for the encrypted vault {vault}: set {KEY_ENV} or {KEY_FILE_ENV}, "
                                f"or restore {path}")
        create_key(path)
    return path.read_text().strip()


def _opens_without_key(vault: Path) -> bool:
    try:
        duckdb.connect(str(vault), read_only=True).close()
    except duckdb.Error:
        return False
    return True


def load_crypto(con: duckdb.DuckDBPyConnection) -> None:
    """httpfs brings OpenSSL; without it DuckDB can only read encrypted files."""
    con.execute(f"load '{extension_file(duckdb_extension_httpfs)}'")


def attach_sql(vault: Path, key: str, *, read_only: bool = False) -> str:
    quoted = str(vault).replace("'", "''")
    return f"attach '{quoted}' as {ALIAS} (encryption_key '{key}'{', read_only' if read_only else ''})"


def attach(con: duckdb.DuckDBPyConnection, vault: Path, *, read_only: bool = False) -> None:
    """Attach the vault to `con` as `vault` (created, with its key, if it does not exist and may be written)."""
    load_crypto(con)
    if read_only and not vault.exists():
        raise FileNotFoundError(f"no vault at {vault}: run `warehouse ingest` first")
    con.execute(attach_sql(vault, vault_key(vault, create=not read_only), read_only=read_only))


def open_vault(vault: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection whose default catalog is the vault; spills go to `<home>/tmp`, next to it, owner-only."""
    con = connect(temp_directory=vault.parent / "tmp")
    try:
        attach(con, vault, read_only=read_only)
        # What spills past the memory limit is vault data too: encrypted like the vault.
        con.execute(f"set temp_file_encryption = true; use {ALIAS}")
    except Exception:
        con.close()
        raise
    return con
