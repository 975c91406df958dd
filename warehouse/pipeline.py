"""The pipeline: one typed function per thing the warehouse does, each taking the run's settings.

The command line (warehouse/cli.py) parses, calls one of these and prints what it returns; benchmarks and
tests call them directly. Each function that writes into the home holds the home lock for its duration
(core/lock.py): a second writer waits or says who is busy; `audit`, `subject_access` and `lookup` wait by
default, so they never fail because a build is running. Nothing here prints, and nothing here passes a
setting through the environment.

Every result carries a `status`, the command's exit code, which tells a broken pipeline from work to do:

| status | exit | meaning |
|---|---|---|
| OK | 0 | done, nothing to report |
| FINDINGS | 1 | done; findings for a person to act on: records past their retention period, failed |
| | | data-quality checks, no such data subject |
| USAGE | 2 | the command was given wrong options (nothing ran) |
| BROKEN | 3 | the pipeline is broken: a file refused, the build failed, a source is stale, an error |
| BUSY | 75 | another command holds the home (EX_TEMPFAIL: try again later) |
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum
from pathlib import Path

from core import erasure, faults, files
from core.home import PROJECT_DIR
from core.keys import KeyFileError
from core.lock import home_lock
from core.pseudonym import load_secret, macro_sql, pseudonymous_key
from core.settings import Settings
from core.vault import open_vault
from ingest.config import load_entities, load_inbox
from ingest.load import FileResult, find_files, ingest_inbox, totals
from privacy.config import erasure_tables, load_data_map, load_register
from warehouse import build as builder

log = logging.getLogger(__name__)

READER_WAIT = 3600.0  # seconds a reading command waits for a busy home by default (writers: none)
Progress = Callable[[str], None]


class Status(IntEnum):
    OK = 0
    FINDINGS = 1
    USAGE = 2
    BROKEN = 3
    BUSY = 75


class PipelineError(RuntimeError):
    """The step cannot run: the message says why in one line (never personal data)."""


def _quiet(_message: str) -> None:
    pass


@contextmanager
def holding(settings: Settings, command: str, *, reader: bool = False, on_wait: Progress = _quiet) -> Iterator[None]:
    """The home lock for `command`; writers wait `lock_wait` seconds (default 0), readers an hour."""
    settings.home.create()
    wait = settings.lock_wait if settings.lock_wait is not None else (READER_WAIT if reader else 0.0)
    with home_lock(settings.home.lock_file, command, wait=wait, on_wait=on_wait):
        yield


def pseudonym_secret(settings: Settings) -> bytes | None:
    """The pseudonym secret, or None before the first build made it; a damaged file is an error."""
    if not settings.home.pseudonym_key.exists():
        return None
    try:
        return load_secret(settings.home.pseudonym_key)
    except KeyFileError as exc:
        raise PipelineError(str(exc)) from None


def require_vault(settings: Settings) -> None:
    if not settings.home.vault.exists():
        raise PipelineError(f"no vault at {settings.home.vault}: run `warehouse ingest` and `warehouse build` first")


def require_secret(settings: Settings) -> bytes:
    secret = pseudonym_secret(settings)
    if secret is None:
        raise PipelineError(f"no pseudonym key at {settings.home.pseudonym_key}: run `warehouse build` first")
    return secret


def policy(settings: Settings):
    """The retention policy the settings name, validated (retention/policy.py)."""
    from retention.policy import PolicyError, load_policy

    try:
        return load_policy(settings.retention_policy)
    except PolicyError as exc:
        raise PipelineError(str(exc)) from None


def controller_name(settings: Settings) -> str:
    """The controller's name (privacy/register.yml `controller.name`), for the pages that name the company: the
    feature packages do not read each other's configuration, so the pipeline passes it down."""
    try:
        name = load_register(settings.privacy_config).controller["name"]
    except (OSError, AttributeError, KeyError, TypeError) as exc:
        raise PipelineError(f"no controller name (`controller: name:`) in {settings.privacy_config / 'register.yml'}: "
                            f"{exc}") from None
    if not str(name or "").strip():
        raise PipelineError(f"the controller's name is empty in {settings.privacy_config / 'register.yml'}")
    return str(name)


def erasure_map(settings: Settings) -> list[erasure.TableErasure]:
    """What erasing a record means in each table: from the ingest configuration and the data map."""
    return erasure_tables(load_data_map(settings.privacy_config),
                          [entity.raw for entity in load_entities(settings.ingest_config)])


# --- ingest ------------------------------------------------------------------------------------------------
@dataclass
class IngestResult:
    files: list[FileResult]

    @property
    def refused(self) -> list[FileResult]:
        return [r for r in self.files if r.status == "refused"]

    @property
    def loaded(self) -> list[FileResult]:
        return [r for r in self.files if r.status == "loaded"]

    @property
    def unrecognised(self) -> list[FileResult]:
        return [r for r in self.files if r.status == "unrecognised"]

    @property
    def status(self) -> Status:
        return Status.BROKEN if self.refused else Status.OK

    @property
    def alerts(self) -> list[str]:
        return [f"{len(self.refused)} file(s) refused by the ingest"] if self.refused else []


def count_files(settings: Settings, inbox: Path) -> int:
    return len(find_files(inbox, load_entities(settings.ingest_config)))


def ingest(settings: Settings, inbox: Path, *, on_file: Callable[[FileResult], None] | None = None,
           progress: Progress = _quiet) -> IngestResult:
    """Load the inbox's new files into the vault, each in one transaction; refused files are named."""
    with holding(settings, "ingest", on_wait=progress):
        return _ingest(settings, inbox, on_file)


def _ingest(settings: Settings, inbox: Path, on_file: Callable[[FileResult], None] | None) -> IngestResult:
    entities = load_entities(settings.ingest_config)
    tables = erasure_map(settings)
    secret = pseudonym_secret(settings)
    con = open_vault(settings)
    try:
        results = ingest_inbox(con, inbox, entities, scratch=settings.home.scratch, erasure=tables, secret=secret,
                               ignore=load_inbox(settings.ingest_config).ignore, on_file=on_file)
    finally:
        con.close()
    return IngestResult(results)


# --- build, check, publish ---------------------------------------------------------------------------------
@dataclass
class BuildOutcome:
    build: builder.BuildResult | None  # None: skipped, nothing new to build from
    inputs: str | None = None  # the fingerprint of what it was built from
    published: bool = False

    @property
    def alerts(self) -> list[str]:
        if self.build is None:
            return []
        if not self.build.built:
            return ["dbt build failed: analytics was left as it was"]
        return [] if self.build.fresh else ["a source is stale (dbt source freshness)"]

    @property
    def status(self) -> Status:
        return Status.BROKEN if self.alerts else Status.OK


def build(settings: Settings, *, full_refresh: bool = False, progress: Progress = _quiet) -> BuildOutcome:
    """dbt build (incremental unless `full_refresh`), source freshness, the catalogue; publish when it built."""
    with holding(settings, "build", on_wait=progress):
        outcome = _build(settings, full_refresh=full_refresh, progress=progress)
        if outcome.build.built:
            _publish(settings, outcome)
        return outcome


def _build(settings: Settings, *, full_refresh: bool, progress: Progress) -> BuildOutcome:
    progress("Building dbt models and running their tests…")
    try:
        inputs = builder.inputs_fingerprint(settings) if settings.home.vault.exists() else None
        result = builder.build(settings, full_refresh=full_refresh)
    except builder.BuildError as exc:
        raise PipelineError(str(exc)) from None
    return BuildOutcome(result, inputs)


def _publish(settings: Settings, outcome: BuildOutcome) -> None:
    builder.publish(settings, outcome.build.erasures)
    builder.record_published(settings, outcome.inputs, outcome.build.full_refresh)
    outcome.published = True


def check(settings: Settings, *, analytics: Path | None = None, progress: Progress = _quiet):
    """The data-quality checks; with `analytics`, their banner tables go into that (unpublished) file."""
    with holding(settings, "check", on_wait=progress):
        return _check(settings, analytics, progress)


def _check(settings: Settings, analytics: Path | None, progress: Progress):
    from expectations.run import run_checks

    require_vault(settings)
    controller = controller_name(settings)
    progress("Checking data quality…")
    result = run_checks(settings, require_secret(settings), analytics)
    builder.stamp_catalogue(settings, result.summary())
    result.html_path = result.write_html(settings.home.reports / "quality", controller=controller)
    return result


# --- reports -----------------------------------------------------------------------------------------------
CHURN_EXPOSURES = PROJECT_DIR / "models" / "marts" / "churn" / "_churn__exposures.yml"


def report_checks() -> frozenset[str] | None:
    """The quality checks whose failures bear on the churn report (`suite` or `suite.check`): those of the data
    its marts are computed from, as its dbt exposure declares (`quality_checks`); None when it declares none
    (then every check may)."""
    import yaml

    exposures = yaml.safe_load(CHURN_EXPOSURES.read_text(encoding="utf-8")).get("exposures", [])
    for exposure in exposures:
        if exposure.get("name") == "management_churn_report":
            checks = ((exposure.get("config") or {}).get("meta") or {}).get("quality_checks")
            return frozenset(checks) if checks else None
    return None


@dataclass
class ReportOutcome:
    archived: list = field(default_factory=list)  # reports.archive.Archived, one per month
    index: list[Path] = field(default_factory=list)
    sent: object | None = None  # reports.mail.Sent

    @property
    def written(self) -> list[Path]:
        """The files this run wrote: the months' reports that were new or changed, and the index pages."""
        return [path for month in self.archived for path in month.written] + self.index


def _archive_lock(settings: Settings, progress: Progress):
    wait = settings.lock_wait if settings.lock_wait is not None else READER_WAIT
    return home_lock(settings.home.churn_archive_lock, "report churn", wait=wait, on_wait=progress)


def mail_configured(settings: Settings) -> bool:
    return settings.home.mail_config.exists()


def _mail_config(settings: Settings):
    from reports.mail import MailError, load_config

    try:
        return load_config(settings.home.mail_config, password=settings.smtp_password)
    except (MailError, ValueError) as exc:
        raise PipelineError(str(exc)) from None


def report(settings: Settings, *, month: str | None = None, langs: tuple[str, ...] = ("en",), pdf: bool = True,
           running: bool = False, send: bool = False, progress: Progress = _quiet) -> ReportOutcome:
    """The management churn report from the published analytics, into the dated archive (reports/archive.py):
    `month` (default: the latest closed month), with `running` also the running month, provisional. A closed
    month already archived is kept unless its figures changed. `send`: e-mail the month's report to the
    recipients of <home>/config/mail.yml (a closed month only; its languages). Holds the archive's lock, not
    the home's: it runs beside a build, reading only what is published."""
    from reports.archive import archive, months_due, write_index
    from reports.churn import ReportError

    controller = controller_name(settings)
    config = _mail_config(settings) if send else None
    if config is not None:
        langs, pdf = tuple(dict.fromkeys((*config.languages, *langs))), True
    home = settings.home
    with _archive_lock(settings, progress):
        try:
            months = months_due(home.analytics, settings.limits) if running and month is None and \
                home.analytics.exists() else [month]
            progress(f"Rendering the churn report ({', '.join(langs)})…")
            outcome = ReportOutcome(archive(home.analytics, home.churn_reports, controller=controller,
                                            months=months, langs=langs, pdf=pdf, limits=settings.limits,
                                            report_checks=report_checks(), closed_only=send))
        except ReportError as exc:
            raise PipelineError(str(exc)) from None
        for done in outcome.archived:
            log.info("churn report %s: %s (issue %s)", done.month.isoformat()[:7], done.action, done.issue)
        if config is not None:
            outcome.sent = _send(settings, outcome.archived[0], config, controller, progress)
        outcome.index = write_index(home.churn_reports, controller=controller)
    return outcome


def deliver(settings: Settings, *, archived=None, progress: Progress = _quiet):
    """The daily job's e-mail: the latest closed month's report, once per issue, when the home has a mail
    configuration; None when there is none or the issue was sent already. `archived`: that month as this run's
    report archived it (reports.archive.Archived); without it, it is archived here unless it was sent already."""
    if not mail_configured(settings) or not settings.home.analytics.exists():
        return None
    from reports.archive import archive, current_issue, months_due, write_index
    from reports.churn import ReportError

    config = _mail_config(settings)
    controller = controller_name(settings)
    home = settings.home
    with _archive_lock(settings, progress):
        try:
            if archived is None:  # the published analytics is the one its current issue was made from
                if current_issue(home.churn_reports, months_due(home.analytics, settings.limits)[0])[1].get("sent"):
                    return None
                archived = archive(home.analytics, home.churn_reports, controller=controller, months=[None],
                                   langs=config.languages, limits=settings.limits, report_checks=report_checks())[0]
        except ReportError as exc:
            raise PipelineError(str(exc)) from None
        if archived.current.get("sent"):
            return None
        sent = _send(settings, archived, config, controller, progress)
        write_index(settings.home.churn_reports, controller=controller)
    return sent


def _send(settings: Settings, archived, config, controller: str, progress: Progress):
    from reports.mail import MailError
    from reports.mail import deliver as mail

    progress(f"E-mailing the churn report of {archived.month.isoformat()[:7]}…")
    try:
        sent = mail(archived, config, controller=controller)
    except MailError as exc:
        raise PipelineError(str(exc)) from None
    # counts only: the recipients' addresses are the configuration's, not the log's
    log.info("churn report %s (issue %s) e-mailed to %d recipients", sent.month, sent.issue, sent.recipients)
    if sent.refused:
        raise PipelineError(f"the churn report of {sent.month} was e-mailed, but the server refused "
                            f"{sent.refused} of {len(config.recipients)} recipients")
    return sent


def audit(settings: Settings, *, out_dir: Path | None = None, progress: Progress = _quiet):
    """The retention audit of the published analytics; its history goes into the vault."""
    with holding(settings, "audit", reader=True, on_wait=progress):
        return _audit(settings, out_dir)


def _audit(settings: Settings, out_dir: Path | None):
    from retention.audit import AuditError, run_audit

    try:
        return run_audit(settings, out_dir or settings.home.reports / "retention",
                         controller=controller_name(settings))
    except AuditError as exc:
        raise PipelineError(str(exc)) from None


def privacy_notice(settings: Settings, *, langs: tuple[str, ...] = ("fi", "en"), out_dir: Path | None = None
                   ) -> list[Path]:
    """The register description from the configuration (no data read, no lock)."""
    from privacy.config import PrivacyConfigError
    from privacy.notice import NoticeError, write_notice
    from retention.policy import PolicyError

    out = out_dir or settings.home.reports / "privacy"
    try:
        written = write_notice(out, langs, policy=policy(settings), config_dir=settings.privacy_config)
    except (NoticeError, PrivacyConfigError, PolicyError) as exc:
        raise PipelineError(str(exc)) from None
    log.info("privacy notice (%s) written into %s", ", ".join(langs), out)
    return written


# --- for analysts: metrics and dbt ------------------------------------------------------------------------
class WrongOptions(PipelineError):
    """The command was given options it cannot run (exit 2, nothing ran)."""


@dataclass
class MetricsOutcome:
    result: object | None = None  # metrics.semantic.MetricsResult
    sql: str | None = None  # asked for the SQL only
    metrics: list = field(default_factory=list)  # asked for the list: metrics.semantic.MetricInfo
    dimensions: list[str] = field(default_factory=list)
    status: Status = Status.OK


def semantic_manifest(settings: Settings, progress: Progress = _quiet) -> Path:
    """The metrics' definitions as dbt wrote them (every build does); `dbt parse` first when there are none."""
    path = settings.home.dbt_dir / "target" / "semantic_manifest.json"
    if path.exists():
        return path
    with holding(settings, "metrics", reader=True, on_wait=progress):  # dbt's target folder is the builds' too
        if not path.exists():
            from warehouse.dbt import run_dbt

            progress("Reading the metrics' definitions (dbt parse)…")
            parsed = run_dbt(settings, "parse")
            if not parsed.success or not path.exists():
                raise PipelineError("dbt parse failed, so the metrics' definitions are unknown: "
                                    + "; ".join(parsed.failures or ["no semantic_manifest.json written"]))
    return path


def metrics(settings: Settings, names: list[str], *, by: list[str] = (), where: list[str] = (),
            list_only: bool = False, sql_only: bool = False, progress: Progress = _quiet) -> MetricsOutcome:
    """Metrics of the semantic layer (models/marts/churn/_churn__semantic.yml) from the published analytics,
    read-only (no lock): by month (day, week, quarter, year) and the dimensions they have, filtered by `where`.
    `list_only`: the metrics and dimensions there are; `sql_only`: the SQL MetricFlow writes, not run."""
    from metrics.semantic import ManifestUnreadable, MetricsError, QueryError, SemanticLayer

    analytics = settings.home.analytics
    if not analytics.exists():
        raise PipelineError(f"no analytics database at {analytics}: run `warehouse build` first")
    manifest = semantic_manifest(settings, progress)
    progress("Querying the metrics…")

    def open_layer() -> SemanticLayer:
        try:
            return SemanticLayer(manifest, analytics, limits=settings.limits)
        except ManifestUnreadable:  # caught while a build's dbt rewrote it: read it once that build is done
            with holding(settings, "metrics", reader=True, on_wait=progress):
                return SemanticLayer(manifest, analytics, limits=settings.limits)

    try:
        with open_layer() as layer:
            if list_only:
                return MetricsOutcome(metrics=layer.metrics(), dimensions=layer.dimensions())
            if sql_only:
                return MetricsOutcome(sql=layer.sql(list(names), list(by), list(where))[0])
            result = layer.query(list(names), list(by), list(where))
    except QueryError as exc:
        raise WrongOptions(str(exc)) from None
    except MetricsError as exc:
        raise PipelineError(str(exc)) from None
    # names only: a filter's values could be anything an analyst typed
    log.info("metrics %s by %s: %d rows", ",".join(names), ",".join(by) or "-", len(result.rows))
    return MetricsOutcome(result=result)


@dataclass
class DbtCommandOutcome:
    command: str  # the dbt command (`show`, `docs generate`)
    dbt: object  # warehouse.dbt.DbtOutcome
    built_into: Path | None = None  # a command that writes: the next analytics file, never published from there

    @property
    def alerts(self) -> list[str]:
        return [] if self.dbt.success else [f"dbt {self.command} failed"]

    @property
    def status(self) -> Status:
        return Status.BROKEN if self.alerts else Status.OK


def dbt(settings: Settings, args: list[str], *, progress: Progress = _quiet) -> DbtCommandOutcome:
    """`dbt <args>` on the warehouse's profile, vars and home, printing dbt's own output.

    A command that only reads (ls, show, compile, parse, docs generate, debug, source freshness) runs with the
    vault and the published analytics attached read-only and waits for a running build; one that writes
    (build, run, test, seed, snapshot, run-operation, …) holds the home like a build and builds into the next
    analytics file, a copy of the published one: only `warehouse build` publishes, after its checks. `show`
    leaves no dbt.log behind: the rows it prints may be personal data when it reads the vault."""
    from warehouse.build import BuildError, start_next
    from warehouse.dbt import DbtArgsError, dbt_command, dbt_help, run_dbt

    try:
        command, writes = dbt_command(args)
    except DbtArgsError as exc:
        raise WrongOptions(str(exc)) from None
    if not command:
        return DbtCommandOutcome("--help", dbt_help(args))
    label = f"{command} (warehouse dbt)"
    if not writes:
        with holding(settings, "dbt", reader=True, on_wait=progress):
            return DbtCommandOutcome(command, run_dbt(settings, *args, quiet=False, read_only=True,
                                                      log_file=command != "show", label=label))
    with holding(settings, "dbt", on_wait=progress):
        try:
            start_next(settings, full_refresh="--full-refresh" in args)
        except BuildError as exc:
            raise PipelineError(str(exc)) from None
        outcome = run_dbt(settings, *args, quiet=False, label=label)
        return DbtCommandOutcome(command, outcome, settings.home.analytics_next)


# --- erasure: retention enforcement ----------------------------------------------------------------------
@dataclass
class EnforceOutcome:
    planned: list[erasure.Erasure]
    applied: bool = False
    request_files: list[Path] = field(default_factory=list)
    rows_touched: dict[str, int] = field(default_factory=dict)
    packages_removed: int = 0
    build: BuildOutcome | None = None

    @property
    def alerts(self) -> list[str]:
        return self.build.alerts if self.build else []

    @property
    def status(self) -> Status:
        return Status.BROKEN if self.alerts else Status.OK


def finish_erasures(settings: Settings, outcome: EnforceOutcome | None = None, *,
                    progress: Progress = _quiet) -> EnforceOutcome:
    """Finish what a committed erasure left to do, whatever step killed it: write the source systems' request
    lists, remove access packages of erased people and overdue ones, rebuild a fresh analytics and publish."""
    from privacy.access import remove_packages

    outcome = outcome or EnforceOutcome([])
    con = open_vault(settings)
    try:
        erasure_runs = erasure.unpublished_runs(con)
        outcome.request_files += erasure.write_request_lists(con, settings.home.reports / "retention")
        faults.point("enforce.after_requests")
        outcome.packages_removed += remove_packages(settings, con, policy(settings).answers_period)
    finally:
        con.close()
    if erasure_runs:
        outcome.build = _build(settings, full_refresh=True, progress=progress)
        if outcome.build.build.built:
            _publish(settings, outcome.build)
    return outcome


def enforce(settings: Settings, *, apply: bool = False, today: date | None = None,
            progress: Progress = _quiet) -> EnforceOutcome:
    """List (dry run) or erase the records kept past their retention period; a killed earlier run is finished
    first, so the plan is made on a complete vault."""
    from retention.enforce import EnforceError, plan

    with holding(settings, "retention enforce", on_wait=progress):
        require_vault(settings)
        secret = require_secret(settings)
        outcome = EnforceOutcome([])
        if apply:
            finish_erasures(settings, outcome, progress=progress)
            if outcome.alerts:
                return outcome
        tables = erasure_map(settings)
        con = open_vault(settings, read_only=not apply)
        try:
            con.execute(macro_sql(secret))  # the retention records and the erasure statements call it
            try:
                outcome.planned = plan(con, secret, tables)
            except EnforceError as exc:
                raise PipelineError(str(exc)) from None
            if not apply or not outcome.planned:
                return outcome
            _run_id, outcome.rows_touched = erasure.record_erasures(
                con, outcome.planned, tables, reason="retention", today=today or date.today())
        finally:
            con.close()
        outcome.applied = True
        _log_erasure(outcome, "retention enforcement")
        faults.point("enforce.after_commit")
        return finish_erasures(settings, outcome, progress=progress)


def _log_erasure(outcome: EnforceOutcome, what: str) -> None:
    from retention.enforce import counts

    for (category, action), n in sorted(counts(outcome.planned).items()):
        log.info("%s: %s records of %s %sd", what, n, category, action)
    for table, n in sorted(outcome.rows_touched.items()):
        if n:
            log.info("%s: %s rows deleted or anonymised in %s", what, n, table)


# --- data subjects' requests -------------------------------------------------------------------------------
def subject_access(settings: Settings, identifier_type: str, value: str, *, verified_by: str,
                   request_ref: str | None = None, progress: Progress = _quiet):
    """Everything held about one person (GDPR art. 15), owner-only in <home>/access/<request>/."""
    from privacy.access import AccessError, SubjectNotFound
    from privacy.access import subject_access as answer

    with holding(settings, "subject-access", reader=True, on_wait=progress):
        progress("Assembling the access package…")
        try:
            return answer(settings, require_secret(settings), policy(settings), identifier_type, value,
                          verified_by=verified_by, request_ref=request_ref,
                          raw_tables=[entity.raw for entity in load_entities(settings.ingest_config)])
        except SubjectNotFound:
            raise
        except AccessError as exc:
            raise PipelineError(str(exc)) from None


@dataclass
class EraseOutcome:
    request_id: str
    answer: object  # privacy.erase.Answer
    dry_run: bool
    answer_path: Path | None = None
    erasures: EnforceOutcome | None = None

    @property
    def alerts(self) -> list[str]:
        return self.erasures.alerts if self.erasures else []

    @property
    def status(self) -> Status:
        return Status.BROKEN if self.alerts else Status.OK


class NoSuchSubject(PipelineError):
    """No customer matches the request (logged): exit 1, a finding for the person who asked."""


def erase(settings: Settings, customer_id: str, *, request_ref: str, verified_by: str, dry_run: bool = True,
          today: date | None = None, progress: Progress = _quiet) -> EraseOutcome:
    """Erasure on request (GDPR art. 17): erase what need not be kept, say what is kept and why; logged like an
    access request. The answer (counts and reasons, no personal data) goes owner-only into <home>/access/.

    The erasure and its log row commit in one transaction; the answer is written aside before and renamed into
    place after, and whatever is left to do (request lists, the fresh build) the next run finishes."""
    from privacy.erase import NoSuchCustomer, plan_request
    from privacy.requests import new_request

    with holding(settings, "erase", on_wait=progress):
        require_vault(settings)
        secret = require_secret(settings)
        outcome = EnforceOutcome([])
        if not dry_run:
            finish_erasures(settings, outcome, progress=progress)  # a killed earlier erasure first
            if outcome.alerts:
                raise PipelineError("an earlier erasure could not be finished: " + "; ".join(outcome.alerts))
        request = new_request("erasure", "customer_id", verified_by, request_ref)
        keys = [pseudonymous_key(secret, customer_id)]
        tables = erasure_map(settings)
        folder = settings.home.access / request.request_id
        con = open_vault(settings, read_only=dry_run)
        try:
            con.execute(macro_sql(secret))
            try:
                erasures, answer = plan_request(con, secret, tables, customer_id)
            except NoSuchCustomer:
                erasures, answer = [], None
            if not dry_run and erasures:
                aside = _write_answer(files.temp_path(folder), request, answer)
                erasure.record_erasures(con, erasures, tables, reason="request", today=today or date.today(),
                                        also=lambda c: request.log(c, keys, "erased", len(answer.erased),
                                                                   answer.erased_count))
        finally:
            con.close()
        if answer is None or dry_run or not erasures:
            word = "not_found" if answer is None else "dry_run" if dry_run else "nothing_to_erase"
            _with_vault(settings, lambda c: request.log(c, keys if answer else [], word, len(answer.erased) if answer
                                                        else 0, answer.erased_count if answer else 0))
            if answer is None:
                raise NoSuchSubject(f"no customer has that customer id (request {request.request_id} logged)")
            _write_answer(folder, request, answer)
            return EraseOutcome(request.request_id, answer, dry_run, folder / "erasure.json")
        aside.rename(folder)
        outcome.planned, outcome.applied = erasures, True
        _log_erasure(outcome, "erasure on request")
        faults.point("erase.after_commit")
        finish_erasures(settings, outcome, progress=progress)
        return EraseOutcome(request.request_id, answer, False, folder / "erasure.json", outcome)


def _with_vault(settings: Settings, work: Callable) -> None:
    con = open_vault(settings)
    try:
        work(con)
    finally:
        con.close()


def _write_answer(folder: Path, request, answer) -> Path:
    """The answer to an erasure request, owner-only: what was erased and what is kept, why and until when."""
    files.private_folder(folder)
    files.write_text(folder / "erasure.json", json.dumps(
        {"request_id": request.request_id, "request_ref": request.request_ref,
         "requested_at": request.requested_at.isoformat(), **answer.as_dict()},
        indent=2, ensure_ascii=False, default=str) + "\n")
    return folder


@dataclass
class ObjectOutcome:
    request_id: str
    objection: object  # privacy.objection.Objection
    build: BuildOutcome | None = None

    @property
    def status(self) -> Status:
        return Status.BROKEN if self.build and self.build.alerts else Status.OK


def object_to_marketing(settings: Settings, customer_id: str, *, request_ref: str, verified_by: str,
                        rebuild: bool = True, progress: Progress = _quiet) -> ObjectOutcome:
    """Objection to direct marketing (GDPR art. 21): recorded, applied over the CRM's consent, logged."""
    from privacy.objection import ObjectionError, record_objection
    from privacy.requests import new_request

    with holding(settings, "object", on_wait=progress):
        require_vault(settings)
        secret = require_secret(settings)
        request = new_request("objection", "customer_id", verified_by, request_ref)
        try:
            objection = record_objection(settings, customer_id, request_ref=request_ref, recorded_by=verified_by)
        except ObjectionError as exc:
            _with_vault(settings, lambda c: request.log(c, [], "refused"))
            raise PipelineError(str(exc)) from None
        _with_vault(settings, lambda c: request.log(c, [pseudonymous_key(secret, customer_id)],
                                                    "already_recorded" if objection.already else "recorded"))
        outcome = ObjectOutcome(request.request_id, objection)
        if rebuild and not objection.already:
            outcome.build = _build(settings, full_refresh=False, progress=progress)
            if outcome.build.build.built:
                _publish(settings, outcome.build)
        return outcome


@dataclass
class LookupOutcome:
    request_id: str
    matches: list  # privacy.lookup.Match

    @property
    def status(self) -> Status:
        return Status.OK if self.matches else Status.FINDINGS


def lookup(settings: Settings, key: str, *, verified_by: str, request_ref: str | None = None,
           progress: Progress = _quiet) -> LookupOutcome:
    """The record a pseudonymous key stands for (the audit and quality pages name records by key); logged like
    an access request, with the customer's key, never the id looked up."""
    from privacy.lookup import LookupError_, find
    from privacy.requests import new_request

    with holding(settings, "lookup", reader=True, on_wait=progress):
        require_vault(settings)
        secret = require_secret(settings)
        try:
            request = new_request("lookup", "pseudonymous_key", verified_by, request_ref)
        except ValueError as exc:
            raise PipelineError(str(exc)) from None
        con = open_vault(settings, read_only=True)
        try:
            con.execute(macro_sql(secret))
            try:
                matches = find(con, key)
            except LookupError_ as exc:
                raise PipelineError(str(exc)) from None
        finally:
            con.close()
        customers = sorted({m.customer_id for m in matches if m.customer_id})
        _with_vault(settings, lambda c: request.log(c, [pseudonymous_key(secret, c_id) for c_id in customers],
                                                    "found" if matches else "not_found", rows=len(matches)))
        log.info("look-up %s: %s record(s)", request.request_id, len(matches))
        return LookupOutcome(request.request_id, matches)


@dataclass
class RectifyOutcome:
    rectification: object
    build: BuildOutcome | None = None

    @property
    def status(self) -> Status:
        return Status.BROKEN if self.build and self.build.alerts else Status.OK


def rectify(settings: Settings, customer_id: str, column: str, value: str | None, *, request_ref: str,
            recorded_by: str, dataset: str, record_id: str | None = None, rebuild: bool = True,
            progress: Progress = _quiet) -> RectifyOutcome:
    """Record a correction (art. 16), list who received the old value (art. 19), rebuild unless told not to."""
    from privacy.rectify import RectifyError
    from privacy.rectify import rectify as record

    with holding(settings, "rectify", on_wait=progress):
        try:
            result = record(settings, pseudonym_secret(settings), customer_id, column, value,
                            request_ref=request_ref, recorded_by=recorded_by, dataset=dataset, record_id=record_id)
        except RectifyError as exc:
            raise PipelineError(str(exc)) from None
        outcome = RectifyOutcome(result)
        if rebuild:
            outcome.build = _build(settings, full_refresh=False, progress=progress)
            if outcome.build.build.built:
                _publish(settings, outcome.build)
        return outcome


# --- the daily job -----------------------------------------------------------------------------------------
@dataclass
class RunOutcome:
    ingest: IngestResult | None = None
    erasures: EnforceOutcome | None = None
    build: BuildOutcome | None = None
    check: object | None = None
    reports: list[Path] = field(default_factory=list)
    sent: object | None = None  # the churn report e-mailed (reports.mail.Sent), if the home has mail configured
    audit: object | None = None
    notice: list[Path] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)  # "step: why", for steps that could not run
    standing_check_errors: int = 0  # no build: the errors of the last check, which still describe the data

    @property
    def alerts(self) -> list[str]:
        """What broke, in words (no personal data)."""
        alerts = list(self.failed_steps)
        alerts += self.ingest.alerts if self.ingest else []
        alerts += self.erasures.alerts if self.erasures else []
        alerts += self.build.alerts if self.build else []
        return alerts

    @property
    def findings(self) -> list[str]:
        """What a person should act on."""
        findings = []
        if (self.check is not None and self.check.has_errors) or (self.check is None and self.standing_check_errors):
            findings.append("an error-severity data-quality check failed")
        if self.audit is not None and self.audit.overdue_count:
            findings.append("records are kept past their retention period")
        return findings

    @property
    def status(self) -> Status:
        return Status.BROKEN if self.alerts else Status.FINDINGS if self.findings else Status.OK


def daily_run(settings: Settings, inbox: Path, *, full_refresh: bool = False, progress: Progress = _quiet,
              on_file: Callable[[FileResult], None] | None = None) -> RunOutcome:
    """The scheduled daily job: finish a killed erasure, ingest, build, check, publish, churn report (en + fi:
    the latest closed month into the archive, the running month provisional), its e-mail (once per closed
    month, if <home>/config/mail.yml exists), retention audit, privacy notice. Without a new file or a change
    of what the build reads, the build, the checks and the reports of the last run stand: no work without news."""
    with holding(settings, "run", on_wait=progress):
        outcome = RunOutcome()
        if settings.home.vault.exists():
            outcome.erasures = finish_erasures(settings, progress=progress)
        outcome.ingest = _ingest(settings, inbox, on_file)
        if outcome.erasures and outcome.erasures.build:
            outcome.build = outcome.erasures.build  # the erasure's rebuild is this run's build
        else:
            outcome.build = _daily_build(settings, full_refresh, progress)
        if outcome.build.build is not None and outcome.build.build.built and not outcome.build.published:
            outcome.check = _check(settings, settings.home.analytics_next, progress)
            _publish(settings, outcome.build)  # after the checks, so the published file carries their banner
        elif outcome.build.build is None:  # nothing new: the last check's results still describe the data
            from expectations.run import published_summary

            outcome.standing_check_errors = (published_summary(settings) or {}).get("errors", 0)
        # A step that cannot run is an alert; the steps after it still run.
        closed = None  # this run's archive of the latest closed month, if it made one
        if outcome.build.published:
            reports = _step(outcome, "churn report", lambda: report(settings, langs=("en", "fi"), running=True,
                                                                      progress=progress))
            outcome.reports = reports.written if reports else []
            closed = reports.archived[0] if reports else None
        # Each closed month's report once by e-mail, when the home has a mail configuration; a failed sending
        # is tried again by the next run, news or not.
        if mail_configured(settings):
            outcome.sent = _step(outcome, "churn report e-mail",
                                 lambda: deliver(settings, archived=closed, progress=progress))
        # Audit even after a failed build, on the last published analytics: a failure must not hide overdue data.
        if settings.home.analytics.exists():
            outcome.audit = _step(outcome, "retention audit", lambda: _audit(settings, None))
        # from the configuration the run used: the notice cannot drift from it
        outcome.notice = _step(outcome, "privacy notice", lambda: privacy_notice(settings)) or []
        return outcome


def _step(outcome: RunOutcome, name: str, step: Callable):
    try:
        return step()
    except PipelineError as exc:
        log.error("%s: %s", name, exc)
        outcome.failed_steps.append(f"{name}: {exc}")
        return None


def _daily_build(settings: Settings, full_refresh: bool, progress: Progress) -> BuildOutcome:
    home = settings.home
    if not full_refresh and home.analytics.exists():
        inputs = builder.inputs_fingerprint(settings)
        if inputs == builder.last_published_inputs(settings):
            log.info("nothing new since the last published build: build, checks and reports skipped")
            return BuildOutcome(None)
    return _build(settings, full_refresh=full_refresh, progress=progress)


# --- development: sample data and the demo ------------------------------------------------------------------
def generate(out: Path, *, customers: int, seed: int, start: date, end: date, days: int,
             defect_rate: float, static_days: bool = False, progress: Progress = _quiet) -> dict:
    """Sample exports (samplegen, a development tool) with the manifest of injected defects."""
    from samplegen import generate_exports

    manifest = generate_exports(out, customers=customers, seed=seed, start=start, end=end, days=days,
                                static_days=static_days, defect_rate=defect_rate,
                                progress=lambda stage: progress(f"Generating: {stage}"))
    log.info("generated %s files for %s customers (seed %s) into %s", len(manifest.get("files", [])), customers,
             seed, out)
    return manifest


@dataclass
class DemoOutcome:
    run: RunOutcome
    access_page: Path | None
    ingested: tuple[int, int, int, int]  # files, rows loaded, rows rejected, files refused

    @property
    def status(self) -> Status:
        # The sample data carries defects and overdue records on purpose: only a broken run fails the demo.
        return Status.BROKEN if self.run.alerts and not self.run.build.published else Status.OK


def demo(settings: Settings, *, customers: int = 2000, seed: int = 42, progress: Progress = _quiet) -> DemoOutcome:
    """Generate sample exports into the home's sample inbox, run the daily job on them, answer an example
    access request."""
    from privacy.access import example_subject

    home = settings.home
    with holding(settings, "demo", on_wait=progress):
        files.empty_folder(home.sample_inbox)  # ours alone: files of an earlier demo would linger
        generate(home.sample_inbox, customers=customers, seed=seed, start=date(2019, 1, 1), end=date.today(),
                 days=3, defect_rate=0.01, progress=progress)
        run = daily_run(settings, home.sample_inbox, progress=progress)
        con = open_vault(settings, read_only=True)
        try:
            ingested = totals(con)
            customer_id = example_subject(con) if run.build.published else None
        finally:
            con.close()
        page = None
        if customer_id:
            answer = subject_access(settings, "customer_id", customer_id, verified_by="warehouse demo (sample data)",
                                    request_ref="DEMO")
            page = answer.html_paths["en"]
        return DemoOutcome(run, page, ingested)
