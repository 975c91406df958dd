"""Delivering a closed month's churn report by e-mail: the PDFs attached, the summary in the body.

The mail server, sender and recipients are the installation's, in `<home>/config/mail.yml` (never in the
repository):

    host: smtp.example.fi
    port: 587                       # default: 587 for starttls, 465 for ssl, 25 for none
    security: starttls              # starttls (default) | ssl | none (only without a login)
    sender: raportit@example.fi
    recipients: [johto@example.fi, talous@example.fi]
    username: raportit@example.fi   # optional: without it, no login
    password_file: /etc/warehouse/smtp.password   # owner-only; or WAREHOUSE_SMTP_PASSWORD; or `password:` here
    ca_file: /etc/warehouse/smtp-ca.pem           # optional: a private CA to trust besides the system's
    languages: [fi, en]             # the reports attached and the summaries in the body, in this order
    timeout: 60                     # seconds

The password is taken from WAREHOUSE_SMTP_PASSWORD (read by core/settings.py only), else from
`password_file`, else from `password` in mail.yml; a file that holds it must be readable by its owner only,
or it is refused. It is never logged, and no error message carries it.
"""

from __future__ import annotations

import smtplib
import ssl
import stat
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import yaml

from core import render
from reports.archive import Archived, mark_sent
from reports.labels import label

SECURITY_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
KEYS = {"host", "port", "security", "sender", "recipients", "username", "password", "password_file", "ca_file",
        "languages", "timeout"}


class MailError(Exception):
    """The report cannot be mailed: the configuration is wrong or the server refused (never the password)."""


@dataclass(frozen=True)
class MailConfig:
    host: str
    port: int
    security: str
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    languages: tuple[str, ...] = ("fi", "en")
    timeout: float = 60.0


def _owner_only(path: Path) -> bool:
    return not stat.S_IMODE(path.stat().st_mode) & 0o077


def load_config(path: Path, *, password: str | None = None) -> MailConfig:
    """The mail configuration at `path`; `password` (the environment's, through the settings) wins over files."""
    path = Path(path)
    if not path.exists():
        raise MailError(f"no mail configuration at {path}: see `warehouse report churn --help` and the README")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MailError(f"{path} cannot be read as YAML: {type(exc).__name__}") from None
    if not isinstance(raw, dict):
        raise MailError(f"{path} must be a mapping of settings")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise MailError(f"{path}: unknown settings {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")
    if "password" in raw and not _owner_only(path):
        raise MailError(f"{path} holds a password and others can read it: `chmod 600` it, or move the password "
                        "to a password_file or WAREHOUSE_SMTP_PASSWORD")
    missing = [key for key in ("host", "sender", "recipients") if not raw.get(key)]
    if missing:
        raise MailError(f"{path}: {', '.join(missing)} missing")
    security = str(raw.get("security", "starttls"))
    if security not in SECURITY_PORTS:
        raise MailError(f"{path}: security must be one of {', '.join(SECURITY_PORTS)}, not {security!r}")
    recipients = raw["recipients"]
    recipients = (recipients,) if isinstance(recipients, str) else tuple(str(r) for r in recipients)
    if not all("@" in r for r in (*recipients, str(raw["sender"]))):
        raise MailError(f"{path}: sender and recipients must be e-mail addresses")
    languages = tuple(raw.get("languages") or ("fi", "en"))
    for lang in languages:
        render.check_lang(lang)
    secret = password
    if secret is None and raw.get("password_file"):
        secret_path = Path(str(raw["password_file"])).expanduser()
        if not secret_path.is_file():
            raise MailError(f"{path}: password_file {secret_path} does not exist")
        if not _owner_only(secret_path):
            raise MailError(f"the password file {secret_path} can be read by others: `chmod 600` it")
        secret = secret_path.read_text(encoding="utf-8").strip()
    if secret is None and raw.get("password") is not None:
        secret = str(raw["password"])
    username = str(raw["username"]) if raw.get("username") else None
    if username and not secret:
        raise MailError(f"{path}: a username without a password (password_file, WAREHOUSE_SMTP_PASSWORD)")
    if username and security == "none":
        raise MailError(f"{path}: a login without TLS would send the password in clear: use starttls or ssl")
    ca_file = Path(str(raw["ca_file"])).expanduser() if raw.get("ca_file") else None
    if ca_file and not ca_file.is_file():
        raise MailError(f"{path}: ca_file {ca_file} does not exist")
    try:
        port = int(raw.get("port") or SECURITY_PORTS[security])
        timeout = float(raw.get("timeout") or 60)
    except (TypeError, ValueError):
        raise MailError(f"{path}: port and timeout must be numbers") from None
    return MailConfig(host=str(raw["host"]), port=port, security=security, sender=str(raw["sender"]),
                      recipients=recipients, username=username, password=secret if username else None,
                      ca_file=ca_file, languages=languages, timeout=timeout)


@dataclass(frozen=True)
class Letter:
    """One language's part of the e-mail: the month's summary from the archived issue and its PDF."""

    lang: str
    heading: str
    summary: str
    note: str | None
    pdf: Path


def compose(config: MailConfig, letters: list[Letter], subject: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=config.sender.rsplit("@", 1)[-1])
    parts = []
    for letter in letters:
        lines = [letter.heading, "", letter.summary]
        if letter.note:
            lines += ["", letter.note]
        parts.append("\n".join(lines))
    message.set_content("\n\n---\n\n".join(parts) + "\n")
    for letter in letters:
        message.add_attachment(letter.pdf.read_bytes(), maintype="application", subtype="pdf",
                               filename=letter.pdf.name)
    return message


def send(config: MailConfig, message: EmailMessage) -> int:
    """Send through the configured server, TLS verified against the system's CAs (and `ca_file`); how many
    recipients the server refused (the others got it). Raises MailError when nobody got it."""
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if config.ca_file:
        context.load_default_certs()
    where = f"{config.host}:{config.port}"
    try:
        if config.security == "ssl":
            server = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=context)
        else:
            server = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with server:
            if config.security == "starttls":
                server.starttls(context=context)
            if config.username:
                server.login(config.username, config.password or "")
            refused = server.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"the mail server {where} refused the login ({exc.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"the mail server {where} refused every recipient "
                        f"({len(exc.recipients)} of {len(config.recipients)})") from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"the mail server {where} answered {exc.smtp_code}: "
                        f"{_text(exc.smtp_error)[:200]}") from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise MailError(f"could not send through {where}: {type(exc).__name__}: {_text(exc)[:200]}") from None
    return len(refused)


def _text(value) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())


@dataclass(frozen=True)
class Sent:
    month: str
    issue: int
    recipients: int  # who the server accepted
    refused: int
    attachments: tuple[Path, ...]
    message_id: str


def deliver(archived: Archived, config: MailConfig, *, controller: str) -> Sent:
    """E-mail a closed month's archived report: its PDFs attached, the summary of each language in the body,
    the month in the subject; then mark the issue sent in the archive. Only a closed month is sent."""
    month = render.month_iso(archived.month)
    if archived.provisional:  # archive(closed_only=True) refuses the running month before it is rendered
        raise MailError(f"{month} is provisional: only a closed month's report is e-mailed")
    pdfs = archived.files("pdf")
    missing = [lang for lang in config.languages if lang not in pdfs or not pdfs[lang].exists()]
    if missing:
        raise MailError(f"the archive has no PDF of {month} in {', '.join(missing)}")
    issue = archived.issue or 1
    letters = []
    for lang in config.languages:
        forms = render.month_forms(archived.month, lang)
        cutoff = (archived.current.get("figures") or {}).get("data_cutoff")
        notes = [label("mail_attached", lang, file=pdfs[lang].name, cutoff=render.long_date(
            date.fromisoformat(cutoff), lang) if cutoff else render.DASH)]
        if issue > 1:
            notes.insert(0, label("mail_reissue_note", lang, **forms))
        letters.append(Letter(lang, label("mail_heading", lang, controller=controller, **forms),
                              archived.current["langs"][lang]["summary"], "\n\n".join(notes), pdfs[lang]))
    subject = " / ".join(label("mail_subject", lang, month=render.month_name(archived.month, lang))
                         for lang in config.languages)
    if issue > 1:
        subject += f" ({label('mail_reissued', config.languages[0])})"
    message = compose(config, letters, f"{subject} — {controller}")
    refused = send(config, message)
    accepted = len(config.recipients) - refused
    mark_sent(archived.folder, message_id=message["Message-ID"], recipients=accepted,
              langs=list(config.languages))
    return Sent(month, issue, accepted, refused, tuple(letter.pdf for letter in letters), message["Message-ID"])
