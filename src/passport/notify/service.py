"""Notices (issue 5): every SMS/email notice is an outbox row written in the caller's transaction and
delivered by the worker with retries; in-site messages land in the inbox at once.

Other domains call ``notify_account`` inside their unit of work; they never send directly.
Templates: one file per template under ``notify/templates/`` (see that directory's README).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from passport.runtime import Runtime

CHANNELS = ("inbox", "sms", "email")


def notify_account(rt: Runtime, db: Session, *, account_id: str, template: str, params: dict[str, Any] | None = None,
                   channels: Iterable[str] = ("inbox", "sms"), category: str = "service") -> None:
    """Queue notice ``template`` for the account by each channel (inbox row now; SMS to its phone and
    email to its verified address through the outbox), in the caller's transaction.
    ``category`` "service" is always sent; "marketing" only with the account's marketing consent."""
    # Issue 5 fills this in.


def deliver_due(rt: Runtime, limit: int = 100) -> int:
    """Worker job: deliver due outbox rows; returns how many were attempted."""
    return 0


def export_account(rt: Runtime, db: Session, account_id: str) -> dict[str, Any]:
    """Issue 8's export: the account's inbox messages and notices (recipients masked)."""
    return {}


def erase_account(rt: Runtime, db: Session, account_id: str) -> None:
    """Issue 8's finalisation: delete the account's inbox and pending outbox rows addressed to it."""
