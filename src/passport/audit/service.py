"""The audit log: one ``record`` call per state change, in the same transaction as the change."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from passport.audit.models import AuditEvent
from passport.clock import rfc3339
from passport.identity.masking import mask_mapping

GENESIS = "0" * 64
_CHAIN_LOCK = 0x70617373  # "pass": PostgreSQL advisory lock that orders chain appends


@dataclass(frozen=True)
class Origin:
    """Where a request came from: recorded with every audit event and consent."""

    ip: str | None = None
    user_agent: str | None = None
    channel: str = "api"  # api | web | cli | worker


_FIELDS = ("seq", "at", "actor_type", "actor_id", "subject_type", "subject_id", "action", "result", "ip",
           "user_agent", "details", "prev_hash")
_events = AuditEvent.__table__
_LAST = select(_events.c.seq, _events.c.hash).order_by(_events.c.seq.desc()).limit(1)
_INSERT = insert(_events)


def canonical(event) -> bytes:
    """The bytes the hash covers: every field but the hash, as sorted compact JSON."""
    fields = {name: getattr(event, name) if isinstance(event, AuditEvent) else event[name] for name in _FIELDS}
    fields["at"] = rfc3339(fields["at"])
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record(db: Session, *, at: datetime, action: str, origin: Origin, result: str = "ok",
           actor_type: str = "anonymous", actor_id: str | None = None, subject_type: str | None = None,
           subject_id: str | None = None, details: dict[str, Any] | None = None) -> dict:
    """Append one event to the chain, in the caller's transaction. Returns the row as written."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    last = db.execute(_LAST).first()
    row = {
        "seq": (last.seq + 1) if last else 1,
        "at": at, "actor_type": actor_type, "actor_id": actor_id, "subject_type": subject_type,
        "subject_id": subject_id, "action": action, "result": result, "ip": origin.ip,
        "user_agent": (origin.user_agent or "")[:512] or None,
        "details": json.dumps(mask_mapping(details or {}) | {"channel": origin.channel},
                              sort_keys=True, ensure_ascii=False),
        "prev_hash": last.hash if last else GENESIS,
    }
    row["hash"] = hashlib.sha256(canonical(row)).hexdigest()
    db.execute(_INSERT, row)
    return row


def activity_of(db: Session, account_id: str, *, before: int | None = None, limit: int = 50) -> list[dict]:
    """The account's own trail, newest first: what it did and what was done to it (COMPLIANCE C3).
    Page with ``before`` = the smallest ``seq`` of the previous page."""
    condition = (_events.c.actor_id == account_id) | (
        (_events.c.subject_type == "account") & (_events.c.subject_id == account_id))
    if before is not None:
        condition &= _events.c.seq < before
    rows = db.execute(select(_events.c.seq, _events.c.at, _events.c.action, _events.c.result, _events.c.ip,
                             _events.c.user_agent, _events.c.details)
                      .where(condition).order_by(_events.c.seq.desc()).limit(max(1, min(limit, 200)))).all()
    return [{"seq": r.seq, "at": rfc3339(r.at), "action": r.action, "result": r.result, "ip": r.ip,
             "user_agent": r.user_agent, "details": json.loads(r.details)} for r in rows]


def verify_chain(db: Session) -> tuple[bool, int, int | None]:
    """Recompute every hash in order. Returns (ok, records checked, first bad seq)."""
    prev, checked = GENESIS, 0
    for event in db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).yield_per(1000):
        if event.prev_hash != prev or hashlib.sha256(canonical(event)).hexdigest() != event.hash:
            return False, checked, event.seq
        prev, checked = event.hash, checked + 1
    return True, checked, None
