"""Profile changes by the owner (API.md "Accounts": PATCH /me) and their review (API.md "Account-information
review", COMPLIANCE I1): each changed nickname or bio goes through the moderation engine; ``block`` refuses
the request (422 ``account_info_rejected``), ``review`` holds the value for a reviewer (the old one stays
visible until approved), ``allow`` applies it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts.models import Account
from passport.accounts.service import clean_bio, clean_nickname, get, neutral_nickname, refuse_if_restricted, view
from passport.agreements import service as agreements
from passport.audit import service as audit
from passport.moderation import service as moderation
from passport.moderation.engine import Decision
from passport.notify import outbox
from passport.reviews import service as reviews
from passport.runtime import Runtime
from passport.sessions import service as sessions
from passport.work import Work, unit_of_work

QUEUE = "profile"
PENDING_COLUMNS = {"nickname": "nickname_pending", "bio": "bio_pending"}
FIELD_NAMES = {"nickname": {"zh-CN": "昵称", "en": "nickname"}, "bio": {"zh-CN": "简介", "en": "bio"}}
SUPERSEDED = "superseded by a newer change"


def subject_type(field: str) -> str:
    return f"account.{field}"


@dataclass(frozen=True)
class ProfileChange:
    account: dict
    held: list[str]  # the fields waiting for a reviewer (202 when not empty)


def check_fields(rt: Runtime, values: dict[str, str | None]) -> dict[str, Decision]:
    """The engine's decision for each non-empty value; 422 ``account_info_rejected`` naming every
    blocked field."""
    decisions = {field: moderation.check(rt, field, value) for field, value in values.items() if value}
    blocked = {field: d for field, d in decisions.items() if d.verdict == "block"}
    if blocked:
        raise moderation.rejected(blocked)
    return decisions


def update_profile(rt: Runtime, origin: audit.Origin, account_id: str, *, nickname: str | None,
                   bio: str | None, bio_given: bool) -> ProfileChange:
    wanted: dict[str, str | None] = {}
    if nickname is not None:
        wanted["nickname"] = clean_nickname(nickname)
    if bio_given:
        wanted["bio"] = clean_bio(bio)
    with rt.db.read() as db:
        current = get(db, account_id)
        refuse_if_restricted(current, "profile")
        # A value the account already has is no change (the page sends every field); it is not checked again.
        wanted = {field: value for field, value in wanted.items() if value != getattr(current, field)}
    try:
        decisions = check_fields(rt, wanted)
    except errors.DomainError as refused:
        with unit_of_work(rt, origin, actor=("user", account_id)) as work:
            work.audit("account.profile_refused", subject=("account", account_id), result="denied",
                       details={"fields": {e.field: e.category for e in refused.errors}})
        raise
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        account = get(work.db, account_id)
        applied, held = [], []
        for field, value in wanted.items():
            decision = decisions.get(field)
            if decision is not None and decision.verdict == "review":
                hold(work, account, field, value, decision)
                held.append(field)
            else:
                withdraw_pending(work, account, field)
                setattr(account, field, value)
                applied.append(field)
        if applied:
            account.updated_at = work.at
            work.audit("account.profile_updated", subject=("account", account_id), details={"fields": sorted(applied)})
        result = view(rt, account, agreements.pending_for(rt, work.db, account_id))
        work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))
    return ProfileChange(result, held)


def hold(work: Work, account: Account, field: str, value: str, decision: Decision) -> bool:
    """Keep ``value`` for a reviewer, in the caller's unit of work; a change already held for the field
    is withdrawn. False when this very value is already waiting."""
    column = PENDING_COLUMNS[field]
    if getattr(account, column) == value:
        return False
    withdraw_pending(work, account, field)
    setattr(account, column, value)
    payload = {"account_id": account.id, "field": field, "value": value, "current": getattr(account, field),
               "verdict": decision.verdict, "normalized": decision.normalized,
               "hits": [hit.view() for hit in decision.hits], "marks": moderation.marks(decision),
               "strict_review": any(hit.category == "strict_review" for hit in decision.hits)}
    review_id = reviews.enqueue(work.db, QUEUE, subject_type(field), account.id, payload, work.at, work.origin)
    work.audit("account.profile_held", subject=("account", account.id),
               details={"field": field, "review": review_id,
                        "categories": sorted({hit.category for hit in decision.hits})})
    return True


def withdraw_pending(work: Work, account: Account, field: str) -> None:
    column = PENDING_COLUMNS[field]
    if getattr(account, column) is None:
        return
    setattr(account, column, None)
    reviews.withdraw_items(work.db, subject_type(field), [account.id], SUPERSEDED, work.at, work.origin)


RESETTABLE = ("nickname", "bio")


def reset_account_info(rt: Runtime, work: Work, account_id: str, field: str, *, reason: str,
                       staff_id: str | None) -> bool:
    """Staff reset of one piece of account information to its default (§五(一): the platform may
    remove offending information directly), in the caller's unit of work: the nickname becomes the
    neutral one, the bio empty; a change held for the field is withdrawn. The owner is told by in-site
    message with the reason. False when the field already has its default (nothing to reset).

    Every place that removes account information goes through here (the staff reset, a report's
    decision), so the audit event and the notice are the same."""
    if field not in RESETTABLE:
        raise errors.invalid("invalid_field", "Only the nickname or the bio can be reset.", "field")
    reason = (reason or "").strip()
    if not reason:
        raise errors.invalid("reason_required", "Give the reason for the reset; the account is told it.", "reason")
    account = work.db.scalars(select(Account).where(Account.id == account_id).with_for_update()).first()
    if account is None or account.status == "cancelled":
        raise errors.not_found("account")
    default = neutral_nickname(account.id) if field == "nickname" else None
    had_pending = getattr(account, PENDING_COLUMNS[field]) is not None
    withdraw_pending(work, account, field)
    if getattr(account, field) == default and not had_pending:
        return False
    setattr(account, field, default)
    account.updated_at = work.at
    work.audit("account.info_reset", subject=("account", account.id),
               details={"field": field, "reason": reason, "staff": staff_id})
    outbox.notify_account(rt, work.db, account_id=account.id, template="profile_reset",
                          params={"field": FIELD_NAMES[field], "reason": reason}, channels=("inbox",))
    work.after_commit(partial(sessions.forget_sessions, rt, account_id=account.id))
    return True


def erase_pending(db: Session, account_id: str, at, origin: audit.Origin) -> None:
    """Cancellation's finalisation: the held changes' review items close and lose their payload (the
    account's columns are erased by the finalisation itself)."""
    for field in PENDING_COLUMNS:
        reviews.withdraw_items(db, subject_type(field), [account_id], "account cancelled", at, origin)


@reviews.on_decision(QUEUE)
def _profile_decided(rt: Runtime, db: Session, decided: reviews.Decided) -> None:
    field, value = decided.payload.get("field"), decided.payload.get("value")
    if field not in PENDING_COLUMNS or decided.subject_type != subject_type(field):
        return
    account = db.scalars(select(Account).where(Account.id == decided.subject_id).with_for_update()).first()
    column = PENDING_COLUMNS[field]
    if account is None or account.status == "cancelled" or getattr(account, column) != value:
        return
    if decided.decision == "approve" and decided.payload.get("strict_review") and not decided.reason:
        # COMPLIANCE I1: a name that could pass for the state or the party is approved only with a reason.
        raise errors.invalid("reason_required", "This name needs strict review: give a reason for approving it.",
                             "reason")
    setattr(account, column, None)
    origin = audit.Origin(channel="review")
    if decided.decision == "approve":
        setattr(account, field, value)
        account.updated_at = decided.at
        action, template, params = "account.profile_updated", "profile_change_approved", {"field": FIELD_NAMES[field]}
    else:
        action, template = "account.profile_change_rejected", "profile_change_rejected"
        params = {"field": FIELD_NAMES[field], "reason": decided.reason or "—"}
    audit.record(db, at=decided.at, action=action, origin=origin, actor_type="staff", actor_id=decided.staff_id,
                 subject_type="account", subject_id=account.id,
                 details={"fields": [field], "review": decided.review_id, "reason": decided.reason})
    outbox.notify_account(rt, db, account_id=account.id, template=template, params=params, channels=("inbox",))
    decided.after_commit(partial(sessions.forget_sessions, rt, account_id=account.id))
