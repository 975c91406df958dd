"""Pseudonymous keys: HMAC-SHA256 (128 bits) of an operational identifier under a secret kept outside the repository.

The analytics database carries only these keys. They are stable across runs for as long as the secret is
kept; rotating it (replace the key file, rebuild) gives every customer a new key, which also cuts the link
to copies of analytics made before. The secret lives in the home's pseudonym key file (core/home.py).

dbt models call `pseudonymous_key(x)`, a DuckDB macro that warehouse/dbt_plugin.py defines on each dbt cursor,
so the secret never appears in compiled SQL, dbt's logs or the target folder.
"""

from __future__ import annotations

import hashlib
import hmac

from core.keys import MIN_KEY_BYTES, KeyFileError, ensure_key

BLOCK = 64  # SHA-256's block size: HMAC pads the key to it
# The key is HMAC-SHA256 truncated to its first 128 bits (RFC 2104 § 5 allows truncation to half the hash):
# no collision in practice at billions of records, and half the size in every mart and index. 32 hex digits.
KEY_HEX_DIGITS = 32


def _checked(secret: bytes) -> bytes:
    # An empty or short secret makes every key recomputable: never compute one under it.
    if len(secret) < MIN_KEY_BYTES:
        raise KeyFileError(f"a pseudonym secret of {len(secret)} bytes is refused (at least {MIN_KEY_BYTES})")
    return secret


def pseudonymous_key(secret: bytes, value: str) -> str:
    """The same computation in Python, for tests and for looking a customer up by identifier."""
    return hmac.new(_checked(secret), value.encode("utf-8"), hashlib.sha256).hexdigest()[:KEY_HEX_DIGITS]


def macro_sql(secret: bytes) -> str:
    """HMAC-SHA256 (RFC 2104) as a DuckDB macro: H((K ^ opad) || H((K ^ ipad) || message))."""
    secret = _checked(secret)
    if len(secret) > BLOCK:
        secret = hashlib.sha256(secret).digest()
    padded = secret.ljust(BLOCK, b"\0")
    inner = bytes(b ^ 0x36 for b in padded).hex()
    outer = bytes(b ^ 0x5C for b in padded).hex()
    return (
        "create or replace temp macro pseudonymous_key(x) as "
        f"case when x is null then null else left(sha256(unhex('{outer}') || "
        f"unhex(sha256(unhex('{inner}') || encode(cast(x as varchar))))), {KEY_HEX_DIGITS}) end"
    )


def load_secret(path, *, may_create: bool = False) -> bytes:
    """The pseudonym secret in `path`; created only where nothing was keyed with a secret yet (`may_create`)."""
    return ensure_key(path, may_create=may_create, missing_hint=(
        "restore it, or rotate deliberately by deleting analytics.duckdb (every pseudonymous key will change)"))
