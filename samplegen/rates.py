"""How fast the sample changes from one daily export to the next: every rate in one place.

The first export shows the whole history up to its date. Each later day brings that day's changes:

- the service lifecycle goes on as in the history (new customers and services, churn, up/downgrades,
  cut-offs for non-payment, data-centre keys signed out and returned), at the monthly rates below; new
  customers follow the growth curve of people.py (a year of days ending at 10,000 customers sees about
  2,000 join, a company growing ~25 % a year);
- customer records change at the monthly rates of `Rates`, a 30.4th of them each day (moves, new phone
  numbers and e-mail addresses, marketing consent), and a few ex-customers are erased at the source.

The figures are for a regional Finnish ISP of mostly households (see catalogue.PRODUCTS) and are meant to
be plausible, not measured: each says what it is based on.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

DAYS_PER_MONTH = 365.25 / 12

# --- service lifecycle (lifecycle.py) ----------------------------------------------------------------------
# Monthly churn hazard of a service in its first year and after it, by category (assumed). Broadband churns
# most in its first year, 2.5 % a month (~26 % a year: campaign prices end, customers move house), then
# 1.1 % a month (~12 % a year); colocation and transit are on longer business contracts and churn least.
CHURN = {
    "broadband": (0.025, 0.011),
    "colocation": (0.008, 0.004),
    "ip_transit": (0.012, 0.006),
    "vps": (0.030, 0.013),
    "email": (0.015, 0.008),
    "domain": (0.012, 0.007),
}
# Share of broadband terminations that are an up- or downgrade: the old product ends ('other') and the new
# one opens the same day.
SWITCH_SHARE = 0.2


# --- customer records (changes.py) -------------------------------------------------------------------------
@dataclass(frozen=True)
class Rates:
    """Chance per customer and month that a customer record changes in each way (a daily export sees
    1/30.4 of it per day). `scaled` multiplies them all, for tests that want many changes in a small sample."""

    # Statistics Finland counts about 300,000 moves between municipalities a year (298,000 in 2020) and
    # about twice as many within a municipality: some 15 % of the population moves each year. Customers with
    # a fixed connection are older and more settled than the average mover (students and young adults move
    # most), and many moves end the broadband contract instead (termination reason 'moved'): 1 % a month.
    move_person: float = 0.010
    # Companies move premises far less often than people move house: about 4 % a year.
    move_business: float = 0.003
    # A new phone number: numbers are ported when the operator changes, so a new number is rare (a new
    # contact person, a landline given up): about 3.5 % a year.
    phone: float = 0.003
    # A new e-mail address: an old mailbox (often an ISP's own) given up for a free one, or a new contact
    # person at a company: about 5 % a year.
    email: float = 0.004
    # Marketing consent given or withdrawn (self-service, an unsubscribe link): about 6 % a year.
    consent: float = 0.005
    # Erased at the source (an erasure request, a clean-up of records past their retention): only ex-customers
    # with no service for a year and no debt qualify. 0.05 % of all customers a month; at least one (per block of
    # customers) in a run of two or more days, so that every sample has a row deleted at the source.
    deletion: float = 0.0005

    def scaled(self, factor: float) -> Rates:
        if factor < 0:
            raise ValueError("a change rate cannot be negative")
        return replace(self, **{f.name: getattr(self, f.name) * factor for f in fields(self)})

    def per_day(self, name: str) -> float:
        """Chance per customer and day (capped below 1: a change a day at most)."""
        return min(getattr(self, name) / DAYS_PER_MONTH, 0.5)


RATES = Rates()
