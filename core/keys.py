"""The secrets the warehouse creates for itself (the vault's key, the pseudonym secret): random, owner-only.

A key file is written whole or not at all (core/files.py: a temporary file in the same folder, fsync, a link
that never overwrites), so a crash while a key is first written leaves no key rather than an empty one. A key
file that is empty, short or not hex is refused wherever it is read: an empty HMAC secret would make every
pseudonymous key recomputable by anyone. Messages name the file, never its content.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from core import files

log = logging.getLogger(__name__)

KEY_BYTES = 32  # what we create: 256 bits
MIN_KEY_BYTES = 16  # what we accept from an operator's own file: 128 bits


class KeyFileError(RuntimeError):
    """A key is missing, empty or damaged (the message names the file and what to do)."""


def create_key(path: Path) -> bytes:
    """A new random secret, written atomically as hex; never overwrites an existing file (FileExistsError)."""
    secret = secrets.token_bytes(KEY_BYTES)
    files.private_folder(path.parent)
    files.write_text(path, secret.hex() + "\n", replace=False)
    log.info("created key file %s", path.name)
    return secret


def check_passphrase(text: str, source: str) -> str:
    """A key given as text (the vault's: DuckDB takes any string): at least as long as 128 bits of hex."""
    stripped = text.strip()
    if len(stripped) < 2 * MIN_KEY_BYTES:
        what = "empty" if not stripped else f"only {len(stripped)} characters, at least {2 * MIN_KEY_BYTES} are needed"
        raise KeyFileError(f"{source} is {what}: not a usable key (a crash while it was first written?)")
    return stripped


def parse_key(text: str, source: str) -> bytes:
    """The secret in a key file's text, or KeyFileError naming `source` (never the text)."""
    stripped = text.strip()
    try:
        secret = bytes.fromhex(stripped)
    except ValueError:
        raise KeyFileError(f"{source} is not a key (not hexadecimal): a damaged or foreign file") from None
    if len(secret) < MIN_KEY_BYTES:
        what = "empty" if not stripped else f"only {len(secret)} bytes, at least {MIN_KEY_BYTES} are needed"
        raise KeyFileError(f"{source} is {what}: not a usable key (a crash while it was first written?)")
    return secret


def read_key(path: Path) -> bytes:
    if not path.exists():
        raise KeyFileError(f"key file {path} does not exist")
    return parse_key(path.read_text(encoding="utf-8", errors="replace"), str(path))


def read_passphrase(path: Path) -> str:
    if not path.exists():
        raise KeyFileError(f"key file {path} does not exist")
    return check_passphrase(path.read_text(encoding="utf-8", errors="replace"), str(path))


def ensure_key(path: Path, *, may_create: bool, missing_hint: str = "", passphrase: bool = False) -> bytes:
    """The key in `path`, created when there is none yet and nothing has been made with one (`may_create`).

    A damaged file where nothing was made with it yet (a crash while it was first written, by a version that
    did not write keys atomically) is replaced; where something was, it is an error: the data made with it
    cannot be read or matched without it.
    """
    files.remove_strays(path.parent)  # half-written keys of a killed run are never taken for keys
    if path.exists():
        try:
            return read_passphrase(path).encode() if passphrase else read_key(path)
        except KeyFileError:
            if not may_create:
                raise
            log.warning("key file %s was damaged and nothing was made with it yet: replaced", path.name)
            path.unlink()
    elif not may_create:
        raise KeyFileError(f"key file {path} is missing{': ' + missing_hint if missing_hint else ''}")
    secret = create_key(path)
    return secret.hex().encode() if passphrase else secret
