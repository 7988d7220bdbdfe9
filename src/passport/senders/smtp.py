"""SMTP delivery with aiosmtplib, for PASSPORT_EMAIL_BACKEND=smtp.

``PASSPORT_SMTP_SECURITY``: ``tls`` (implicit TLS, port 465), ``starttls`` (port 587; the upgrade is
required, never skipped) or ``none`` (a relay on this machine or a trusted network). AUTH is used
when ``PASSPORT_SMTP_USERNAME`` is set. Every failure becomes an ``SmtpError`` whose ``retryable``
says whether a later attempt can succeed: 4xx replies and network trouble yes, 5xx replies no.
Messages name the recipient masked and never carry the code.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib

from passport.identity.email import mask_email
from passport.identity.masking import mask_text
from passport.senders.email import EmailMessage
from passport.senders.sms import SendResult

SECURITY = ("starttls", "tls", "none")


class SmtpError(RuntimeError):
    """Delivery failed. ``retryable``: a later attempt may succeed (4xx, network); ``code``: the
    server's reply code, when it gave one."""

    def __init__(self, message: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpEmail:
    name = "smtp"

    def __init__(self, *, host: str, port: int, security: str, sender: str, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0, validate_certs: bool = True,
                 tls_context: ssl.SSLContext | None = None) -> None:
        if security not in SECURITY:
            raise ValueError(f"SMTP security must be one of {', '.join(SECURITY)}, not {security!r}")
        if not parseaddr(sender)[1]:
            raise ValueError(f"the email sender {sender!r} has no address")
        self.host, self.port, self.security, self.sender = host, port, security, sender
        self.username, self._password, self.timeout = username or None, password, timeout
        self.validate_certs = validate_certs
        self.tls_context = tls_context

    @classmethod
    def from_settings(cls, settings) -> SmtpEmail:
        # Codes and passwords must not cross a network in clear: "none" is for a relay on this host.
        if not settings.is_dev and settings.smtp_security == "none" and not _is_loopback(settings.smtp_host):
            raise RuntimeError(f"PASSPORT_SMTP_SECURITY=none sends codes in clear to {settings.smtp_host}; "
                               "use starttls or tls, or a relay on this host")
        return cls(host=settings.smtp_host, port=settings.smtp_port, security=settings.smtp_security,
                   sender=settings.email_from, username=settings.smtp_username,
                   password=settings.secret("smtp_password"), timeout=settings.smtp_timeout_seconds)

    def __repr__(self) -> str:
        return f"SmtpEmail({self.host}:{self.port}, {self.security})"

    def build(self, message: EmailMessage, sent_at: datetime) -> MimeMessage:
        """A UTF-8 text message; headers with Chinese are RFC 2047 encoded, the body base64, so any
        server carries it (no 8BITMIME needed)."""
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or None
        mime = MimeMessage()
        mime["From"] = self.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(sent_at)
        mime["Message-ID"] = make_msgid(domain=domain)
        mime["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to a no-reply sender
        for name, value in message.headers.items():
            mime[name] = value
        mime.set_content(message.text, charset="utf-8", cte="base64")
        return mime

    def send(self, message: EmailMessage, sent_at: datetime) -> SendResult:
        mime = self.build(message, sent_at)
        masked = mask_email(message.to)
        try:
            _run(self._deliver(mime))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            raise _reply_error(min(codes, default=550), f"recipient {masked} refused",
                               "; ".join(r.message for r in exc.recipients)) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _reply_error(exc.code, f"sending to {masked}", exc.message) from None
        except aiosmtplib.SMTPNotSupported as exc:
            # e.g. no STARTTLS or AUTH on the server: a configuration problem, not a passing one.
            raise SmtpError(f"SMTP server {self.host}:{self.port} lacks a feature for {masked}: "
                            f"{mask_text(str(exc))}", retryable=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise SmtpError(f"SMTP server {self.host}:{self.port} certificate refused ({exc.verify_message}) "
                            f"for {masked}", retryable=False) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            raise SmtpError(f"SMTP server {self.host}:{self.port} unreachable for {masked}: {type(exc).__name__}",
                            retryable=True) from None
        return SendResult(self.name, mime["Message-ID"])

    async def _deliver(self, mime: MimeMessage) -> None:
        # aiosmtplib's timeout bounds each step; this bounds the whole conversation.
        async with asyncio.timeout(self.timeout * 3):
            await aiosmtplib.send(
                mime, hostname=self.host, port=self.port, username=self.username,
                password=self._password if self.username else None, timeout=self.timeout,
                use_tls=self.security == "tls",
                # False, not None: None would upgrade only when the server offers it.
                start_tls=self.security == "starttls",
                validate_certs=self.validate_certs, tls_context=self.tls_context,
            )


def _reply_error(code: int, what: str, reply: str) -> SmtpError:
    # RFC 5321 §4.2.1: 4yz is a transient failure (greylisting, mailbox busy), 5yz a permanent one.
    reply = mask_text(" ".join((reply or "").split()))[:200]
    return SmtpError(f"SMTP {code} {what}: {reply}", retryable=400 <= code < 500, code=code)


_thread_loops = threading.local()


def _run(coroutine) -> None:
    """Run the delivery to its end from synchronous code. A thread with no running loop keeps one
    event loop for all its sends: asyncio.run would build and tear down a loop (and start a thread
    to shut its executor down) for every message, which costs more than the SMTP conversation."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_thread_loops, "loop", None)
        if loop is None or loop.is_closed():
            loop = _thread_loops.loop = asyncio.new_event_loop()
        loop.run_until_complete(coroutine)
        return
    with ThreadPoolExecutor(1, "smtp") as pool:
        pool.submit(asyncio.run, coroutine).result()
