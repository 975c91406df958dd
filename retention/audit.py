"""The scheduled retention audit: figures per data category, a history of audits, a report for the privacy officer.

`run_audit(settings, out_dir, controller=...)` reads `privacy.retention_status` from the published analytics
database (read-only; built by dbt from retention/policy.yml), appends this audit's per-category figures to the
vault's history table `retention.audits`, and writes `audit-YYYY-MM-DD.html` (rendered by core/render.py; the
category names in retention/labels.yml) and `.json` into `out_dir`: per category the records held, overdue,
due soon and on hold, the oldest overdue expiry date, the overdue records by pseudonymous key, and the trend
against earlier audits. The date is Helsinki's; a second audit on the same day replaces that day's files (the
history keeps both runs).

The report carries no personal data: records and customers appear only as pseudonymous keys, and the
policy's dispute list (customer ids) is never copied into it. `AuditResult.exit_code` is 1 when anything is
overdue, so a scheduler (cron, systemd timer) alerts; see retention/SCHEDULING.md.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from core import files, render
from core.db import connect, transaction
from core.schema import ensure_vault_schema
from core.settings import Settings
from core.sql import literal
from core.vault import open_vault
from retention.policy import CATEGORIES, Policy, PolicyError, load_policy

log = logging.getLogger(__name__)

TEMPLATE = "retention/templates/audit.html.j2"
LABELS = Path(__file__).resolve().parent / "labels.yml"
OVERDUE_SQL = """
    select category, rule_id, record_type, record_key, customer_key, clock_started_on, expires_on, days_past_expiry
    from privacy.retention_status where status = 'overdue'"""
OVERDUE_PLACEHOLDER = "<overdue records>"
HTML_LISTED_PER_CATEGORY = 200  # the HTML lists the oldest overdue records; the JSON lists them all
HISTORY_SHOWN = 30
LANG = "en"  # the audit is written for the privacy officer in English


class AuditError(RuntimeError):
    """The audit cannot run: no published analytics, or it lacks privacy.retention_status."""


@dataclass
class CategoryFigures:
    category: str
    label: str
    rule_id: str | None
    period: str | None
    clock_event: str | None
    legal_basis: str | None
    held: int = 0
    kept: int = 0
    due_soon: int = 0
    overdue: int = 0
    on_hold: int = 0
    oldest_overdue_on: date | None = None
    previous: dict[str, Any] | None = None  # the figures of the previous audit, if any
    change: dict[str, int] | None = None  # this audit minus the previous one


@dataclass
class AuditResult:
    run_id: int
    run_at: datetime
    as_of_date: date | None
    policy_version: str | None
    categories: list[CategoryFigures]
    # the longest overdue records per category, as many as the HTML lists; the JSON lists all of them
    listed_records: list[dict[str, Any]]
    history: list[dict[str, Any]]
    html_path: Path
    json_path: Path
    controller: str  # the company whose register was audited (privacy/register.yml)
    warnings: list[str] = field(default_factory=list)
    due_soon_days: int | None = None

    @property
    def held_count(self) -> int:
        return sum(c.held for c in self.categories)

    @property
    def overdue_count(self) -> int:
        return sum(c.overdue for c in self.categories)

    @property
    def due_soon_count(self) -> int:
        return sum(c.due_soon for c in self.categories)

    @property
    def on_hold_count(self) -> int:
        return sum(c.on_hold for c in self.categories)

    @property
    def exit_code(self) -> int:
        """0 when nothing is overdue, 1 when something is: the scheduler alerts on non-zero."""
        return 1 if self.overdue_count > 0 else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "report": "retention audit",
            "controller": self.controller,
            "run_id": self.run_id,
            "run_at": self.run_at.isoformat(),
            "as_of_date": self.as_of_date,
            "policy_version": self.policy_version,
            "due_soon_days": self.due_soon_days,
            "totals": {"held": self.held_count, "overdue": self.overdue_count, "due_soon": self.due_soon_count,
                       "on_hold": self.on_hold_count},
            "categories": [asdict(c) for c in self.categories],
            "overdue_records": OVERDUE_PLACEHOLDER,  # all of them, streamed in by DuckDB (_write_json)
            "history": self.history,
            "warnings": self.warnings,
        }


def run_audit(settings: Settings, out_dir: Path, *, controller: str, now: datetime | None = None,
              policy: Policy | None = None) -> AuditResult:
    """Read privacy.retention_status from the published analytics database (home.analytics, read-only);
    append this audit's per-category counts to a history table in the vault (schema `retention`, table
    `audits`: run id, run_at, category, held, overdue, due_soon, on_hold, oldest_overdue_on); write a dated
    report audit-YYYY-MM-DD.html and .json into out_dir for the privacy officer: per category the records
    held, overdue and due soon, the oldest overdue date, the overdue records by pseudonymous key, and the
    trend against earlier audits from the history table. AuditResult.overdue_count > 0 → the CLI exits
    non-zero so the scheduler alerts. `controller`: the company whose register it is (privacy/register.yml,
    read by the pipeline)."""
    run_at = (now or datetime.now(UTC)).astimezone(UTC)
    warnings: list[str] = []
    if policy is None:
        try:
            policy = load_policy(settings.retention_policy)
        except PolicyError as exc:  # the figures come from analytics; the policy only labels them
            warnings.append(f"policy file not readable, rules not described: {exc}")
    figures, listed_records, as_of, version = _read_status(settings)
    if policy is not None and version is not None and version != policy.version:
        warnings.append(f"analytics was built with policy version {version}; the policy file is now "
                        f"version {policy.version}: the next build applies it")

    categories = _categories(figures, policy)
    run_id, history = _record_history(settings, run_at, as_of, version, categories)
    for category in categories:
        previous = history["previous"].get(category.category)
        if previous is not None:
            category.previous = previous
            category.change = {k: getattr(category, k) - previous[k]
                               for k in ("held", "overdue", "due_soon", "on_hold")}

    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = run_at.astimezone(render.LOCAL_TZ).date().isoformat()
    result = AuditResult(run_id=run_id, run_at=run_at, as_of_date=as_of, policy_version=version,
                         categories=categories, listed_records=listed_records, history=history["runs"],
                         html_path=out_dir / f"audit-{stamp}.html", json_path=out_dir / f"audit-{stamp}.json",
                         controller=controller, warnings=warnings,
                         due_soon_days=policy.due_soon_days if policy else None)
    _write_json(settings, result)
    files.write_text(result.html_path, render_html(result))
    log.info("retention audit %s: %s records held, %s overdue, %s due soon, %s on hold; report %s",
             run_id, result.held_count, result.overdue_count, result.due_soon_count, result.on_hold_count,
             result.html_path.name)
    return result


def _read_status(settings: Settings) -> tuple[dict[str, dict], list[dict], date | None, str | None]:
    home = settings.home
    if not home.analytics.exists():
        raise AuditError(f"no published analytics database at {home.analytics}: run `warehouse build` first")
    con = connect(home.analytics, read_only=True, limits=settings.limits)
    try:
        exists = con.execute("select count(*) from information_schema.tables "
                             "where table_schema = 'privacy' and table_name = 'retention_status'").fetchone()[0]
        if not exists:
            raise AuditError(f"{home.analytics} has no privacy.retention_status: rebuild with `warehouse build`")
        rows = con.execute("""
            select category, any_value(rule_id), count(*),
                   count(*) filter (where status = 'kept'), count(*) filter (where status = 'due_soon'),
                   count(*) filter (where status = 'overdue'), count(*) filter (where status = 'on_hold'),
                   min(expires_on) filter (where status = 'overdue')
            from privacy.retention_status group by category""").fetchall()
        as_of, version = con.execute(
            "select max(as_of_date), max(policy_version) from privacy.retention_status").fetchone()
        cursor = con.execute(f"""
            {OVERDUE_SQL}
            qualify row_number() over (partition by category order by expires_on, record_type, record_key)
                <= {HTML_LISTED_PER_CATEGORY}
            order by category, expires_on, record_type, record_key""")
        names = [d[0] for d in cursor.description]
        overdue = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    figures = {r[0]: {"rule_id": r[1], "held": r[2], "kept": r[3], "due_soon": r[4], "overdue": r[5],
                      "on_hold": r[6], "oldest_overdue_on": r[7]} for r in rows}
    return figures, overdue, as_of, version


def _categories(figures: dict[str, dict], policy: Policy | None) -> list[CategoryFigures]:
    names = list(CATEGORIES) + sorted(set(figures) - set(CATEGORIES))
    labels = render.load_labels(LABELS, "categories")
    result = []
    for name in names:
        rule = next((r for r in policy.rules if r.category == name), None) if policy else None
        counts = figures.get(name, {})
        result.append(CategoryFigures(
            category=name, label=labels.text(name, LANG),
            rule_id=counts.get("rule_id") or (rule.id if rule else None),
            period=str(rule.period) if rule else None, clock_event=rule.clock_starts if rule else None,
            legal_basis=rule.legal_basis if rule else None,
            **{k: v for k, v in counts.items() if k != "rule_id"}))
    return result


def _record_history(settings: Settings, run_at: datetime, as_of: date | None, version: str | None,
                    categories: list[CategoryFigures]) -> tuple[int, dict[str, Any]]:
    """Append this audit to retention.audits (one transaction); return its run id and the history."""
    con = open_vault(settings)
    try:
        ensure_vault_schema(con)
        with transaction(con):
            run_id = con.execute("select coalesce(max(run_id), 0) + 1 from retention.audits").fetchone()[0]
            con.executemany(
                "insert into retention.audits values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, run_at, as_of, version, c.category, c.held, c.overdue, c.due_soon, c.on_hold,
                  c.oldest_overdue_on) for c in categories])
        previous_rows = con.execute("""
            select category, run_id, run_at, as_of_date, held, overdue, due_soon, on_hold, oldest_overdue_on
            from retention.audits
            where run_id = (select max(run_id) from retention.audits where run_id < ?)""", [run_id]).fetchall()
        runs = con.execute("""
            select run_id, max(run_at), max(as_of_date), any_value(policy_version),
                   sum(held)::bigint, sum(overdue)::bigint, sum(due_soon)::bigint, sum(on_hold)::bigint
            from retention.audits group by run_id order by run_id desc limit ?""", [HISTORY_SHOWN]).fetchall()
    finally:
        con.close()
    previous = {r[0]: {"run_id": r[1], "run_at": r[2], "as_of_date": r[3], "held": r[4], "overdue": r[5],
                       "due_soon": r[6], "on_hold": r[7], "oldest_overdue_on": r[8]} for r in previous_rows}
    history = [{"run_id": r[0], "run_at": r[1], "as_of_date": r[2], "policy_version": r[3], "held": r[4],
                "overdue": r[5], "due_soon": r[6], "on_hold": r[7]} for r in reversed(runs)]
    return run_id, {"previous": previous, "runs": history}


# --- the report ------------------------------------------------------------------------------------------
def render_html(result: AuditResult) -> str:
    listed = {c.category: [r for r in result.listed_records if r["category"] == c.category]
              for c in result.categories}
    return render.render(TEMPLATE, lang=LANG, result=result, listed=listed, listed_max=HTML_LISTED_PER_CATEGORY,
                         trend=_trend_svg(result.history), json_name=result.json_path.name)


def _trend_svg(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Polyline points for the overdue and due-soon totals over the audits shown (inline SVG, no scripts)."""
    if len(history) < 2:
        return None
    width, height, pad = 560, 120, 8
    top = max(max(h["overdue"], h["due_soon"]) for h in history) or 1
    step = (width - 2 * pad) / (len(history) - 1)

    def points(key: str) -> str:
        return " ".join(f"{pad + i * step:.1f},{height - pad - (h[key] / top) * (height - 2 * pad):.1f}"
                        for i, h in enumerate(history))

    return {"width": width, "height": height, "overdue": points("overdue"), "due_soon": points("due_soon"),
            "top": top}


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_json(settings: Settings, result: AuditResult) -> None:
    """The JSON report, its list of every overdue record written by DuckDB and copied in as a stream: at a
    million customers that list has a million entries, which as Python objects would take gigabytes."""
    head, tail = json.dumps(result.as_dict(), indent=2, ensure_ascii=False, default=_json_default).split(
        json.dumps(OVERDUE_PLACEHOLDER))
    records = settings.home.scratch / f"{result.json_path.name}.records"
    files.private_folder(records.parent)
    con = connect(settings.home.analytics, read_only=True, limits=settings.limits)
    try:
        con.execute(f"""copy ({OVERDUE_SQL} order by category, expires_on, record_type, record_key)
                        to {literal(records)} (format json, array true)""")
    finally:
        con.close()
    try:
        with files.atomic_writer(result.json_path) as handle, records.open(encoding="utf-8") as listed:
            handle.write(head)
            shutil.copyfileobj(listed, handle)
            handle.write(tail)
    finally:
        records.unlink(missing_ok=True)


# --- command line ----------------------------------------------------------------------------------------
def summary_text(result: AuditResult) -> str:
    """A few lines for the console or the scheduler's mail: counts only, no keys."""
    lines = [f"Retention audit #{result.run_id} (data as of {result.as_of_date}, policy {result.policy_version}): "
             f"{result.held_count:,} records held, {result.overdue_count:,} overdue, "
             f"{result.due_soon_count:,} due soon, {result.on_hold_count:,} on hold"]
    lines += [f"  {c.category}: {c.overdue:,} overdue, oldest expired {c.oldest_overdue_on}"
              for c in result.categories if c.overdue]
    lines += [f"  warning: {w}" for w in result.warnings]
    lines.append(f"  report: {result.html_path} and {result.json_path.name}")
    return "\n".join(lines)
