"""The vault: raw and staging layers with personal data in clear, in an encrypted DuckDB file.

DuckDB's own encryption (AES-GCM). Writing an encrypted file needs the httpfs extension's crypto module, loaded
from its installed Python package (duckdb-extension-httpfs), never downloaded. The file is ATTACHed as
`vault` to an in-memory database: the only way to hand DuckDB the key, and the name every staging view's SQL
already uses. What spills past the memory limit is vault data too, so spill files are encrypted as well.

The key is the setting `vault_key` if given, else the home's vault key file (created, owner-only, with a new
vault). Without it the vault does not open; no message ever carries the key.
"""

from __future__ import annotations

import duckdb
import duckdb_extension_httpfs

from core import files
from core.db import connect, extension_file
from core.keys import KeyFileError, check_passphrase, ensure_key
from core.settings import Settings
from core.sql import literal

ALIAS = "vault"


class VaultError(RuntimeError):
    pass


def vault_key(settings: Settings, *, create: bool = False) -> str:
    """The vault's key; `create` makes one (owner-only file) for a vault that does not exist yet."""
    home = settings.home
    if settings.vault_key:
        return check_passphrase(settings.vault_key, "the vault key given in WAREHOUSE_VAULT_KEY")
    if not home.vault_key.exists() and home.vault.exists():
        if _opens_without_key(home):
            raise VaultError(f"{home.vault} is not encrypted (it was made before the vault was): move it away and "
                             "ingest the exports again into a new, encrypted vault")
        raise VaultError(f"no key for the encrypted vault {home.vault}: set WAREHOUSE_VAULT_KEY or "
                         f"WAREHOUSE_VAULT_KEY_FILE, or restore {home.vault_key}")
    if not home.vault.exists() and not create:
        raise VaultError(f"no vault at {home.vault}: run `warehouse ingest` first")
    try:
        # A key may be (re)created only while no vault was encrypted with it.
        return ensure_key(home.vault_key, may_create=create and not home.vault.exists(), passphrase=True).decode()
    except KeyFileError as exc:
        raise VaultError(str(exc)) from None


def _opens_without_key(home) -> bool:
    try:
        duckdb.connect(str(home.vault), read_only=True).close()
    except duckdb.Error:
        return False
    return True


def load_crypto(con: duckdb.DuckDBPyConnection) -> None:
    """httpfs brings OpenSSL; without it DuckDB can only read encrypted files."""
    con.execute(f"load {literal(extension_file(duckdb_extension_httpfs))}")


def attach_sql(path, key: str, *, alias: str = ALIAS, read_only: bool = False) -> str:
    return (f"attach {literal(path)} as {alias} (encryption_key {literal(key)}"
            f"{', read_only' if read_only else ''})")


def attach(con: duckdb.DuckDBPyConnection, settings: Settings, *, read_only: bool = False) -> None:
    """Attach the vault to `con` as `vault` (created, with its key, if it does not exist and may be written)."""
    load_crypto(con)
    key = vault_key(settings, create=not read_only)
    try:
        con.execute(attach_sql(settings.home.vault, key, read_only=read_only))
    except duckdb.Error as exc:
        # DuckDB may quote the statement, and with it the key: say what failed, not what was sent.
        message = str(exc).replace(key, "…").replace(key.replace("'", "''"), "…").splitlines()[0]
        raise VaultError(f"the vault {settings.home.vault} did not open: {message}") from None


def open_vault(settings: Settings, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection whose default catalog is the vault; spills go to the home's tmp folder, encrypted."""
    con = connect(limits=settings.limits, temp_directory=files.spill_folder(settings.home.tmp), encrypt_spills=True)
    try:
        attach(con, settings, read_only=read_only)
        con.execute(f"use {ALIAS}")
    except BaseException:
        con.close()
        raise
    return con
