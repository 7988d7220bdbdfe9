"""SMS senders behind one interface, chosen by ``PASSPORT_SMS_BACKEND``.

``outbox`` (dev and test only) appends one JSON object per message to
``$PASSPORT_DATA_DIR/outbox/sms.jsonl``; ``aliyun`` sends through Alibaba Cloud SMS.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from passport.clock import rfc3339


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164, e.g. +8613812345678
    purpose: str
    text: str
    code: str | None = None  # the template variable for verification-code templates
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider: str
    message_id: str | None


class SmsError(RuntimeError):
    """The provider refused or could not be reached; ``retryable`` tells the worker what to do."""

    def __init__(self, message: str, *, retryable: bool, provider_code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.provider_code = provider_code


class SmsSender(Protocol):
    name: str

    def send(self, message: SmsMessage, sent_at: datetime) -> SendResult: ...


class JsonLinesOutbox:
    """Dev and test delivery: one JSON object per message appended to ``<outbox dir>/<filename>``,
    read back by the /dev/outbox page and the tests."""

    name = "outbox"
    filename = "messages.jsonl"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.filename

    def send(self, message, sent_at: datetime) -> SendResult:
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


class OutboxSms(JsonLinesOutbox):
    filename = "sms.jsonl"
