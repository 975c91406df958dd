"""DuckDB connections: one place for the settings every connection of the warehouse shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from core.settings import Limits


def extension_file(package) -> Path:
    """A DuckDB extension shipped in a Python package (duckdb-extension-*): loaded from disk, never downloaded."""
    return next(Path(package.__file__).parent.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))


def connect(path: Path | str = ":memory:", *, limits: Limits | None = None, read_only: bool = False,
            temp_directory: Path | None = None, encrypt_spills: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection bounded by the run's limits (threads, memory limit: 2.5GB unless set).

    Past the memory limit DuckDB spills to `temp_directory` instead of failing, so every part of the pipeline
    (ingest, checks, reports, audit, and dbt through the same limits) stays within what the operator set.
    Extensions are never installed or loaded behind our back: the ones we use are loaded from their packages.
    """
    limits = limits or Limits()
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
              "memory_limit": limits.memory_limit}
    if limits.threads:
        config["threads"] = limits.threads
    if temp_directory:  # DuckDB makes the folder when it first spills, inside an owner-only parent
        temp_directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        config["temp_directory"] = str(temp_directory)
    if encrypt_spills:  # set as the database opens: DuckDB refuses to switch it once a temporary file exists
        config["temp_file_encryption"] = True
    return duckdb.connect(str(path), read_only=read_only, config=config)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All of the block's writes or none: committed when it ends, rolled back on any exception (and a kill -9
    before the commit leaves nothing of it either: DuckDB replays only committed transactions)."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()
