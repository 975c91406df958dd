"""Every DuckDB connection honours the operator's limits, so large work spills to disk instead of failing."""

from __future__ import annotations

import pytest

from warehouse.db import DEFAULT_MEMORY_LIMIT, connect
from warehouse.vault import KEY_ENV, KEY_FILE_ENV, VaultKeyError, open_vault


def test_connections_take_threads_and_memory_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_THREADS", "1")
    monkeypatch.setenv("WAREHOUSE_MEMORY_LIMIT", "512MB")
    con = connect()
    threads, limit = con.execute("select current_setting('threads'), current_setting('memory_limit')").fetchone()
    con.close()
    assert threads == 1
    assert limit.endswith("MiB") and 480 <= float(limit.split()[0]) <= 512


def test_explicit_arguments_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_THREADS", "1")
    con = connect(threads=2)
    assert con.execute("select current_setting('threads')").fetchone()[0] == 2
    con.close()


def test_without_a_setting_a_connection_is_bounded_by_the_default_limit(monkeypatch, tmp_path):
    monkeypatch.delenv("WAREHOUSE_MEMORY_LIMIT", raising=False)
    con = connect(temp_directory=tmp_path / "spill")
    limit, temp = con.execute("select current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    con.close()
    assert limit.endswith("GiB") and float(limit.split()[0]) <= float(DEFAULT_MEMORY_LIMIT.rstrip("GB"))
    assert temp == str(tmp_path / "spill") and (tmp_path / "spill").stat().st_mode & 0o077 == 0


def test_a_vault_made_before_encryption_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    connect(tmp_path / "vault.duckdb").close()  # a plain DuckDB file where the vault should be
    with pytest.raises(VaultKeyError, match="is not encrypted"):
        open_vault(tmp_path / "vault.duckdb")


def test_an_encrypted_vault_without_its_key_does_not_open(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    open_vault(tmp_path / "vault.duckdb").close()  # creates the vault and its key
    (tmp_path / "keys" / "vault.key").unlink()
    with pytest.raises(VaultKeyError, match="no key for the encrypted vault"):
        open_vault(tmp_path / "vault.duckdb", read_only=True)
