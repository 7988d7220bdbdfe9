"""Marketing messages: the optional ``marketing`` purpose switched on and off, and the one-click
unsubscribe link of every marketing message (PIPL Art. 15: withdrawing is as easy as granting)."""

from __future__ import annotations

from passport.accounts import service as accounts
from passport.agreements import service as agreements
from passport.audit import service as audit
from passport.notify.outbox import account_of_unsubscribe_token, marketing_enabled, withdraw_queued_marketing
from passport.runtime import Runtime


def preferences(rt: Runtime, account_id: str) -> dict:
    with rt.db.read() as db:
        return {"service": True, "marketing": marketing_enabled(db, account_id)}


def set_marketing(rt: Runtime, origin: audit.Origin, account_id: str, granted: bool) -> dict:
    """Grant or withdraw marketing messages in the consent ledger (agreements); withdrawing is as easy
    as granting (PIPL Art. 15) and costs nothing of the core service."""
    with rt.db.write() as db:
        accounts.get(db, account_id)
        agreements.set_purpose(rt, db, account_id, "marketing", granted, origin)
        if not granted:
            withdraw_queued_marketing(rt, db, account_id, origin)
        return {"service": True, "marketing": marketing_enabled(db, account_id)}


def unsubscribe(rt: Runtime, origin: audit.Origin, token: str | None) -> None:
    """One click from a marketing message, no login: the signed token names the account."""
    set_marketing(rt, origin, account_of_unsubscribe_token(rt, token), False)

