"""The in-site inbox: messages written by ``outbox.notify_account`` at once, read and deleted by their owner."""


from __future__ import annotations

import json

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.audit import service as audit
from passport.clock import rfc3339
from passport.notify.models import InboxMessage
from passport.notify.outbox import DEFAULT_LANGUAGE, Rendered, TemplateError, log, render
from passport.runtime import Runtime


def unread_count(db: Session, account_id: str) -> int:
    return db.scalar(select(func.count()).select_from(InboxMessage)
                     .where(InboxMessage.account_id == account_id, InboxMessage.read_at.is_(None))) or 0


def message_view(rt: Runtime, row: InboxMessage, language: str) -> dict:
    try:
        rendered = render(rt, row.template, json.loads(row.params), language)
    except TemplateError:
        rendered = Rendered(row.template, "")
    return {"id": row.id, "title": rendered.title, "text": rendered.text, "template": row.template,
            "category": row.category, "created_at": rfc3339(row.created_at), "read": row.read_at is not None,
            "read_at": rfc3339(row.read_at)}


def list_messages(rt: Runtime, account_id: str, *, language: str = DEFAULT_LANGUAGE, page: int = 1,
                  per_page: int = 20, unread_only: bool = False) -> dict:
    page, per_page = max(page, 1), min(max(per_page, 1), 100)
    condition = InboxMessage.account_id == account_id
    if unread_only:
        condition &= InboxMessage.read_at.is_(None)
    with rt.db.read() as db:
        rows = db.scalars(select(InboxMessage).where(condition)
                          .order_by(InboxMessage.created_at.desc(), InboxMessage.id.desc())
                          .offset((page - 1) * per_page).limit(per_page + 1)).all()
        unread = unread_count(db, account_id)
        total = db.scalar(select(func.count()).select_from(InboxMessage).where(condition)) or 0
    return {"items": [message_view(rt, row, language) for row in rows[:per_page]], "unread": unread,
            "total": total, "page": page, "per_page": per_page, "has_more": len(rows) > per_page}


def get_message(rt: Runtime, account_id: str, message_id: str, *, language: str = DEFAULT_LANGUAGE) -> dict:
    with rt.db.read() as db:
        row = _own_message(db, account_id, message_id)
        return message_view(rt, row, language)


def _own_message(db: Session, account_id: str, message_id: str) -> InboxMessage:
    row = db.get(InboxMessage, message_id) if message_id and len(message_id) <= 32 else None
    if row is None or row.account_id != account_id:
        raise errors.not_found("message")
    return row


def mark_read(rt: Runtime, origin: audit.Origin, account_id: str, message_id: str) -> None:
    now = rt.clock.now()
    with rt.db.write() as db:
        row = _own_message(db, account_id, message_id)
        if row.read_at is None:
            row.read_at = now
            audit.record(db, at=now, action="inbox.read", origin=origin, actor_type="user", actor_id=account_id,
                         subject_type="account", subject_id=account_id, details={"message": message_id})


def mark_all_read(rt: Runtime, origin: audit.Origin, account_id: str) -> int:
    now = rt.clock.now()
    with rt.db.write() as db:
        count = db.execute(update(InboxMessage).where(InboxMessage.account_id == account_id,
                                                      InboxMessage.read_at.is_(None)).values(read_at=now)).rowcount
        if count:
            audit.record(db, at=now, action="inbox.read_all", origin=origin, actor_type="user", actor_id=account_id,
                         subject_type="account", subject_id=account_id, details={"messages": count})
    return count


def delete_message(rt: Runtime, origin: audit.Origin, account_id: str, message_id: str) -> None:
    now = rt.clock.now()
    with rt.db.write() as db:
        row = _own_message(db, account_id, message_id)
        db.delete(row)
        audit.record(db, at=now, action="inbox.deleted", origin=origin, actor_type="user", actor_id=account_id,
                     subject_type="account", subject_id=account_id,
                     details={"message": message_id, "template": row.template})



def page_unread(rt: Runtime, principal) -> int:
    """The header's unread count: one indexed count for a signed-in viewer, nothing for anonymous."""
    if principal is None:
        return 0
    try:
        with rt.db.connect() as conn:
            return conn.scalar(select(func.count()).select_from(InboxMessage).where(
                InboxMessage.account_id == principal.account_id, InboxMessage.read_at.is_(None))) or 0
    except Exception as exc:  # noqa: BLE001 - the header count never takes a page down
        log.warning("inbox.unread_unavailable", error=type(exc).__name__)
        return 0

