"""The churn report by e-mail, through a real SMTP server the tests start (aiosmtpd): STARTTLS with a
certificate the configuration trusts, a login, the message as the server received it. Never a mock."""

from __future__ import annotations

import datetime as dt
import email
import html as htmllib
import ipaddress
import json
import re
import shutil
import socket
import ssl
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import cli
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from report_fixture import build_fixture

from core.settings import Settings
from reports.mail import MailError, load_config
from warehouse import pipeline

USER = "raportit@example.fi"
PASSWORD = "Salasana-9f1c7e2b"  # must never appear in a log, the output or the archive
RECIPIENTS = ["johto@example.fi", "talous@example.fi"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (an IP SAN: the name the client checks), its own CA."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Inbox:
    """The server's side: every message it accepted, with its envelope."""

    def __init__(self):
        self.received: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        self.received.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "content": envelope.content, "authenticated": session.authenticated,
                              "login": getattr(session.auth_data, "login", None),
                              "tls": session.ssl is not None})
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
            and auth_data.password == PASSWORD.encode():
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp(certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticator, auth_required=True,
                            auth_require_tls=True)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> Path:
    return build_fixture(tmp_path_factory.mktemp("analytics") / "analytics.duckdb", quality=True)


@pytest.fixture
def home(fixture_db, tmp_path, smtp, certificate) -> Path:
    """A home with published analytics and a mail configuration pointing at the test's server; the password
    in an owner-only file outside mail.yml."""
    root = tmp_path / "home"
    (root / "config").mkdir(parents=True)
    shutil.copy(fixture_db, root / "analytics.duckdb")
    controller, _ = smtp
    secret = tmp_path / "smtp.password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    secret.chmod(0o600)
    (root / "config" / "mail.yml").write_text(
        f"host: 127.0.0.1\nport: {controller.port}\nsecurity: starttls\nsender: {USER}\n"
        f"recipients: [{', '.join(RECIPIENTS)}]\nusername: {USER}\npassword_file: {secret}\n"
        f"ca_file: {certificate[0]}\ntimeout: 20\n", encoding="utf-8")
    return root


def logs(root: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (root / "logs").glob("*") if p.is_file())


def test_a_closed_month_is_mailed_with_its_pdfs_and_summary(home, smtp):
    _, inbox = smtp
    result = cli(home, "report", "churn", "--send", "--month", "2025-05")
    assert result.exit_code == 0, result.output
    assert "E-mailed the churn report of 2025-05 (issue 1) to 2 recipients, 2 PDFs attached" in result.output
    assert len(inbox.received) == 1
    got = inbox.received[0]
    assert got["from"] == USER and got["to"] == RECIPIENTS
    assert got["tls"] and got["authenticated"] and got["login"] == USER.encode()
    message = email.message_from_bytes(got["content"], policy=policy.default)
    assert message["Subject"] == ("Asiakaspoistumaraportti toukokuu 2025 / Customer churn report May 2025 — "
                                  "Local Loop Oy")
    assert message["To"] == ", ".join(RECIPIENTS)
    body = message.get_body(preferencelist=("plain",)).get_content()
    folder = home / "reports" / "churn" / "2025-05"
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert sorted(attachments) == ["churn-2025-05.en.pdf", "churn-2025-05.fi.pdf"]
    for lang in ("fi", "en"):
        # the archived PDF itself, byte for byte, and the summary its page opens with
        assert attachments[f"churn-2025-05.{lang}.pdf"] == (folder / f"churn-2025-05.{lang}.pdf").read_bytes()
        page = (folder / f"churn-2025-05.{lang}.html").read_text(encoding="utf-8")
        summary = htmllib.unescape(re.sub(r"<[^>]+>", "", re.search(r'id="summary">(.*?)</p>', page)[1]))
        assert summary in body, lang
    assert body.index("Toukokuussa 2025") < body.index("In May 2025")  # the configured order: fi, en
    # marked sent in the archive (how many, not who), and in the index
    sent = json.loads((folder / "issues.json").read_text(encoding="utf-8"))["current"]["sent"]
    assert [(s["recipients"], s["message_id"]) for s in sent] == [(2, message["Message-ID"])]
    assert "e-mailed" in (home / "reports" / "churn" / "index.en.html").read_text(encoding="utf-8")
    # the password is nowhere but in its file
    assert PASSWORD not in result.output and PASSWORD not in logs(home)
    assert not any(PASSWORD in p.read_text(encoding="utf-8", errors="replace")
                   for p in (home / "reports").rglob("*") if p.is_file() and p.suffix in (".json", ".html"))
    assert "e-mailed to 2 recipients" in logs(home) and "johto@" not in logs(home)


def test_the_daily_job_sends_each_closed_month_once(home, smtp):
    _, inbox = smtp
    settings = Settings.for_home(home)
    first = pipeline.deliver(settings)  # a run without a report of its own archives the month first
    assert first is not None and (first.month, first.issue, first.recipients) == ("2025-05", 1, 2)
    assert pipeline.deliver(settings) is None  # sent already: nothing goes out again
    # a run whose report step archived the month hands that over; it is the issue sent already
    reported = pipeline.report(settings, langs=("en", "fi"), running=True, pdf=False)
    assert (reported.archived[0].month.isoformat()[:7], reported.archived[0].issue) == ("2025-05", 1)
    assert pipeline.deliver(settings, archived=reported.archived[0]) is None
    assert len(inbox.received) == 1


def test_only_a_closed_month_is_sent(home, smtp):
    _, inbox = smtp
    result = cli(home, "report", "churn", "--send", "--month", "2025-06")
    assert result.exit_code == 3
    assert "2025-06 is still running (data up to 2025-06-18): only a closed month's report is e-mailed" \
           in " ".join(result.output.split())
    assert inbox.received == []


def test_a_refused_login_is_an_error_without_the_password(home, smtp, tmp_path):
    _, inbox = smtp
    wrong = "Vaara-" + PASSWORD
    result = cli(home, "report", "churn", "--send", env={"WAREHOUSE_SMTP_PASSWORD": wrong})  # wins over the file
    assert result.exit_code == 3
    assert "the mail server 127.0.0.1" in result.output and "refused the login (535)" in result.output
    for secret in (wrong, PASSWORD):
        assert secret not in result.output and secret not in logs(home)
    assert inbox.received == []
    folder = home / "reports" / "churn" / "2025-05"
    assert json.loads((folder / "issues.json").read_text(encoding="utf-8"))["current"]["sent"] == []
    # right password from the environment: sent
    assert cli(home, "report", "churn", "--send", env={"WAREHOUSE_SMTP_PASSWORD": PASSWORD}).exit_code == 0
    assert len(inbox.received) == 1


def test_a_password_readable_by_others_is_refused(tmp_path):
    config = tmp_path / "mail.yml"
    config.write_text(f"host: mail.example.fi\nsender: {USER}\nrecipients: [{RECIPIENTS[0]}]\nusername: {USER}\n"
                      f"password: {PASSWORD}\n", encoding="utf-8")
    config.chmod(0o644)
    with pytest.raises(MailError, match="holds a password and others can read it") as refused:
        load_config(config)
    assert PASSWORD not in str(refused.value)
    config.chmod(0o600)
    assert load_config(config).password == PASSWORD
    assert PASSWORD not in repr(load_config(config))
    secret = tmp_path / "smtp.password"
    secret.write_text(PASSWORD, encoding="utf-8")
    secret.chmod(0o640)
    config.write_text(f"host: mail.example.fi\nsender: {USER}\nrecipients: [{RECIPIENTS[0]}]\nusername: {USER}\n"
                      f"password_file: {secret}\n", encoding="utf-8")
    with pytest.raises(MailError, match="can be read by others"):
        load_config(config)
    config.write_text(f"host: mail.example.fi\nsecurity: none\nsender: {USER}\nrecipients: [{RECIPIENTS[0]}]\n"
                      f"username: {USER}\n", encoding="utf-8")
    with pytest.raises(MailError, match="in clear"):
        load_config(config, password=PASSWORD)


def test_send_and_no_pdf_do_not_go_together(home):
    result = cli(home, "report", "churn", "--send", "--no-pdf")
    assert result.exit_code == 2 and "cannot go with --no-pdf" in result.output
