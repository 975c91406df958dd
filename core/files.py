"""Owner-only, atomic files: a reader (or the next run after a crash) sees the old file or the new one.

Everything the warehouse writes concerns people, so every file is created 0600 and every folder 0700. A file
is written beside its target under a temporary name, flushed to disk, renamed over the target and the folder
synced: a crash at any point leaves the old content or the new, plus at most a stray temporary file, which
`remove_strays` clears on the next run.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TEMP_MARK = ".tmp-"  # temporary names: .<name>.tmp-<random>


def private_folder(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def sync_folder(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """A name beside `path` that `remove_strays` recognises as a killed writer's leftover."""
    return path.with_name(f".{path.name}{TEMP_MARK}{secrets.token_hex(4)}")


@contextmanager
def atomic_writer(path: Path, *, binary: bool = False, replace: bool = True) -> Iterator[IO]:
    """Write `path` through a temporary file in the same folder; on success it takes the target's name.

    `replace=False`: never overwrite an existing target (a key file): FileExistsError, and the temporary file
    goes. On an exception nothing of the new content remains.
    """
    private_folder(path.parent)
    temp = temp_path(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        text = {} if binary else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, "wb" if binary else "w", **text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
        else:
            os.link(temp, path)  # fails if the target exists: no silent overwrite
            temp.unlink()
        sync_folder(path.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, *, replace: bool = True) -> Path:
    with atomic_writer(path, replace=replace) as handle:
        handle.write(text)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_writer(path, binary=True) as handle:
        handle.write(data)
    return path


def copy(source: Path, target: Path) -> Path:
    """An owner-only copy that appears whole or not at all."""
    with source.open("rb") as src, atomic_writer(target, binary=True) as handle:
        shutil.copyfileobj(src, handle, 8 << 20)
    return target


def remove_strays(folder: Path) -> int:
    """Delete the temporary files a killed writer left in `folder`; how many there were."""
    if not folder.is_dir():
        return 0
    strays = [p for p in folder.iterdir() if p.name.startswith(".") and TEMP_MARK in p.name]
    for stray in strays:
        if stray.is_dir():
            shutil.rmtree(stray, ignore_errors=True)
        else:
            stray.unlink(missing_ok=True)
    return len(strays)


def spill_folder(tmp: Path) -> Path:
    """A folder of its own under `tmp` for one DuckDB connection's spills. DuckDB names its temporary files
    alike in every instance, so two sharing a folder (a reader beside a build, our connection beside dbt's)
    would write into each other's files, and it refuses encrypted spills where another's files lie. DuckDB
    makes the folder when it first spills and removes it when the connection closes; those a killed process
    left (its pid in the name) go here."""
    for old in tmp.glob("spill-*-*"):
        pid = old.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return tmp / f"spill-{os.getpid()}-{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def empty_folder(folder: Path) -> int:
    """Remove everything inside `folder` (a scratch folder a killed run may have left full); entries removed."""
    if not folder.is_dir():
        return 0
    entries = list(folder.iterdir())
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return len(entries)
