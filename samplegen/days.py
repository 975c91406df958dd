"""Calendar helpers on integer day numbers (days since 1970-01-01) and epoch seconds in local time.

All timestamps are naive Europe/Helsinki wall-clock times; generated times of day avoid 03:00-04:00 so
that no timestamp falls into the spring-forward gap.
"""

from __future__ import annotations

from datetime import date

import numpy as np

DAY = 86400
NEVER = 10**7  # sentinel day (year ~29000) for "has not happened"
NEVER_TS = NEVER * DAY


def to_day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def from_day(day: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + int(day))


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month (1-12) and day of month of each day number."""
    d = days.astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    dom = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, dom


def from_ymd(year: np.ndarray, month: np.ndarray, dom: np.ndarray) -> np.ndarray:
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64) + dom - 1


def month_of(days: np.ndarray) -> np.ndarray:
    """Month number (months since 1970-01) of each day."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_start(months: np.ndarray) -> np.ndarray:
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def stamp(rng: np.random.Generator, days: np.ndarray, first_hour: int = 8, last_hour: int = 20) -> np.ndarray:
    """Epoch seconds at a random time of day between first_hour and last_hour on each day."""
    return days.astype(np.int64) * DAY + rng.integers(first_hour * 3600, last_hour * 3600, len(days))
