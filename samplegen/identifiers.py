"""Finnish identifiers: henkilötunnus (HETU), Y-tunnus and bank reference numbers.

Scalar functions are used for the few values built in Python (defects, tests); the ``*_array``
variants compute whole columns with numpy.
"""

from __future__ import annotations

import numpy as np

HETU_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
# Century signs in use since 2023 (the Population Information Act amendment added Y-U and B-F).
CENTURY_SIGNS = {1800: "+", 1900: "-YXWVU", 2000: "ABCDEF"}
SIGNS = "".join(CENTURY_SIGNS.values())  # a person's sign is stored as an index into this: 0, 1-6, 7-12
YTUNNUS_WEIGHTS = (7, 9, 10, 5, 8, 4, 2)


def hetu_check_char(ddmmyy: str, individual: str) -> str:
    """Check character of a HETU from its date part and three-digit individual number."""
    return HETU_CHECK_CHARS[int(ddmmyy + individual) % 31]


def hetu_check_index_array(ddmmyy: np.ndarray, individual: np.ndarray) -> np.ndarray:
    """Index into HETU_CHECK_CHARS for each (DDMMYY as int, individual number) pair."""
    return ((ddmmyy.astype(np.int64) * 1000 + individual) % 31).astype(np.int8)


def ytunnus_check_digit(base: int) -> int | None:
    """Check digit of a 7-digit Y-tunnus base, or None when the number is never issued (remainder 1)."""
    digits = f"{base:07d}"
    remainder = sum(int(d) * w for d, w in zip(digits, YTUNNUS_WEIGHTS, strict=True)) % 11
    if remainder == 1:
        return None
    return 0 if remainder == 0 else 11 - remainder


def ytunnus_check_array(bases: np.ndarray) -> np.ndarray:
    """Check digits for an array of 7-digit bases; -1 where the base is not issued."""
    total = np.zeros(len(bases), dtype=np.int64)
    rest = bases.astype(np.int64)
    for weight in reversed(YTUNNUS_WEIGHTS):
        total += (rest % 10) * weight
        rest //= 10
    remainder = total % 11
    return np.where(remainder == 1, -1, np.where(remainder == 0, 0, 11 - remainder)).astype(np.int8)


def reference_check_digit(base: str) -> int:
    """7-3-1 check digit of a Finnish reference number, weights applied from the right."""
    total = sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(reversed(base)))
    return (10 - total % 10) % 10


def reference_check_array(bases: np.ndarray) -> np.ndarray:
    """7-3-1 check digits for an array of positive integer bases."""
    total = np.zeros(len(bases), dtype=np.int64)
    rest = bases.astype(np.int64)
    i = 0
    while rest.any():
        total += (rest % 10) * (7, 3, 1)[i % 3]
        rest //= 10
        i += 1
    return ((10 - total % 10) % 10).astype(np.int8)
