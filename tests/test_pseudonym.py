"""The SQL macro dbt uses must be HMAC-SHA256 exactly: Python's hmac module is the independent oracle."""

from __future__ import annotations

import secrets

import pytest

from core.db import connect
from core.keys import KeyFileError
from core.pseudonym import macro_sql, pseudonymous_key


@pytest.mark.parametrize("key_bytes", [16, 32, 64, 100])  # shorter than, equal to and longer than a block
def test_the_sql_macro_is_hmac_sha256(key_bytes):
    secret = secrets.token_bytes(key_bytes)
    con = connect()
    con.execute(macro_sql(secret))
    for value in ["C0000001", "Ääkkönen €", ""]:
        assert con.execute("select pseudonymous_key(?)", [value]).fetchone()[0] == pseudonymous_key(secret, value)
    assert con.execute("select pseudonymous_key(null)").fetchone()[0] is None


@pytest.mark.parametrize("secret", [b"", b"short"])
def test_an_empty_or_short_secret_is_refused(secret):
    """Under an empty secret anyone can recompute every key from the ids: no key is computed under it."""
    with pytest.raises(KeyFileError):
        pseudonymous_key(secret, "C0000001")
    with pytest.raises(KeyFileError):
        macro_sql(secret)
