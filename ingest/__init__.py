"""Ingest: load the operational systems' exports into the vault's raw layer, driven by `sources/`."""
