"""Secrets the warehouse creates for itself (vault encryption key, pseudonym key): random, owner-only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def create_key(path: Path) -> None:
    """A new random 256-bit secret as hex; refuses to overwrite one (that would lose or rotate a key silently)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
