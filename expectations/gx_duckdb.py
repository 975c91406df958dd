"""The one place where Great Expectations is adapted to DuckDB (GX Core 1.24.1, duckdb-engine 0.17.0, SQLAlchemy 2.1).

Why each piece is needed (tests/test_quality.py::test_gx_duckdb_adaptation fails when one stops being true):

1. Results read after close. GX runs a metric query inside `with engine.connect()` and reads the rows after
   that block has returned the connection to the pool, which rolls it back; DuckDB drops the pending result,
   so every expectation on a `duckdb:///` data source fails with `IndexError` in `resolve_metric_bundle` (GX
   issues #10738, #11579). Registering duckdb among GX's `_PERSISTED_CONNECTION_DIALECTS` avoids the close
   but, on one shared DuckDB connection, the never-ended transaction of the persisted connection makes the
   next reflection fail ("cannot start a transaction within a transaction"). So instead the engine gets a
   DuckDB connection whose begin/commit/rollback/close do nothing (`_SharedConnection`): the checks only
   read, and each statement runs in DuckDB's own auto-commit. (A native DuckDB engine for GX is only an
   open pull request.)
2. Our connection. The vault may be open once per process, with the warehouse's settings, so the engine does
   not open the file itself: its `creator` hands out the connection we opened with `warehouse.db.connect`.
   That also lets the checks use the temp macros (identifier checks) defined on that connection.
3. Search path. GX's fallback for column reflection names the table without its schema: the suites' schemas
   go on the connection's search path.
4. Regex and type expectations are not used: "Regex is not supported for dialect duckdb", and
   `expect_column_values_to_be_of_type` breaks on duckdb-engine's reflection. Pattern checks are
   `UnexpectedRowsExpectation`s calling DuckDB's `regexp_full_match` through macros instead.
5. No network, no analytics: an ephemeral (in-memory) context with analytics and progress bars off. (GX
   1.24.1 as installed here carries no analytics client at all; core/settings.py sets
   `GX_ANALYTICS_ENABLED=false` anyway at start-up, in case a later version brings one back.)
"""

from __future__ import annotations

import duckdb
import great_expectations as gx
from duckdb_engine import ConnectionWrapper
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

GX_VERSION = gx.__version__


def context():
    """An in-memory GX context: nothing written to disk, no analytics, no progress bars on the console."""
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(), analytics_enabled=False,
                               progress_bars=ProgressBarsConfig(globally=False))
    return gx.get_context(mode="ephemeral", project_config=config)


class _SharedConnection(ConnectionWrapper):
    """Our connection as GX's engine sees it: transactions and close are no-ops (see point 1 above), so a
    result stays readable after GX has "closed" its connection, and the owner alone closes the connection."""

    def begin(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def add_datasource(ctx, name: str, con: duckdb.DuckDBPyConnection, schemas: list[str],
                   wrapper: type[ConnectionWrapper] = _SharedConnection):
    """A GX SQL data source whose engine runs every query on `con` (the URL's database is never opened).

    `schemas` go on the search path: when duckdb-engine's reflection fails, GX falls back to `SELECT * FROM
    <table> LIMIT 1` without the schema to learn the columns. `wrapper`: only the adaptation test changes it."""
    con.execute(f"set search_path = '{','.join(schemas)}'")
    return ctx.data_sources.add_sql(name, connection_string="duckdb:///:memory:",
                                    kwargs={"creator": lambda: wrapper(con)})
