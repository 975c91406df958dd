"""Kill points for crash tests: the process kills itself (SIGKILL, as a power cut or the OOM killer would) when
it reaches the armed step. Production runs arm nothing, and then a point costs one comparison.

Each write path names its steps (`faults.point("enforce.after_commit")`); a test sets the setting `crash_at`
(WAREHOUSE_CRASH_AT for a command-line run) to a step's name, or `name@N` for its N-th time, runs the command,
and checks that the next run finishes what the killed one began. `POINTS` lists them all, so a test can
cover every one.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "ingest.before_commit",  # a file's rows are in, its transaction is not committed
    "ingest.after_commit",  # one file committed, the next not started
    "migrate.before_commit",  # a snapshot entity's versions built and swapped in, the transaction not committed
    "migrate.after_commit",  # one entity migrated (committed, not yet checkpointed), the next not started
    "build.before_publish",  # analytics.next is complete, not yet renamed over analytics
    "build.after_publish",  # published, the post-build bookkeeping not yet recorded
    "enforce.after_commit",  # ledger and raw erasure committed; request lists and rebuild still to do
    "enforce.after_requests",  # the erasure request lists written; the rebuild still to do
    "erase.after_commit",  # an erasure on request committed; its answer and the rebuild still to do
    "access.after_package",  # an access package written, the request not yet logged
)

_armed: str | None = None
_count = 0
_seen: dict[str, int] = {}


def arm(spec: str | None) -> None:
    """`name` or `name@N`: die at the N-th time `name` is reached (default: the first)."""
    global _armed, _count
    if not spec:
        _armed = None
        return
    name, _, times = spec.partition("@")
    if name not in POINTS:
        raise ValueError(f"unknown kill point {name!r}; known: {', '.join(POINTS)}")
    _armed, _count = name, int(times or 1)
    _seen.clear()


def point(name: str) -> None:
    if _armed is None or name != _armed:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == _count:
        os.kill(os.getpid(), signal.SIGKILL)
