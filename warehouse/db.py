"""DuckDB connections, with extensions loaded from their installed Python packages (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import duckdb_extension_encodings


def _extension_file(package) -> Path:
    return next(Path(package.__file__).parent.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))


def connect(path: Path | str = ":memory:", *, read_only: bool = False, threads: int | None = None,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    # ISO-8859-15 (the billing system's encoding) is only readable through this extension.
    con.execute(f"load '{_extension_file(duckdb_extension_encodings)}'")
    return con
