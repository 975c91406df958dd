"""The SQL macro dbt uses must be HMAC-SHA256 exactly: Python's hmac module is the independent oracle."""

from __future__ import annotations

import secrets

import pytest

from warehouse.db import connect
from warehouse.keys import create_key
from warehouse.pseudonym import macro_sql, pseudonymous_key, read_key


@pytest.mark.parametrize("key_bytes", [16, 32, 64, 100])  # shorter than, equal to and longer than a block
def test_the_sql_macro_is_hmac_sha256(key_bytes):
    secret = secrets.token_bytes(key_bytes)
    con = connect()
    con.execute(macro_sql(secret))
    for value in ["C0000001", "Ääkkönen €", ""]:
        assert con.execute("select pseudonymous_key(?)", [value]).fetchone()[0] == pseudonymous_key(secret, value)
    assert con.execute("select pseudonymous_key(null)").fetchone()[0] is None


def test_a_key_file_is_owner_only_and_never_overwritten(tmp_path):
    path = tmp_path / "keys" / "pseudonym.key"
    create_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(read_key(path)) == 32
    with pytest.raises(FileExistsError):
        create_key(path)
