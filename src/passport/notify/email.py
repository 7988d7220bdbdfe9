"""Email senders behind one interface, chosen by ``PASSPORT_EMAIL_BACKEND``.

``outbox`` (dev and test only) appends one JSON object per message to
``$PASSPORT_DATA_DIR/outbox/email.jsonl``; ``smtp`` delivers through an SMTP server (notify/smtp.py).
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from passport.clock import rfc3339
from passport.notify.sms import SendResult


@dataclass(frozen=True)
class EmailMessage:
    to: str
    purpose: str
    subject: str
    text: str
    code: str | None = None


class EmailSender(Protocol):
    name: str

    def send(self, message: EmailMessage, sent_at: datetime) -> SendResult: ...


class OutboxEmail:
    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.path = directory / "email.jsonl"

    def send(self, message: EmailMessage, sent_at: datetime) -> SendResult:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(message) | {"sent_at": rfc3339(sent_at)}, ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(line)
        return SendResult(self.name, None)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


def make_email_sender(settings, outbox_dir: Path) -> EmailSender:
    if settings.email_backend == "smtp":
        from passport.notify.smtp import SmtpEmail

        return SmtpEmail.from_settings(settings)
    if not settings.is_dev:
        raise RuntimeError("the email outbox is for dev and test only")
    return OutboxEmail(outbox_dir)
