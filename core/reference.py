"""Reference data the warehouse ships as dbt seeds (seeds/*.csv): read here by the Python side, seeded into the
vault by dbt for the models, so both read the one file."""

from __future__ import annotations

import csv
from functools import cache

from core.home import PROJECT_DIR

SEEDS = PROJECT_DIR / "seeds"


@cache
def country_codes() -> frozenset[str]:
    """Officially assigned ISO 3166-1 alpha-2 codes (seeds/iso_3166_countries.csv)."""
    with (SEEDS / "iso_3166_countries.csv").open(encoding="utf-8", newline="") as handle:
        return frozenset(row["country_code"] for row in csv.DictReader(handle))
