"""The churn report's dated archive: one report per closed month, kept; the running month provisional.

    <archive>/index.<lang>.html                         every archived month, newest first (en, fi)
    <archive>/<YYYY-MM>/churn-YYYY-MM.<lang>.html|pdf   the month's report (its current issue)
    <archive>/<YYYY-MM>/churn-YYYY-MM.<lang>.issue-N.*  earlier issues of a closed month, kept
    <archive>/<YYYY-MM>/issues.json                     what was issued when, from which figures, e-mailed when

The running month (the cut-off is before its last day) is provisional: its report is replaced by every run
and says so, on the page and in the index. A closed month's report is issued once and then kept: later runs
leave it as it is, unless that month's own figures change (a late export, a correction: `data.fingerprint`).
Then it is issued again and the earlier issue is kept beside it under its issue number, so what management
was sent stays readable. A report sent by e-mail is marked in issues.json; the daily job sends each issue once.

Every file is written whole or not at all, owner-only (core/files.py). The caller holds the archive's lock
(core/home.py `churn_archive_lock`) while it writes.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from core import files, render
from core.settings import Limits
from reports import churn
from reports.data import ReportData, ReportError, fingerprint, months_to_report, parse_month
from reports.labels import label, words
from reports.summary import as_html

INDEX_TEMPLATE = "reports/templates/churn_index.html.j2"
MANIFEST = "issues.json"
MONTH_FOLDER = re.compile(r"\d{4}-\d{2}")


@dataclass
class Archived:
    """What archiving one month did."""

    month: date
    action: str  # issued | reissued | completed | kept | provisional
    issue: int | None  # None: provisional
    provisional: bool
    written: list[Path] = field(default_factory=list)  # files written by this run
    current: dict = field(default_factory=dict)  # the month's current issue (issues.json `current`)
    folder: Path | None = None

    def files(self, kind: str) -> dict[str, Path]:
        """The current issue's files of one kind (`html`, `pdf`) by language."""
        return {lang: self.folder / entry[kind] for lang, entry in self.current.get("langs", {}).items()
                if entry.get(kind)}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def month_folder(root: Path, month: date) -> Path:
    return Path(root) / render.month_iso(month)


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _write_manifest(folder: Path, manifest: dict) -> None:
    files.write_text(folder / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def _figures(data: ReportData) -> dict:
    row = data.current
    return {"mrr": row.get("end_mrr"), "customers": row.get("customers_end"),
            "data_cutoff": data.cutoff_date.isoformat() if data.cutoff_date else None}


def _complete(folder: Path, current: dict, lang: str, pdf: bool) -> bool:
    """The current issue has this language's files on disk (and a PDF, if one is asked for)."""
    entry = current.get("langs", {}).get(lang)
    if not entry or not (folder / entry["html"]).exists():
        return False
    return not pdf or bool(entry.get("pdf") and (folder / entry["pdf"]).exists())


def _retire(folder: Path, current: dict) -> dict:
    """Keep a closed month's superseded issue under its number: churn-YYYY-MM.en.issue-1.pdf."""
    issue = current["issue"]
    retired = {**current, "superseded_at": _now(), "langs": {}}
    for lang, entry in current.get("langs", {}).items():
        kept = {**entry}
        for kind in ("html", "pdf"):
            name = entry.get(kind)
            if not name:
                continue
            stem, suffix = name.rsplit(".", 1)
            new_name = f"{stem}.issue-{issue}.{suffix}"
            if (folder / name).exists():
                os.replace(folder / name, folder / new_name)
            kept[kind] = new_name
        retired["langs"][lang] = kept
    files.sync_folder(folder)
    return retired


def archive_month(data: ReportData, root: Path, *, controller: str, langs: tuple[str, ...], pdf: bool = True,
                  report_checks: frozenset[str] | None = None) -> Archived:
    """Archive `data`'s month in `langs`: write what is new, keep what is issued. See the module's docstring."""
    folder = month_folder(root, data.month)
    files.private_folder(folder)
    manifest = read_manifest(folder)
    current = manifest.get("current") or {}
    earlier = manifest.get("earlier", [])
    figures_now = fingerprint(data)
    if data.partial:
        if current and not current.get("provisional"):
            raise ReportError(f"{folder.name} is archived as a closed month, but the data now ends on "
                              f"{data.cutoff_date}, before its last day: was an older analytics database "
                              "published? The archived report is left as it is.")
        action = "provisional"
        current = {**current, "issue": None, "provisional": True, "fingerprint": figures_now,
                   "issued_at": current.get("issued_at") or _now(), "figures": _figures(data),
                   "langs": current.get("langs", {}), "sent": []}
        todo = list(langs)
    elif current and not current.get("provisional") and current.get("fingerprint") == figures_now:
        todo = [lang for lang in langs if not _complete(folder, current, lang, pdf)]
        action = "completed" if todo else "kept"
    else:
        action = "issued"
        if current and not current.get("provisional"):
            earlier = [*earlier, _retire(folder, current)]
            action = "reissued"
        elif current:  # the month's provisional report ends with the month: its files go
            for entry in current.get("langs", {}).values():
                for kind in ("html", "pdf"):
                    if entry.get(kind) and entry[kind] not in _names(data.month, langs):
                        (folder / entry[kind]).unlink(missing_ok=True)
        number = max([e["issue"] for e in earlier if e.get("issue")] + [0]) + 1
        current = {"issue": number, "provisional": False, "fingerprint": figures_now, "issued_at": _now(),
                   "figures": _figures(data), "langs": {}, "sent": []}
        # The earlier issue's move is recorded before the new files take the names.
        _write_manifest(folder, {"month": render.month_iso(data.month), "current": current, "earlier": earlier})
        todo = list(langs)
    written: list[Path] = []
    for lang in todo:
        rendered = churn.render_month(data, lang, controller, report_checks)
        paths = churn.write(rendered, folder, pdf=pdf)
        written += paths.values()
        current.setdefault("langs", {})[lang] = {
            "html": paths["html"].name, "pdf": paths["pdf"].name if "pdf" in paths else None,
            "summary": rendered.summary, "written_at": _now()}
    if todo or action == "provisional":
        if action == "provisional":
            current["updated_at"] = _now()
        _write_manifest(folder, {"month": render.month_iso(data.month), "current": current, "earlier": earlier})
    return Archived(data.month, action, current.get("issue"), bool(current.get("provisional")), written, current,
                    folder)


def _names(month: date, langs: tuple[str, ...]) -> set[str]:
    stem = f"churn-{render.month_iso(month)}"
    return {f"{stem}.{lang}.{kind}" for lang in langs for kind in ("html", "pdf")}


def archive(analytics: Path, root: Path, *, controller: str, months: list[str | date | None],
            langs: tuple[str, ...], pdf: bool = True, limits: Limits | None = None,
            report_checks: frozenset[str] | None = None, closed_only: bool = False) -> list[Archived]:
    """Archive each of `months` (None: the latest closed month) from the analytics database; rewrite the index.
    `closed_only` (a report to be e-mailed): a running month is refused before anything is rendered."""
    done = []
    for month in months:
        data = churn.read(analytics, month, limits)
        if closed_only and data.partial:
            raise ReportError(f"{render.month_iso(data.month)} is still running (data up to {data.cutoff_date}): "
                              "only a closed month's report is e-mailed; its figures change until the month has "
                              "closed")
        done.append(archive_month(data, root, controller=controller, langs=langs, pdf=pdf,
                                  report_checks=report_checks))
    return done


def months_due(analytics: Path, limits: Limits | None = None) -> list[date]:
    """What the daily job archives: the latest closed month, and the running month if there is one."""
    from core.db import connect

    con = connect(analytics, read_only=True, limits=limits)
    try:
        closed, running = months_to_report(con)
    finally:
        con.close()
    return [closed] + ([running] if running else [])


def mark_sent(folder: Path, *, message_id: str, recipients: int, langs: list[str]) -> dict:
    """Record that the month's current issue was e-mailed (never to whom: the count is enough here)."""
    manifest = read_manifest(folder)
    current = manifest["current"]
    current.setdefault("sent", []).append({"at": _now(), "recipients": recipients, "message_id": message_id,
                                           "langs": langs})
    _write_manifest(folder, manifest)
    return current


def current_issue(root: Path, month: date) -> tuple[Path, dict]:
    """(the month's folder, its current issue) from the archive; an empty issue if it has none."""
    folder = month_folder(root, month)
    return folder, read_manifest(folder).get("current") or {}


# --- the index ------------------------------------------------------------------------------------------------
def _when(text: str | None, lang: str) -> str:
    return render.timestamp(datetime.fromisoformat(text), lang) if text else render.DASH


def _links(folder_name: str, issue: dict, lang: str) -> list[dict]:
    """Links to an issue's files, the page's language first."""
    out = []
    entries = issue.get("langs", {})
    for code in sorted(entries, key=lambda c: (c != lang, c)):
        entry = entries[code]
        out.append({"lang": code, "other": code != lang,
                    "html": f"{folder_name}/{entry['html']}" if entry.get("html") else None,
                    "pdf": f"{folder_name}/{entry['pdf']}" if entry.get("pdf") else None})
    return out


def _index_rows(root: Path, lang: str) -> list[dict]:
    rows = []
    folders = sorted((p for p in Path(root).iterdir() if p.is_dir() and MONTH_FOLDER.fullmatch(p.name)),
                     reverse=True) if Path(root).is_dir() else []
    for folder in folders:
        manifest = read_manifest(folder)
        current = manifest.get("current")
        if not current:
            continue
        month = parse_month(folder.name)
        entry = current.get("langs", {})
        summary = (entry.get(lang) or next(iter(entry.values()), {})).get("summary")
        sent = current.get("sent") or []
        figures = current.get("figures") or {}
        cutoff = date.fromisoformat(figures["data_cutoff"]) if figures.get("data_cutoff") else None
        if current.get("provisional"):
            status = label("index_provisional", lang, date=render.long_date(cutoff, lang))
        elif manifest.get("earlier"):
            status = label("index_reissued", lang, n=current.get("issue"))
        else:
            status = label("index_closed", lang)
        rows.append({
            "month": render.month_name(month, lang), "iso": folder.name,
            "provisional": bool(current.get("provisional")),
            "status": status, "summary": as_html(summary) if summary else None,
            "summary_lang": lang if entry.get(lang) else next(iter(entry), lang),
            "mrr": render.money(figures.get("mrr"), lang), "customers": render.integer(figures.get("customers"), lang),
            "links": _links(folder.name, current, lang),
            "issued": _when(current.get("updated_at") or current.get("issued_at"), lang),
            "sent": label("index_sent", lang, when=_when(sent[-1]["at"], lang),
                          n=render.integer(sent[-1]["recipients"], lang)) if sent else None,
            "earlier": [{"issue": e.get("issue"), "issued": _when(e.get("issued_at"), lang),
                         "links": _links(folder.name, e, lang)} for e in reversed(manifest.get("earlier", []))],
        })
    return rows


def write_index(root: Path, *, controller: str, langs: tuple[str, ...] = ("en", "fi")) -> list[Path]:
    """index.<lang>.html: every archived month, newest first, with its status, summary and files."""
    written = []
    for lang in langs:
        written.append(render.write_page(
            Path(root) / f"index.{lang}.html", INDEX_TEMPLATE, lang=lang, t=words(lang), controller=controller,
            rows=_index_rows(root, lang), other_index=f"index.{'fi' if lang == 'en' else 'en'}.html",
            generated_at=render.timestamp(datetime.now(UTC), lang)))
    return written
