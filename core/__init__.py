"""The floor of the warehouse: what every feature package may use, and nothing above it.

Home and paths, settings, DuckDB connections, the encrypted vault, keys and pseudonyms, SQL helpers, the
schema of the warehouse's own vault tables, atomic owner-only files, rendering and fi/en formatting, the
home lock and the run log. Nothing here imports a feature package (ingest, expectations, reports, retention,
privacy) or the application (`warehouse`).
"""
