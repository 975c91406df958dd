"""Pseudonymous keys: HMAC-SHA256 of an operational identifier under a secret kept outside the repository.

The analytics database carries only these keys. They are stable across runs for as long as the secret is
kept; rotating it (replace the key file, rebuild) gives every customer a new key, which also cuts the link
to copies of analytics made before. The secret lives in `<home>/keys/pseudonym.key` (owner-only) unless
`WAREHOUSE_PSEUDONYM_KEY_FILE` names another file.

dbt models call `pseudonymous_key(x)`, a DuckDB macro that `PseudonymPlugin` defines on each dbt cursor,
so the secret never appears in compiled SQL, dbt's logs or the target folder.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from dbt.adapters.duckdb.plugins import BasePlugin

KEY_FILE_ENV = "WAREHOUSE_PSEUDONYM_KEY_FILE"  # set by the operator: the key lives elsewhere
# Set by warehouse/build.py for the dbt plugin, for the home being built. Kept apart from the operator's
# variable: a process that builds two homes (the tests do) must not carry the first home's key to the second.
DBT_KEY_FILE_ENV = "WAREHOUSE_DBT_PSEUDONYM_KEY_FILE"
BLOCK = 64  # SHA-256's block size: HMAC pads the key to it


def key_file(home_root: Path) -> Path:
    return Path(os.environ.get(KEY_FILE_ENV) or home_root / "keys" / "pseudonym.key")


def create_key(path: Path) -> None:
    """A new random secret, owner-only; refuses to overwrite one (that would silently rotate every key)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")


def read_key(path: Path) -> bytes:
    return bytes.fromhex(path.read_text().strip())


def pseudonymous_key(secret: bytes, value: str) -> str:
    """The same computation in Python, for tests and for looking a customer up by identifier."""
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()


def macro_sql(secret: bytes) -> str:
    """HMAC-SHA256 (RFC 2104) as a DuckDB macro: H((K ^ opad) || H((K ^ ipad) || message))."""
    if len(secret) > BLOCK:
        secret = hashlib.sha256(secret).digest()
    padded = secret.ljust(BLOCK, b"\0")
    inner = bytes(b ^ 0x36 for b in padded).hex()
    outer = bytes(b ^ 0x5C for b in padded).hex()
    return (
        "create or replace temp macro pseudonymous_key(x) as "
        f"case when x is null then null else sha256(unhex('{outer}') || "
        f"unhex(sha256(unhex('{inner}') || encode(cast(x as varchar))))) end"
    )


class Plugin(BasePlugin):
    """dbt-duckdb plugin (profiles.yml `plugins:`): defines `pseudonymous_key` on every cursor dbt opens."""

    def initialize(self, plugin_config: dict) -> None:
        path = os.environ.get(DBT_KEY_FILE_ENV)
        if not path or not Path(path).exists():
            raise RuntimeError(f"{DBT_KEY_FILE_ENV} must name the pseudonym key file (warehouse build sets it)")
        self._macro = macro_sql(read_key(Path(path)))

    def configure_cursor(self, cursor) -> None:
        cursor.execute(self._macro)
