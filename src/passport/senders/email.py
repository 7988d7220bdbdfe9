"""Email senders behind one interface, chosen by ``PASSPORT_EMAIL_BACKEND``.

``outbox`` (dev and test only) appends one JSON object per message to
``$PASSPORT_DATA_DIR/outbox/email.jsonl``; ``smtp`` delivers through an SMTP server (notify/smtp.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from passport.senders.sms import JsonLinesOutbox, SendResult


@dataclass(frozen=True)
class EmailMessage:
    to: str
    purpose: str
    subject: str
    text: str
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # e.g. List-Unsubscribe on marketing messages


class EmailSender(Protocol):
    name: str

    def send(self, message: EmailMessage, sent_at: datetime) -> SendResult: ...


class OutboxEmail(JsonLinesOutbox):
    filename = "email.jsonl"
