"""The retention policy: load `retention/policy.yml`, validate it, and hand its rules to dbt.

The YAML file is the one source of truth. dbt reads it at build time through two Python models,
`int_retention__rules` (one row per rule) and `int_retention__legal_holds` (the configured disputes), which
call `rules_rows` and `dispute_rows` below; `int_retention__records` joins every record of the warehouse to
its rule. An invalid policy fails the build with a message naming the problem, so a typo never silently
disables a rule.

Which file: the setting `retention_policy` (core/settings.py), which dbt receives as the var `retention_policy`.

Date arithmetic (the same in SQL and in `expires_on` below): a period is an ISO 8601 duration of years,
months and days; it is added to the clock's start as calendar periods, years and months first. A start on a
day the end month lacks ends on that month's last day (29.2.2024 + P3Y = 28.2.2027), which is how the Act
on the calculation of statutory time limits (150/1930) § 4 counts. `expires_on` is the last day of the
retention period: the record may be kept through it and is overdue from the next day.
"""

from __future__ import annotations

import calendar
import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from core.settings import DEFAULT_RETENTION_POLICY

DEFAULT_POLICY = DEFAULT_RETENTION_POLICY

# The categories the models know how to find records for, and the clock events each may use. A category
# missing from the policy, or an event the models cannot compute for it, is a policy error. What each event
# is (models/intermediate/int_retention__expiries.sql); none but the financial year's end, a date known in
# advance, happens while what it ends still goes on:
# - relationship_ended: no service active on the audit date, no debt open (invoice `open`/`in_collection`,
#   collection case open), no data-centre key out, no ticket open; then the latest of the last service's end,
#   last payment, last case closed, last key returned, last ticket closed (the customer record's creation
#   only for a customer with none of these);
# - service_terminated: the service's own end, once it has ended on the audit date;
# - financial_year_ended: the end of the calendar year in which the voucher's financial year ended, fixed by
#   the voucher date (the Accounting Act's clock: it may lie ahead, and the customer relationship does not
#   move it);
# - case_closed, ticket_closed, key_returned: the case closed, the ticket closed (day in Helsinki), the key
#   returned (or its handover gone from the services snapshot);
# - superseded: the day a version of a customer, service or key handover was superseded (its `_valid_to`: the
#   export date of the first snapshot that listed the record differently, or not at all); the current version,
#   and the last one of a record deleted at the source, are not superseded.
CLOCK_EVENTS: dict[str, tuple[str, ...]] = {
    "identity_and_contact": ("relationship_ended",),
    "customer_relationship": ("relationship_ended", "service_terminated"),
    "accounting_vouchers": ("financial_year_ended",),
    "debt_collection": ("case_closed",),
    "customer_service_communication": ("ticket_closed",),
    "key_handovers": ("key_returned",),
    "superseded_values": ("superseded",),
}
CATEGORIES = tuple(CLOCK_EVENTS)
STATUSES = ("kept", "due_soon", "overdue", "on_hold")

_DURATION = re.compile(r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?$")
_CUSTOMER_ID = re.compile(r"^C\d{7}$")


class PolicyError(ValueError):
    """The policy file is missing, unreadable or does not say what the models need."""


@dataclass(frozen=True)
class Period:
    years: int = 0
    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _DURATION.match(str(text).strip().upper())
        if not match or not any(match.groupdict().values()):
            raise PolicyError(f"period {text!r} is not an ISO 8601 duration of years, months, days (e.g. P3Y)")
        period = cls(**{k: int(v or 0) for k, v in match.groupdict().items()})
        if period == cls():
            raise PolicyError(f"period {text!r} is zero")
        return period

    def __str__(self) -> str:
        return "P" + "".join(f"{n}{u}" for n, u in ((self.years, "Y"), (self.months, "M"), (self.days, "D")) if n)

    def add_to(self, start: date) -> date:
        """start + period: calendar years and months first (clamped to the month's end), then days."""
        months = start.month - 1 + self.months + 12 * self.years
        year, month = start.year + months // 12, months % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return date(year, month, day) + timedelta(days=self.days)


@dataclass(frozen=True)
class Coverage:
    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    description: str
    covers: tuple[Coverage, ...]
    clock_starts: str
    period: Period
    legal_basis: str
    notice_section: str = ""


@dataclass(frozen=True)
class Dispute:
    customer_id: str
    reason: str
    since: date | None = None


@dataclass(frozen=True)
class Policy:
    version: str
    effective_from: date
    financial_year_end: tuple[int, int]  # (month, day)
    due_soon_days: int
    rules: tuple[Rule, ...]
    hold_on_open_collection_case: bool
    holds_legal_basis: str
    disputes: tuple[Dispute, ...] = field(default=())
    source: Path | None = None
    # How long an answer to a data subject's request (an access package: personal data, in the home) is kept
    # after it was made; None: the policy does not say (then they are kept until the person is erased).
    answers_period: Period | None = None
    answers_legal_basis: str = ""

    def rule(self, category: str) -> Rule:
        return next(r for r in self.rules if r.category == category)

    def financial_year_ended_on(self, voucher_date: date) -> date:
        """Last day of the financial year that contains voucher_date."""
        month, day = self.financial_year_end
        end = date(voucher_date.year, month, _clamp_day(voucher_date.year, month, day))
        if voucher_date > end:
            end = date(voucher_date.year + 1, month, _clamp_day(voucher_date.year + 1, month, day))
        return end

    def expires_on(self, category: str, event_on: date) -> date:
        """Expiry of a record whose clock event happened on event_on (the same rule the dbt models apply).

        For accounting vouchers event_on is the voucher date: the clock starts at the end of the calendar
        year in which the voucher's financial year ended.
        """
        rule = self.rule(category)
        start = event_on
        if rule.clock_starts == "financial_year_ended":
            start = date(self.financial_year_ended_on(event_on).year, 12, 31)
        return rule.period.add_to(start)


def load_policy(path: str | os.PathLike | None = None) -> Policy:
    """Read and validate the policy file (the setting `retention_policy`; default retention/policy.yml)."""
    source = Path(path or DEFAULT_POLICY)
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"retention policy {source}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"retention policy {source} is not valid YAML: {exc}") from exc
    try:
        return parse_policy(document, source)
    except PolicyError as exc:
        raise PolicyError(f"retention policy {source}: {exc}") from exc


def parse_policy(document: Any, source: Path | None = None) -> Policy:
    if not isinstance(document, dict):
        raise PolicyError("the file must be a mapping with version, effective_from, rules")
    version = _required(document, "version")
    if not isinstance(version, str | int | float) or not str(version).strip():
        raise PolicyError("version must be a non-empty string")
    effective_from = _date(_required(document, "effective_from"), "effective_from")
    fy_end = _month_day(document.get("financial_year_end", "12-31"))
    due_soon_days = document.get("due_soon_days", 30)
    if not isinstance(due_soon_days, int) or isinstance(due_soon_days, bool) or due_soon_days < 0:
        raise PolicyError(f"due_soon_days must be a whole number of days >= 0, got {due_soon_days!r}")

    raw_rules = _required(document, "rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise PolicyError("rules must be a non-empty list")
    rules = tuple(_rule(raw, n) for n, raw in enumerate(raw_rules, start=1))
    for attribute in ("id", "category"):
        seen: set[str] = set()
        for rule in rules:
            value = getattr(rule, attribute)
            if value in seen:
                raise PolicyError(f"two rules have the {attribute} {value!r}: one rule per {attribute}")
            seen.add(value)
    missing = [c for c in CATEGORIES if c not in {r.category for r in rules}]
    if missing:
        raise PolicyError(f"no rule for the data categor{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}")

    holds = document.get("legal_holds") or {}
    if not isinstance(holds, dict):
        raise PolicyError("legal_holds must be a mapping")
    disputes = tuple(_dispute(raw, n) for n, raw in enumerate(holds.get("disputes") or [], start=1))
    answers = document.get("request_answers") or {}
    if not isinstance(answers, dict):
        raise PolicyError("request_answers must be a mapping with period and legal_basis")
    return Policy(version=str(version).strip(), effective_from=effective_from, financial_year_end=fy_end,
                  due_soon_days=due_soon_days, rules=rules,
                  hold_on_open_collection_case=bool(holds.get("open_collection_case", True)),
                  holds_legal_basis=str(holds.get("legal_basis") or "").strip(), disputes=disputes, source=source,
                  answers_period=Period.parse(answers["period"]) if answers.get("period") else None,
                  answers_legal_basis=str(answers.get("legal_basis") or "").strip())


def _rule(raw: Any, n: int) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyError(f"rule {n} must be a mapping")
    where = f"rule {raw.get('id') or n}"
    rule_id = str(_required(raw, "id", where)).strip()
    if not re.fullmatch(r"[a-z][a-z0-9_]*", rule_id):
        raise PolicyError(f"{where}: id must be lower_snake_case")
    category = str(_required(raw, "category", where)).strip()
    if category not in CLOCK_EVENTS:
        raise PolicyError(f"{where}: unknown category {category!r} (known: {', '.join(CATEGORIES)})")
    event = str(_required(raw, "clock_starts", where)).strip()
    if event not in CLOCK_EVENTS[category]:
        raise PolicyError(f"{where}: the clock of {category} can start at {', '.join(CLOCK_EVENTS[category])}, "
                          f"not {event!r}")
    basis = str(_required(raw, "legal_basis", where)).strip()
    if not basis:
        raise PolicyError(f"{where}: legal_basis must cite the basis of the period")
    covers = raw.get("covers")
    if not isinstance(covers, list) or not covers:
        raise PolicyError(f"{where}: covers must list the tables (and their columns) the rule applies to")
    coverage = []
    for item in covers:
        if not isinstance(item, dict) or not item.get("table") or not isinstance(item.get("columns"), list):
            raise PolicyError(f"{where}: each covers entry needs a table and a list of columns")
        coverage.append(Coverage(str(item["table"]), tuple(str(c) for c in item["columns"])))
    try:
        period = Period.parse(_required(raw, "period", where))
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from exc
    return Rule(id=rule_id, category=category, description=" ".join(str(raw.get("description") or "").split()),
                covers=tuple(coverage), clock_starts=event, period=period, legal_basis=" ".join(basis.split()),
                notice_section=str(raw.get("notice_section") or ""))


def _dispute(raw: Any, n: int) -> Dispute:
    if isinstance(raw, str):
        raw = {"customer_id": raw}
    if not isinstance(raw, dict):
        raise PolicyError(f"legal_holds.disputes entry {n} must be a customer id or a mapping")
    customer_id = str(raw.get("customer_id") or "").strip()
    if not _CUSTOMER_ID.match(customer_id):
        raise PolicyError(f"legal_holds.disputes entry {n}: customer_id must be C + 7 digits")
    since = _date(raw["since"], f"disputes entry {n} since") if raw.get("since") else None
    return Dispute(customer_id, str(raw.get("reason") or "dispute"), since)


def _required(mapping: dict, key: str, where: str = "") -> Any:
    if mapping.get(key) in (None, ""):
        raise PolicyError(f"{where + ': ' if where else ''}{key} is required")
    return mapping[key]


def _date(value: Any, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise PolicyError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from exc


def _month_day(value: Any) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{2})-(\d{2})", str(value).strip())
    if match:
        month, day = int(match[1]), int(match[2])
        if 1 <= month <= 12 and 1 <= day <= calendar.monthrange(2001, month)[1]:
            return month, day
    raise PolicyError(f"financial_year_end must be MM-DD (e.g. 12-31 or 06-30), got {value!r}")


def _clamp_day(year: int, month: int, day: int) -> int:
    return min(day, calendar.monthrange(year, month)[1])


# --- what dbt reads -------------------------------------------------------------------------------------
def rules_rows(policy: Policy) -> list[dict[str, Any]]:
    """One row per rule for `int_retention__rules` (column order = the model's columns)."""
    month, day = policy.financial_year_end
    return [{
        "rule_id": rule.id,
        "category": rule.category,
        "clock_event": rule.clock_starts,
        "period": str(rule.period),
        "period_years": rule.period.years,
        "period_months": rule.period.months,
        "period_days": rule.period.days,
        "legal_basis": rule.legal_basis,
        "covers": "; ".join(f"{c.table} ({', '.join(c.columns)})" for c in rule.covers),
        "policy_version": policy.version,
        "policy_effective_from": policy.effective_from,
        "financial_year_end_month": month,
        "financial_year_end_day": day,
        "due_soon_days": policy.due_soon_days,
        "hold_on_open_collection_case": policy.hold_on_open_collection_case,
    } for rule in policy.rules]


def dispute_rows(policy: Policy) -> list[dict[str, Any]]:
    """One row per configured dispute for `int_retention__legal_holds`."""
    return [{"customer_id": d.customer_id, "reason": d.reason, "since": d.since} for d in policy.disputes]
