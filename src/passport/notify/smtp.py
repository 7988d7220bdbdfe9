"""SMTP delivery with aiosmtplib (implicit TLS, STARTTLS or plain), for PASSPORT_EMAIL_BACKEND=smtp."""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from passport.identity.email import mask_email
from passport.notify.email import EmailMessage
from passport.notify.sms import SendResult


class SmtpError(RuntimeError):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SmtpEmail:
    name = "smtp"

    def __init__(self, *, host: str, port: int, security: str, sender: str, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0, validate_certs: bool = True) -> None:
        self.host, self.port, self.security, self.sender = host, port, security, sender
        self.username, self._password, self.timeout = username, password, timeout
        self.validate_certs = validate_certs

    @classmethod
    def from_settings(cls, settings) -> SmtpEmail:
        return cls(host=settings.smtp_host, port=settings.smtp_port, security=settings.smtp_security,
                   sender=settings.email_from, username=settings.smtp_username,
                   password=settings.secret("smtp_password"), timeout=settings.smtp_timeout_seconds)

    def __repr__(self) -> str:
        return f"SmtpEmail({self.host}:{self.port}, {self.security})"

    def build(self, message: EmailMessage, sent_at: datetime) -> MimeMessage:
        mime = MimeMessage()
        mime["From"] = self.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(sent_at)
        mime["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2].rstrip(">") or None)
        mime.set_content(message.text)
        return mime

    def send(self, message: EmailMessage, sent_at: datetime) -> SendResult:
        mime = self.build(message, sent_at)
        try:
            asyncio.run(aiosmtplib.send(
                mime, hostname=self.host, port=self.port, username=self.username, password=self._password,
                use_tls=self.security == "tls", start_tls=True if self.security == "starttls" else False,
                timeout=self.timeout, validate_certs=self.validate_certs,
            ))
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx: try again later (greylisting, mailbox busy); 5xx: the server refuses for good.
            raise SmtpError(f"SMTP {exc.code} for {mask_email(message.to)}", retryable=400 <= exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SmtpError(f"SMTP unreachable for {mask_email(message.to)}: {type(exc).__name__}",
                            retryable=True) from None
        return SendResult(self.name, mime["Message-ID"])
