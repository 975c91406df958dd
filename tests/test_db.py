"""Every DuckDB connection honours the run's limits, and the vault opens only with its key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.db import connect
from core.settings import DEFAULT_MEMORY_LIMIT, Limits, Settings, SettingsError
from core.vault import VaultError, open_vault


def test_connections_take_threads_and_memory_limit_from_the_settings():
    settings = Settings.from_environment(environ={"WAREHOUSE_THREADS": "1", "WAREHOUSE_MEMORY_LIMIT": "512MB"})
    con = connect(limits=settings.limits)
    threads, limit = con.execute("select current_setting('threads'), current_setting('memory_limit')").fetchone()
    con.close()
    assert threads == 1
    assert limit.endswith("MiB") and 480 <= float(limit.split()[0]) <= 512


def test_command_line_values_win_over_the_environment():
    settings = Settings.from_environment(threads=2, environ={"WAREHOUSE_THREADS": "1"})
    assert settings.limits.threads == 2
    with pytest.raises(SettingsError, match="WAREHOUSE_THREADS"):
        Settings.from_environment(environ={"WAREHOUSE_THREADS": "many"})


def test_without_a_setting_a_connection_is_bounded_by_the_default_limit(tmp_path):
    con = connect(limits=Limits(), temp_directory=tmp_path / "tmp" / "spill")
    limit, temp = con.execute("select current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    con.close()
    assert limit.endswith("GiB") and float(limit.split()[0]) <= float(DEFAULT_MEMORY_LIMIT.rstrip("GB"))
    assert temp == str(tmp_path / "tmp" / "spill") and (tmp_path / "tmp").stat().st_mode & 0o077 == 0


def test_the_vault_spills_encrypted_into_a_folder_of_its_own(tmp_path):
    """Another DuckDB instance's temporary file in the home's tmp (dbt's, after a build that spilled) once made
    every later open of the vault in that process fail; a killed process's spill folder goes at the next open."""
    settings = Settings.for_home(tmp_path)
    settings.home.create()
    open_vault(settings).close()
    (settings.home.tmp / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"another instance's blocks")
    left = settings.home.tmp / f"spill-{_ended_pid()}-0badcafe"  # a process that has ended
    left.mkdir()
    (left / "duckdb_temp_block-1.block").write_bytes(b"x")
    con = open_vault(settings)
    try:
        encrypted, folder = con.execute("select current_setting('temp_file_encryption'), "
                                        "current_setting('temp_directory')").fetchone()
    finally:
        con.close()
    assert encrypted is True
    assert Path(folder).parent == settings.home.tmp and Path(folder).name.startswith(f"spill-{os.getpid()}-")
    assert not left.exists()
    assert (settings.home.tmp / "duckdb_temp_storage_DEFAULT-0.tmp").exists()  # not ours: left alone


def _ended_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_vault_made_before_encryption_is_named_as_such(tmp_path):
    settings = Settings.for_home(tmp_path)
    connect(settings.home.vault).close()  # a plain DuckDB file where the vault should be
    with pytest.raises(VaultError, match="is not encrypted"):
        open_vault(settings)


def test_an_encrypted_vault_without_its_key_does_not_open(tmp_path):
    settings = Settings.for_home(tmp_path)
    open_vault(settings).close()  # creates the vault and its key
    settings.home.vault_key.unlink()
    with pytest.raises(VaultError, match="no key for the encrypted vault"):
        open_vault(settings, read_only=True)


def test_a_key_given_as_a_value_is_never_echoed(tmp_path):
    """A key with a quote in it used to break the ATTACH statement, and DuckDB's error quoted the key."""
    key = "it's-a-passphrase-of-32-chars-or-more!"
    settings = Settings.for_home(tmp_path, vault_key=key)
    open_vault(settings).close()
    con = open_vault(settings, read_only=True)  # the quote is quoted: it opens again with the same key
    con.close()
    with pytest.raises(VaultError) as wrong:
        open_vault(Settings.for_home(tmp_path, vault_key=key.replace("it's", "its")), read_only=True)
    assert key not in str(wrong.value) and key.replace("it's", "its") not in str(wrong.value)
    assert "vault_key" not in repr(settings) or key not in repr(settings)
