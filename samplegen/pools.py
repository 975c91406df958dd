"""Name, street and company pools drawn once from Faker; rows then sample from them with numpy.

Rows hold integer codes into one shared string table (``Strings``): DuckDB scans numpy integer columns
quickly, whereas numpy object/str columns are slow to hand over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faker import Faker

from . import catalogue


class Strings:
    """Every distinct text value used by generated rows; a row stores its index (-1 = missing)."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}

    def codes(self, values) -> np.ndarray:
        return np.array([self._index.setdefault(v, len(self._index)) for v in values], dtype=np.int32)

    def finish(self) -> np.ndarray:
        self.values = sorted(self._index, key=self._index.__getitem__)
        return np.array(self.values)


@dataclass
class Pool:
    """Codes into ``Strings`` and sampling probabilities."""

    codes: np.ndarray
    p: np.ndarray

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.codes[rng.choice(len(self.codes), size=n, p=self.p)]


def _pool(rng: np.random.Generator, strings: Strings, values: set[str], skew: float = 0.8) -> Pool:
    """Sorted for determinism, then Zipf-like popularity in a random order (a few names are common)."""
    ordered = sorted(values)
    rank = rng.permutation(len(ordered))
    return Pool(strings.codes(ordered), catalogue.weights(1.0 / (rank + 5.0) ** skew))


@dataclass
class Pools:
    strings: Strings
    first_male: Pool
    first_female: Pool
    last: Pool
    sv_first_male: Pool
    sv_first_female: Pool
    sv_last: Pool
    streets: Pool
    companies: Pool
    postal_codes: np.ndarray  # codes, parallel to postal_cities and postal_p
    postal_cities: np.ndarray
    postal_p: np.ndarray


def build_pools(seed: int, rng: np.random.Generator, size: int = 3000) -> Pools:
    """Call Faker a few thousand times per pool (never per row)."""
    fi = Faker("fi_FI")
    fi.seed_instance(seed)
    sv = Faker("sv_SE")
    sv.seed_instance(seed)
    strings = Strings()
    last = {fi.last_name() for _ in range(size)}
    words = np.array(catalogue.COMPANY_WORDS, dtype=object)
    suffixes = np.array([s for s, _ in catalogue.COMPANY_SUFFIXES], dtype=object)
    suffix_p = catalogue.weights([w for _, w in catalogue.COMPANY_SUFFIXES])
    owners = np.array(sorted(last) + catalogue.COMPANY_PLACES, dtype=object)
    n = size * 2
    company_names = (owners[rng.integers(0, len(owners), n)] + " " + words[rng.integers(0, len(words), n)]
                     + " " + suffixes[rng.choice(len(suffixes), n, p=suffix_p)])
    codes, cities, postal_p = catalogue.postal_table()
    return Pools(
        strings=strings,
        first_male=_pool(rng, strings, {fi.first_name_male() for _ in range(size)}),
        first_female=_pool(rng, strings, {fi.first_name_female() for _ in range(size)}),
        last=_pool(rng, strings, last),
        sv_first_male=_pool(rng, strings, {sv.first_name_male() for _ in range(size // 2)}),
        sv_first_female=_pool(rng, strings, {sv.first_name_female() for _ in range(size // 2)}),
        sv_last=_pool(rng, strings, {sv.last_name() for _ in range(size // 2)}),
        streets=_pool(rng, strings, {fi.street_name() for _ in range(size)}, skew=0.3),
        companies=_pool(rng, strings, set(company_names), skew=0.0),
        postal_codes=strings.codes(codes),
        postal_cities=strings.codes(cities),
        postal_p=postal_p,
    )
