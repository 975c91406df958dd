"""Logging: the diagnostic log and the run log, both in `<home>/logs`, both rotated.

- `warehouse.log`: our own modules' messages (file names, counts, ids: never the content of a row), and only
  errors from third-party libraries (GX and fontTools would otherwise fill it with chatter). Control
  characters in a message are escaped, so a newline in a file name cannot forge a log line.
- `runs.jsonl`: one JSON object per command run, with its result, counts, alerts and duration: the file a
  scheduler's operator watches (retention/SCHEDULING.md).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUR_PACKAGES = ("core", "warehouse", "ingest", "expectations", "reports", "retention", "privacy", "metrics",
                "samplegen")
LOG_BYTES = 10 << 20  # rotate warehouse.log at 10 MiB, keep 5
RUN_LOG_BYTES = 5 << 20  # rotate runs.jsonl at 5 MiB, keep 5
KEEP = 5
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def escape_controls(text: str) -> str:
    """`\\n` for a newline, `\\x1b` for an escape: one log record stays one line, whatever a name holds."""
    return _CONTROL.sub(lambda m: {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(m.group(), f"\\x{ord(m.group()):02x}"),
                        text)


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


class _OursOrErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".")[0] in OUR_PACKAGES or record.levelno >= logging.ERROR


def configure_logging(logs: Path, verbose: bool = False) -> None:
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(logs / "warehouse.log", maxBytes=LOG_BYTES, backupCount=KEEP,
                                                   encoding="utf-8")
    handler.setFormatter(_OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_OursOrErrors())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("great_expectations", "fontTools", "weasyprint", "matplotlib", "dbt", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _rotate(path: Path) -> None:
    for n in range(KEEP - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{n + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))


def record_run(run_log: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line (a single write: lines of concurrent readers' commands never interleave)."""
    run_log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if run_log.exists() and run_log.stat().st_size > RUN_LOG_BYTES:
        _rotate(run_log)
    line = json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"), **entry}, ensure_ascii=False,
                      default=str) + "\n"
    fd = os.open(run_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
