"""The log of data subjects' requests (access, erasure, objection, look-up) in the vault's privacy.access_requests.

Every request is logged, answered or not, with the identifier's type, who verified the requester's identity
and the customers' pseudonymous keys: never the identifier itself, never the answer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from core.render import LOCAL_TZ
from core.settings import Settings
from core.vault import open_vault

PREFIXES = {"access": "SAR", "erasure": "ERA", "objection": "OBJ", "lookup": "LKP"}


def request_id(kind: str, at: datetime) -> str:
    """`SAR-20261204-101500-a1b2c3`: the kind, the local time, a random suffix."""
    return f"{PREFIXES[kind]}-{at.astimezone(LOCAL_TZ):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Request:
    """A data subject's request as the log keeps it."""
    request_id: str
    requested_at: datetime
    identifier_type: str
    verified_by: str
    request_ref: str | None

    def log(self, con: duckdb.DuckDBPyConnection, keys: list[str], outcome: str, datasets: int = 0,
            rows: int = 0) -> None:
        """One row in privacy.access_requests, on `con` (inside the caller's transaction, if any)."""
        con.execute("insert into privacy.access_requests values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [self.request_id, self.requested_at, self.identifier_type, self.verified_by.strip(),
                     self.request_ref, keys[0] if keys else None, keys or None, bool(keys), outcome, datasets, rows])


def new_request(kind: str, identifier_type: str, verified_by: str, request_ref: str | None,
                now: datetime | None = None) -> Request:
    if not (verified_by or "").strip():
        raise ValueError("name who verified the requester's identity (--verified-by)")
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return Request(request_id(kind, at), at, identifier_type, verified_by, request_ref)


def log_request(settings: Settings, request_id: str, requested_at: datetime, identifier_type: str,
                verified_by: str, request_ref: str | None, keys: list[str], outcome: str, datasets: int = 0,
                rows: int = 0) -> None:
    """One row in privacy.access_requests: the request, never the identifier or the answer."""
    con = open_vault(settings)
    try:
        Request(request_id, requested_at, identifier_type, verified_by, request_ref).log(con, keys, outcome,
                                                                                         datasets, rows)
    finally:
        con.close()
