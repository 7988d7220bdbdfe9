"""Profile changes by the owner (API.md "Accounts": PATCH /me): nickname and bio."""

from __future__ import annotations

from functools import partial

from passport.accounts.service import clean_bio, clean_nickname, get, view
from passport.agreements import service as agreements
from passport.audit import service as audit
from passport.runtime import Runtime
from passport.sessions import service as sessions
from passport.work import unit_of_work


def update_profile(rt: Runtime, origin: audit.Origin, account_id: str, *, nickname: str | None,
                   bio: str | None, bio_given: bool) -> dict:
    changes: dict[str, object] = {}
    if nickname is not None:
        changes["nickname"] = clean_nickname(nickname)
    if bio_given:
        changes["bio"] = clean_bio(bio)
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        account = get(work.db, account_id)
        for key, value in changes.items():
            setattr(account, key, value)
        if changes:
            account.updated_at = work.at
            work.audit("account.profile_updated", subject=("account", account_id), details={"fields": sorted(changes)})
        result = view(rt, account, agreements.pending_for(rt, work.db, account_id))
        work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))
    return result
