"""DuckDB connections: one place for the settings every connection of the warehouse shares."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb


def extension_file(package) -> Path:
    """A DuckDB extension shipped in a Python package (duckdb-extension-*): loaded from disk, never downloaded."""
    return next(Path(package.__file__).parent.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))


# Per DuckDB database; past it DuckDB spills to disk. Python, dbt and GX around it took 1.4 GB more in the
# 1,000,000-customer build, so that a process of the warehouse stays under 4 GB resident. profiles.yml carries
# the same default for dbt.
DEFAULT_MEMORY_LIMIT = "2.5GB"


def connect(path: Path | str = ":memory:", *, read_only: bool = False, threads: int | None = None,
            memory_limit: str | None = None, temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection; threads and memory limit default to WAREHOUSE_THREADS / WAREHOUSE_MEMORY_LIMIT (2.5GB).

    Past the memory limit DuckDB spills to disk instead of failing, so every part of the pipeline (ingest,
    checks, reports, audit, and dbt through profiles.yml) stays within what the operator set.
    """
    threads = threads or int(os.environ.get("WAREHOUSE_THREADS") or 0) or None
    memory_limit = memory_limit or os.environ.get("WAREHOUSE_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if threads:
        config["threads"] = threads
    config["memory_limit"] = memory_limit
    if temp_directory:
        temp_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        config["temp_directory"] = str(temp_directory)
    return duckdb.connect(str(path), read_only=read_only, config=config)
