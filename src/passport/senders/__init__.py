"""How SMS and email leave the service: the providers (Aliyun SMS, SMTP) and the dev/test outboxes."""

from __future__ import annotations

from pathlib import Path

from passport.senders.aliyun import AliyunSms
from passport.senders.email import EmailSender, OutboxEmail
from passport.senders.sms import OutboxSms, SmsSender
from passport.senders.smtp import SmtpEmail


def make_sms_sender(settings, outbox_dir: Path) -> SmsSender:
    if settings.sms_backend == "aliyun":
        return AliyunSms.from_settings(settings)
    if not settings.is_dev:
        raise RuntimeError("the SMS outbox is for dev and test only")
    return OutboxSms(outbox_dir)


def make_email_sender(settings, outbox_dir: Path) -> EmailSender:
    if settings.email_backend == "smtp":
        return SmtpEmail.from_settings(settings)
    if not settings.is_dev:
        raise RuntimeError("the email outbox is for dev and test only")
    return OutboxEmail(outbox_dir)
