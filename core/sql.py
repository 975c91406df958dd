"""Small SQL helpers every module shares: quoting and asking DuckDB's catalogue what exists."""

from __future__ import annotations

import duckdb


def literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def qualified(name: str) -> str:
    """`schema.table` (or `db.schema.table`) with each part quoted."""
    return ".".join(ident(part) for part in name.split("."))


def table_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """The columns of `schema.name` in the connection's current database, in order; empty if there is none."""
    schema, table = name.split(".")
    return [c for (c,) in con.execute(
        "select column_name from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ? order by column_index", [schema, table]).fetchall()]


def relation_exists(con: duckdb.DuckDBPyConnection, name: str, *, tables_only: bool = False) -> bool:
    """Whether `schema.name` exists as a table (or view) in the connection's current database."""
    schema, table = name.split(".")
    if tables_only:
        sql = ("select count(*) from duckdb_tables() where database_name = current_database() "
               "and schema_name = ? and table_name = ?")
    else:
        sql = ("select count(*) from information_schema.tables where table_catalog = current_database() "
               "and table_schema = ? and table_name = ?")
    return bool(con.execute(sql, [schema, table]).fetchone()[0])
