"""What notify holds about an account: its part of the personal-data export, and its erasure at finalisation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, not_, select
from sqlalchemy.orm import Session

from passport.notify.inbox import message_view
from passport.notify.models import InboxMessage, OutboxNotice
from passport.notify.outbox import DEFAULT_LANGUAGE, marketing_enabled, outbox_view
from passport.runtime import Runtime


def export_account(rt: Runtime, db: Session, account_id: str) -> dict[str, Any]:
    """Issue 8's export: the account's inbox messages and notices (recipients masked)."""
    messages = db.scalars(select(InboxMessage).where(InboxMessage.account_id == account_id)
                          .order_by(InboxMessage.created_at)).all()
    notices = db.scalars(select(OutboxNotice).where(OutboxNotice.account_id == account_id)
                         .order_by(OutboxNotice.id)).all()
    return {
        "messages": [message_view(rt, row, DEFAULT_LANGUAGE) for row in messages],
        "notices": [{key: value for key, value in outbox_view(rt, row).items()
                     if key not in ("account_id", "last_error", "next_attempt_at")} for row in notices],
        "preferences": {"marketing": marketing_enabled(db, account_id)},
    }


def erase_account(rt: Runtime, db: Session, account_id: str) -> None:
    """Issue 8's finalisation: delete the account's inbox and its outbox rows, except the SMS and email
    notices still on their way (issue 16): "cancellation requested", a reminder, a security notice
    queued before the end. They are the owner's to receive; each row holds its own encrypted recipient
    and needs nothing of the account, so the worker sends them after the data is gone (the recipient
    is dropped once sent, the row swept after PASSPORT_NOTICE_RETENTION_DAYS). Marketing, and a notice
    with no recipient of its own (it would look the account up), go."""
    db.execute(delete(InboxMessage).where(InboxMessage.account_id == account_id))
    on_its_way = and_(OutboxNotice.status.in_(("pending", "sending")), OutboxNotice.category != "marketing",
                      OutboxNotice.recipient_enc.is_not(None))
    db.execute(delete(OutboxNotice).where(OutboxNotice.account_id == account_id, not_(on_its_way))
               .execution_options(synchronize_session=False))

