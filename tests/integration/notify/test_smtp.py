"""Email over SMTP against a real aiosmtpd server on loopback: the bind_email code arrives and
verifies; 4xx, 5xx and network failures are told apart; TLS (STARTTLS, implicit) and AUTH work;
neither the code nor the full address reaches a log."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import logging
import re
import socket
import ssl
import time
import uuid

import pytest
import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from passport.senders import make_email_sender
from passport.senders.email import EmailMessage
from passport.senders.smtp import SmtpEmail, SmtpError
from passport.settings import Settings
from passport_testing import STRONG_PASSWORD, bearer, free_port, make_settings, register_account

CODE = re.compile(r"验证码 (\d{6})")
MAILER_LOGIN, MAILER_PASSWORD = "mailer", "Mailer!pass-42"


class Inbox:
    """An aiosmtpd handler that keeps what it receives, or answers with a set reply."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_reply:
            return self.data_reply
        self.received.append({
            "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
            "message": email.message_from_bytes(envelope.original_content or envelope.content,
                                                policy=email.policy.default),
            "tls": server.transport.get_extra_info("sslcontext") is not None,
            "authenticated": bool(session.authenticated),
        })
        return "250 Message accepted for delivery"

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{count} message(s) expected, {len(self.received)} arrived"
            time.sleep(0.02)
        return self.received


def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        MAILER_LOGIN.encode(), MAILER_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # False: the server answers 535 itself


@pytest.fixture()
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture()
def smtp_server(inbox):
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (server SSL context, certificate file)."""
    directory = tmp_path_factory.mktemp("smtp-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


def smtp_settings(rt, port: int, **overrides) -> Settings:
    values = dict(email_backend="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                  smtp_timeout_seconds=5.0)
    return make_settings(rt.settings.data_dir, **(values | overrides))


def message(to: str, code: str = "314159") -> EmailMessage:
    return EmailMessage(to=to, purpose="bind_email", code=code, subject=f"奥集能验证码 {code}",
                        text=f"【奥集能】您正在绑定邮箱，验证码 {code}，5 分钟内有效。")


def new_address() -> str:
    return f"mail-{uuid.uuid4().hex[:10]}@example.com"


def test_make_email_sender_builds_smtp_from_settings(rt, smtp_server):
    sender = make_email_sender(smtp_settings(rt, smtp_server.port), rt.settings.outbox_dir)
    assert isinstance(sender, SmtpEmail)
    assert (sender.host, sender.port, sender.security) == ("127.0.0.1", smtp_server.port, "none")


def test_bind_email_code_arrives_over_smtp_and_verifies_through_the_api(client, rt, smtp_server, inbox,
                                                                         monkeypatch):
    monkeypatch.setattr(rt, "email", SmtpEmail.from_settings(smtp_settings(rt, smtp_server.port)))
    done = register_account(client, rt)
    token = done["session"]["token"]
    address = new_address()

    asked = client.post("/api/v1/me/email", json={"email": address}, headers=bearer(token))
    assert asked.status_code == 202, asked.text

    [received] = inbox.wait()
    mail = received["message"]
    assert received["rcpt_tos"] == [address] and not received["tls"]
    assert received["mail_from"] == "no-reply@localhost"
    assert mail["To"] == address
    assert mail["Message-ID"].startswith("<") and mail["Message-ID"].endswith("@localhost>")
    assert email.utils.parsedate_to_datetime(mail["Date"]).tzinfo is not None
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_charset() == "utf-8"
    assert str(mail["From"]).startswith("奥集能 passport")  # the display name survives RFC 2047
    body = mail.get_content()
    assert "您正在绑定邮箱" in body and "Your Orginone verification code is" in body
    code = CODE.search(body).group(1)
    assert code in str(mail["Subject"])

    verified = client.post("/api/v1/me/email/verify", json={"code": code}, headers=bearer(token))
    assert verified.status_code == 204, verified.text
    assert client.get("/api/v1/me", headers=bearer(token)).json()["email"] == "m***@example.com"
    login = client.post("/api/v1/sessions", json={"login": address.upper(), "password": STRONG_PASSWORD})
    assert login.status_code == 201, login.text
    assert login.json()["account"]["id"] == done["account"]["id"]


@pytest.mark.parametrize(("where", "reply", "retryable"), [
    ("data", "451 4.7.1 Greylisted, try again later", True),
    ("data", "554 5.7.1 Message rejected as spam", False),
    ("rcpt", "450 4.2.1 Mailbox busy", True),
    ("rcpt", "550 5.1.1 <{to}>: Recipient address rejected", False),
])
def test_server_replies_decide_whether_to_retry(rt, smtp_server, inbox, where, reply, retryable):
    to = new_address()
    setattr(inbox, f"{where}_reply", reply.format(to=to))
    sender = SmtpEmail.from_settings(smtp_settings(rt, smtp_server.port))

    with pytest.raises(SmtpError) as failed:
        sender.send(message(to), rt.clock.now())
    assert failed.value.retryable is retryable
    assert failed.value.code == int(reply[:3])
    assert to not in str(failed.value) and "m***@example.com" in str(failed.value)
    assert "314159" not in str(failed.value)
    assert not inbox.received


def test_connection_refused_is_retryable(rt):
    sender = SmtpEmail.from_settings(smtp_settings(rt, free_port()))  # nothing listens there
    with pytest.raises(SmtpError) as failed:
        sender.send(message(new_address()), rt.clock.now())
    assert failed.value.retryable is True and failed.value.code is None


def test_a_server_that_never_greets_times_out_as_retryable(rt):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts the connection; nobody ever speaks
        sender = SmtpEmail.from_settings(smtp_settings(rt, silent.getsockname()[1], smtp_timeout_seconds=0.5))
        started = time.monotonic()
        with pytest.raises(SmtpError) as failed:
            sender.send(message(new_address()), rt.clock.now())
    assert failed.value.retryable is True
    assert time.monotonic() - started < 5


def test_neither_the_code_nor_the_address_reaches_the_logs(client, rt, smtp_server, inbox, monkeypatch, caplog):
    monkeypatch.setattr(rt, "email", SmtpEmail.from_settings(smtp_settings(rt, smtp_server.port)))
    done = register_account(client, rt)
    address = new_address()
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        asked = client.post("/api/v1/me/email", json={"email": address}, headers=bearer(done["session"]["token"]))
        assert asked.status_code == 202
        [received] = inbox.wait()
        code = CODE.search(received["message"].get_content()).group(1)
        inbox.data_reply = "554 5.7.1 Rejected"
        refused_code = "271828"
        rt.dispatch_email(message(address, refused_code))
        deadline = time.monotonic() + 10
        while not any(e["event"] == "notice.failed" for e in events):
            assert time.monotonic() < deadline, "the failed send was not logged"
            time.sleep(0.02)

    sent = [e for e in events if e["event"] == "notice.sent"]
    failed = [e for e in events if e["event"] == "notice.failed"]
    assert sent and sent[0]["to"] == "m***@example.com" and sent[0]["provider"] == "smtp"
    assert failed[0]["to"] == "m***@example.com" and "554" in failed[0]["detail"]
    # aiosmtpd's own logger ("mail.log") is the far side of the conversation, not ours.
    ours = [str(e) for e in events] + [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]
    text = "\n".join(ours)
    assert code not in text and refused_code not in text
    assert address not in text


def test_starttls_with_auth(rt, inbox, certificate):
    context, _cert_file = certificate
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate, auth_required=True)
    controller.start()
    try:
        settings = smtp_settings(rt, controller.port, smtp_security="starttls", smtp_username=MAILER_LOGIN,
                                 smtp_password=MAILER_PASSWORD)
        sender = SmtpEmail.from_settings(settings)
        sender.validate_certs = False  # the certificate is self-signed; only this test trusts it blindly
        result = sender.send(message(new_address()), rt.clock.now())
        [received] = inbox.wait()
        assert received["tls"] and received["authenticated"]
        assert result.message_id == received["message"]["Message-ID"]

        wrong = SmtpEmail.from_settings(settings.model_copy(update={"smtp_password": "Wrong!pass-1"}))
        wrong.validate_certs = False
        with pytest.raises(SmtpError) as refused:
            wrong.send(message(new_address()), rt.clock.now())
        assert refused.value.code == 535 and refused.value.retryable is False
        assert "Wrong!pass-1" not in str(refused.value)

        checked = SmtpEmail.from_settings(settings)  # certificates are verified by default
        with pytest.raises(SmtpError) as untrusted:
            checked.send(message(new_address()), rt.clock.now())
        assert untrusted.value.retryable is False and "certificate" in str(untrusted.value)

        plain = SmtpEmail.from_settings(settings.model_copy(update={"smtp_username": None}))
        plain.security = "none"  # a server that requires STARTTLS refuses mail in clear
        with pytest.raises(SmtpError) as clear:
            plain.send(message(new_address()), rt.clock.now())
        assert clear.value.code == 530 and clear.value.retryable is False
        assert len(inbox.received) == 1
    finally:
        controller.stop()


def test_implicit_tls(rt, inbox, certificate):
    context, _cert_file = certificate
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ssl_context=context)
    controller.start()
    try:
        sender = SmtpEmail.from_settings(smtp_settings(rt, controller.port, smtp_security="tls"))
        sender.validate_certs = False
        sender.send(message(new_address()), rt.clock.now())
        [received] = inbox.wait()
        assert received["tls"]
        assert received["message"].get_content().startswith("【奥集能】")
    finally:
        controller.stop()


def test_prod_refuses_smtp_in_clear_to_another_host(tmp_path):
    key = "A" * 43 + "="
    prod = Settings(env="prod", data_dir=tmp_path, database_url="postgresql://passport@db.invalid/passport",
                    encryption_keys=f"k1:{key}", blind_index_key=key, secret_key=key, audit_keys=f"a1:{key}",
                    sms_backend="aliyun", email_backend="smtp", base_url="https://passport.example.cn",
                    smtp_host="mail.example.cn", smtp_security="none")
    with pytest.raises(RuntimeError, match="in clear"):
        SmtpEmail.from_settings(prod)
    assert SmtpEmail.from_settings(prod.model_copy(update={"smtp_host": "127.0.0.1"})).security == "none"
    assert SmtpEmail.from_settings(prod.model_copy(update={"smtp_security": "tls"})).security == "tls"
