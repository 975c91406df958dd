"""Key files under crashes: written whole or not at all, never taken for keys when empty or damaged.

Crashes are injected with strace: the process that creates a key is killed (SIGKILL) at the first `write`,
`fsync` or `link` system call of the key's creation, as a power cut or the OOM killer would kill it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli, copy_home

from core.keys import KEY_BYTES, KeyFileError, create_key, ensure_key, read_key
from core.settings import Settings
from core.vault import VaultError, open_vault

STRACE = shutil.which("strace")
needs_strace = pytest.mark.skipif(STRACE is None, reason="strace is not installed")


def test_a_key_file_is_owner_only_and_never_overwritten(tmp_path):
    path = tmp_path / "keys" / "pseudonym.key"
    create_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(read_key(path)) == KEY_BYTES
    with pytest.raises(FileExistsError):
        create_key(path)
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temporary file left


def _create_killed_at(syscall: str, path: Path) -> subprocess.CompletedProcess:
    # In a process that only creates the key, its first write/fsync/link is the key's.
    code = f"from pathlib import Path; from core.keys import create_key; create_key(Path({str(path)!r}))"
    return subprocess.run([STRACE, "-f", "-o", "/dev/null", "-e", f"trace={syscall}",
                           "-e", f"inject={syscall}:signal=KILL:when=1", sys.executable, "-c", code],
                          capture_output=True, text=True)


@needs_strace
@pytest.mark.parametrize("syscall", ["write", "fsync", "link"])
def test_a_crash_while_a_key_is_written_leaves_no_key_and_the_next_run_makes_a_whole_one(tmp_path, syscall):
    path = tmp_path / "keys" / "pseudonym.key"
    killed = _create_killed_at(syscall, path)
    assert killed.returncode != 0, killed.stderr  # it was killed
    assert not path.exists()  # no empty or half-written key under the key's name
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".pseudonym.key.tmp-")]  # a stray only
    secret = ensure_key(path, may_create=True)
    assert len(secret) == KEY_BYTES and read_key(path) == secret
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # the stray is gone


@pytest.mark.parametrize("content", ["", "\n", "abcd\n", "not hex at all, but long enough to pass a length check"])
def test_a_damaged_key_is_refused_where_something_was_made_with_it_and_replaced_where_not(tmp_path, content):
    path = tmp_path / "keys" / "pseudonym.key"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(KeyFileError, match=r"pseudonym\.key") as refused:
        ensure_key(path, may_create=False)
    assert content.strip() == "" or content.strip() not in str(refused.value)  # the content is never echoed
    assert len(ensure_key(path, may_create=True)) == KEY_BYTES  # nothing was keyed with it: a new key


def test_an_empty_pseudonym_key_left_by_a_crash_is_never_used_for_a_build(demo, tmp_path):
    """What the old key writer left after a kill -9 at its first write: an empty file. With analytics already
    built, the build refuses it (naming the file) rather than publish keys anyone could recompute."""
    home = copy_home(demo.home, tmp_path / "home")
    home.pseudonym_key.write_text("")
    published = home.analytics.read_bytes()
    result = cli(home, "build")
    assert result.exit_code == 3, result.output
    assert "pseudonym.key" in result.output and "empty" in result.output
    assert home.analytics.read_bytes() == published and len(result.output.splitlines()) <= 3  # no traceback


def test_a_vault_key_left_empty_by_a_crash_is_replaced_before_the_vault_exists_and_refused_after(tmp_path):
    settings = Settings.for_home(tmp_path / "home")
    settings.home.create()
    settings.home.vault_key.write_text("")  # the old writer's crash, before the vault was made
    open_vault(settings).close()  # makes the vault with a new, whole key
    key = settings.home.vault_key.read_text().strip()
    assert len(key) == 2 * KEY_BYTES
    open_vault(settings, read_only=True).close()
    settings.home.vault_key.write_text("")
    with pytest.raises(VaultError, match=r"vault\.key is empty"):
        open_vault(settings, read_only=True)
