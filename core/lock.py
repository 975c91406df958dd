"""The home lock: one writing command per home at a time.

A second command waits up to its timeout, then says in one line who holds the home and since when. The lock
is an advisory `flock` on `<home>/.lock`: the kernel releases it when its holder exits, however it exits
(`kill -9` included), so a crash never leaves the home locked. The holder writes who it is into the file for
the others to read; that text is information only, the flock is the lock.

Nested calls in one process (the daily job calls build, which is also a command) take it once.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

POLL_SECONDS = 0.2


class HomeBusy(RuntimeError):
    """The home is held by another command for longer than this one may wait."""


_held: dict[Path, int] = {}  # lock file -> nesting depth in this process


def holder(lock_file: Path) -> str:
    """Who holds the home, in words: 'warehouse build (pid 1234) since 2026-12-04 20:10:03 UTC'."""
    try:
        info = json.loads(lock_file.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another command"
    return f"`warehouse {info.get('command', '?')}` (pid {info.get('pid', '?')}) since {info.get('since', '?')}"


@contextmanager
def home_lock(lock_file: Path, command: str, *, wait: float = 0,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the home for `command`; wait up to `wait` seconds for another holder, then raise HomeBusy."""
    lock_file = lock_file.resolve()
    if _held.get(lock_file):
        _held[lock_file] += 1
        try:
            yield
        finally:
            _held[lock_file] -= 1
        return
    lock_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + max(wait, 0)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HomeBusy(f"the home {lock_file.parent} is busy: {holder(lock_file)} holds it"
                                   + (f" (waited {wait:g} s)" if wait else "")) from None
                if on_wait and not told:
                    on_wait(f"waiting for the home: {holder(lock_file)} holds it")
                    told = True
                time.sleep(POLL_SECONDS)
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"command": command, "pid": os.getpid(), "since": since}).encode(), 0)
        _held[lock_file] = 1
        try:
            yield
        finally:
            _held.pop(lock_file, None)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
