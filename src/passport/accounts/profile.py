"""Profile changes by the owner (API.md "Accounts": PATCH /me): nickname and bio."""

from __future__ import annotations

from passport.accounts.service import clean_bio, clean_nickname, get, view
from passport.agreements import service as agreements
from passport.audit import service as audit
from passport.runtime import Runtime
from passport.sessions import service as sessions


def update_profile(rt: Runtime, origin: audit.Origin, account_id: str, *, nickname: str | None,
                   bio: str | None, bio_given: bool) -> dict:
    changes: dict[str, object] = {}
    if nickname is not None:
        changes["nickname"] = clean_nickname(nickname)
    if bio_given:
        changes["bio"] = clean_bio(bio)
    now = rt.clock.now()
    with rt.db.write() as db:
        account = get(db, account_id)
        for key, value in changes.items():
            setattr(account, key, value)
        if changes:
            account.updated_at = now
            audit.record(db, at=now, action="account.profile_updated", origin=origin, actor_type="user",
                         actor_id=account_id, subject_type="account", subject_id=account_id,
                         details={"fields": sorted(changes)})
        result = view(rt, account, agreements.pending_for(rt, db, account_id))
    sessions.forget_sessions(rt, account_id=account_id)
    return result
