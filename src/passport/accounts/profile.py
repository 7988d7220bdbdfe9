"""Profile changes by the owner (API.md "Accounts": PATCH /me) and their review (API.md "Account-information
review", COMPLIANCE I1): each changed nickname or bio goes through the moderation engine; ``block`` refuses
the request (422 ``account_info_rejected``), ``review`` holds the value for a reviewer (the old one stays
visible until approved), ``allow`` applies it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts.models import Account, Avatar
from passport.accounts.service import clean_bio, clean_nickname, get, neutral_nickname, refuse_if_restricted, view
from passport.agreements import service as agreements
from passport.audit import service as audit
from passport.moderation import images
from passport.moderation import service as moderation
from passport.moderation.engine import Decision, Hit
from passport.notify import outbox
from passport.reviews import service as reviews
from passport.reviews.models import Review
from passport.runtime import Runtime
from passport.sessions import service as sessions
from passport.work import SYSTEM, Work, unit_of_work

QUEUE = "profile"
PENDING_COLUMNS = {"nickname": "nickname_pending", "bio": "bio_pending", "avatar": "avatar_pending_id"}
# Where the value others see lives (an avatar: the id of its approved ``avatars`` row).
SHOWN_COLUMNS = {"nickname": "nickname", "bio": "bio", "avatar": "avatar_id"}
FIELD_NAMES = {"nickname": {"zh-CN": "昵称", "en": "nickname"}, "bio": {"zh-CN": "简介", "en": "bio"},
               "avatar": {"zh-CN": "头像", "en": "avatar"}}
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


def hold(work: Work, account: Account, field: str, value: str, decision: Decision, **extra) -> bool:
    """Keep ``value`` for a reviewer, in the caller's unit of work; a change already held for the field
    is withdrawn. False when this very value is already waiting."""
    column = PENDING_COLUMNS[field]
    if getattr(account, column) == value:
        return False
    withdraw_pending(work, account, field)
    setattr(account, column, value)
    payload = {"account_id": account.id, "field": field, "value": value,
               "current": getattr(account, SHOWN_COLUMNS[field]),
               "verdict": decision.verdict, "normalized": decision.normalized,
               "hits": [hit.view() for hit in decision.hits], "marks": moderation.marks(decision),
               "strict_review": any(hit.category == "strict_review" for hit in decision.hits)} | extra
    review_id = reviews.enqueue(work.db, QUEUE, subject_type(field), account.id, payload, work.at, work.origin)
    work.audit("account.profile_held", subject=("account", account.id),
               details={"field": field, "review": review_id,
                        "categories": sorted({hit.category for hit in decision.hits})})
    return True


def withdraw_pending(work: Work, account: Account, field: str) -> None:
    column = PENDING_COLUMNS[field]
    if getattr(account, column) is None:
        return
    if field == "avatar":
        drop_avatar(work.db, account.avatar_pending_id, "removed", work.at)
    setattr(account, column, None)
    reviews.withdraw_items(work.db, subject_type(field), [account.id], SUPERSEDED, work.at, work.origin)


def drop_avatar(db: Session, avatar_id: str | None, status: str, at: datetime) -> None:
    """An avatar that will never be shown again (replaced, rejected, reset, deleted): its image goes."""
    row = db.get(Avatar, avatar_id) if avatar_id else None
    if row is not None:
        row.status, row.image, row.decided_at = status, None, at


RESETTABLE = ("nickname", "bio", "avatar")


def reset_account_info(rt: Runtime, work: Work, account_id: str, field: str, *, reason: str,
                       staff_id: str | None) -> bool:
    """Staff reset of one piece of account information to its default (§五(一): the platform may
    remove offending information directly), in the caller's unit of work: the nickname becomes the
    neutral one, the bio empty, the avatar none; a change held for the field is withdrawn. The owner is told by in-site
    message with the reason. False when the field already has its default (nothing to reset).

    Every place that removes account information goes through here (the staff reset, a report's
    decision), so the audit event and the notice are the same."""
    if field not in RESETTABLE:
        raise errors.invalid("invalid_field", "Only the nickname, the bio or the avatar can be reset.", "field")
    reason = (reason or "").strip()
    if not reason:
        raise errors.invalid("reason_required", "Give the reason for the reset; the account is told it.", "reason")
    account = work.db.scalars(select(Account).where(Account.id == account_id).with_for_update()).first()
    if account is None or account.status == "cancelled":
        raise errors.not_found("account")
    default = neutral_nickname(account.id) if field == "nickname" else None
    had_pending = getattr(account, PENDING_COLUMNS[field]) is not None
    withdraw_pending(work, account, field)
    shown = SHOWN_COLUMNS[field]
    if getattr(account, shown) == default and not had_pending:
        return False
    if field == "avatar":
        drop_avatar(work.db, account.avatar_id, "removed", work.at)
    setattr(account, shown, default)
    account.updated_at = work.at
    work.audit("account.info_reset", subject=("account", account.id),
               details={"field": field, "reason": reason, "staff": staff_id})
    outbox.notify_account(rt, work.db, account_id=account.id, template="profile_reset",
                          params={"field": FIELD_NAMES[field], "reason": reason}, channels=("inbox",))
    work.after_commit(partial(sessions.forget_sessions, rt, account_id=account.id))
    return True


def erase_pending(db: Session, account_id: str, at, origin: audit.Origin) -> None:
    """Cancellation's finalisation: the held changes' review items close and lose their payload, the
    avatars go (the account's columns are erased by the finalisation itself)."""
    for field in PENDING_COLUMNS:
        reviews.withdraw_items(db, subject_type(field), [account_id], "account cancelled", at, origin)
    db.execute(delete(Avatar).where(Avatar.account_id == account_id))


@reviews.on_decision(QUEUE)
def _profile_decided(rt: Runtime, db: Session, decided: reviews.Decided) -> None:
    field, value = decided.payload.get("field"), decided.payload.get("value")
    if field not in PENDING_COLUMNS or decided.subject_type != subject_type(field):
        return
    if decided.payload.get("rescan"):
        _rescan_decided(rt, db, decided, field, value)
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
        if field == "avatar":
            drop_avatar(db, account.avatar_id, "removed", decided.at)
            row = db.get(Avatar, value)
            if row is not None:
                row.status, row.decided_at = "approved", decided.at
        setattr(account, SHOWN_COLUMNS[field], value)
        account.updated_at = decided.at
        action, template, params = "account.profile_updated", "profile_change_approved", {"field": FIELD_NAMES[field]}
    else:
        if field == "avatar":
            drop_avatar(db, value, "rejected", decided.at)
        action, template = "account.profile_change_rejected", "profile_change_rejected"
        params = {"field": FIELD_NAMES[field], "reason": decided.reason or "—"}
    audit.record(db, at=decided.at, action=action, origin=origin, actor_type="staff", actor_id=decided.staff_id,
                 subject_type="account", subject_id=account.id,
                 details={"fields": [field], "review": decided.review_id, "reason": decided.reason})
    outbox.notify_account(rt, db, account_id=account.id, template=template, params=params, channels=("inbox",))
    decided.after_commit(partial(sessions.forget_sessions, rt, account_id=account.id))


# --- re-checking what accounts already show (``passport review rescan``) -----------------------------------

RESCANNED = ("nickname", "bio")


def rescan(rt: Runtime, origin: audit.Origin, field: str, *, batch: int = 500) -> dict[str, int]:
    """Check every shown nickname or bio against the current lexicons, ``batch`` accounts at a time, and
    send each hit (``review`` or ``block``) to the profile queue as a ``rescan`` item, unless one is
    already pending for the account and field. A reviewer keeps the value (approve) or resets it to its
    default (reject, with the reason the owner is told). Returns the counts."""
    if field not in RESCANNED:
        raise errors.invalid("invalid_field", "The field is nickname, bio, organization_name or text.", "field")
    column = getattr(Account, field)
    counts = {"checked": 0, "review": 0, "block": 0, "queued": 0}
    last = ""
    while True:
        with rt.db.read() as db:
            rows = db.execute(select(Account.id, column).where(Account.id > last, Account.status != "cancelled",
                                                               column.is_not(None))
                              .order_by(Account.id).limit(batch)).all()
        if not rows:
            return counts
        last = rows[-1][0]
        flagged = []
        for account_id, value in rows:
            counts["checked"] += 1
            decision = moderation.check(rt, field, value)
            if decision.verdict != "allow":
                counts[decision.verdict] += 1
                flagged.append((account_id, value, decision))
        if flagged:
            with unit_of_work(rt, origin, actor=SYSTEM) as work:
                pending = set(work.db.scalars(select(Review.subject_id).where(
                    Review.subject_type == subject_type(field), Review.status == "pending",
                    Review.subject_id.in_([a for a, _, _ in flagged]))).all())
                for account_id, value, decision in flagged:
                    if account_id in pending:
                        continue
                    payload = {"account_id": account_id, "field": field, "value": value, "current": value,
                               "rescan": True, "verdict": decision.verdict, "normalized": decision.normalized,
                               "hits": [hit.view() for hit in decision.hits], "marks": moderation.marks(decision),
                               "strict_review": any(h.category == "strict_review" for h in decision.hits)}
                    reviews.enqueue(work.db, QUEUE, subject_type(field), account_id, payload, work.at, work.origin)
                    counts["queued"] += 1
                work.audit("review.rescanned", details={"field": field, "flagged": len(flagged)})


def _rescan_decided(rt: Runtime, db: Session, decided: reviews.Decided, field: str, value: str) -> None:
    """A rescan item decided: approve keeps the value; reject resets it to its default (§五(一)), as a
    staff reset would, unless the owner changed it meanwhile."""
    account = db.scalars(select(Account).where(Account.id == decided.subject_id).with_for_update()).first()
    if account is None or account.status == "cancelled" or getattr(account, field) != value:
        return
    origin = audit.Origin(channel="review")
    if decided.decision == "approve":
        audit.record(db, at=decided.at, action="account.info_kept", origin=origin, actor_type="staff",
                     actor_id=decided.staff_id, subject_type="account", subject_id=account.id,
                     details={"field": field, "review": decided.review_id, "reason": decided.reason})
        return
    reason = decided.reason or "—"
    setattr(account, field, neutral_nickname(account.id) if field == "nickname" else None)
    account.updated_at = decided.at
    audit.record(db, at=decided.at, action="account.info_reset", origin=origin, actor_type="staff",
                 actor_id=decided.staff_id, subject_type="account", subject_id=account.id,
                 details={"field": field, "reason": reason, "staff": decided.staff_id, "review": decided.review_id})
    outbox.notify_account(rt, db, account_id=account.id, template="profile_reset",
                          params={"field": FIELD_NAMES[field], "reason": reason}, channels=("inbox",))
    decided.after_commit(partial(sessions.forget_sessions, rt, account_id=account.id))


# --- avatars ---------------------------------------------------------------------------------------------

# Decoding, QR detection and hashing cost CPU: a session cannot make the server do it without end.
AVATAR_UPLOADS = "20/hour"


def avatar_needs_review(rt: Runtime, account: Account, now: datetime) -> str | None:
    """Why a new avatar waits for a reviewer (``PASSPORT_AVATAR_REVIEW``), or None: ``all`` holds
    every one; ``new`` those of accounts younger than ``PASSPORT_AVATAR_TRUSTED_DAYS`` or without a
    verified real name; ``none`` none (QR codes and the blocklist still refuse)."""
    mode = rt.settings.avatar_review
    if mode == "all":
        return "all"
    if mode == "new":
        if account.created_at > now - timedelta(days=rt.settings.avatar_trusted_days):
            return "new_account"
        if account.real_name_status != "verified":
            return "not_verified"
    return None


def _refused_image(category: str, rule: str) -> Decision:
    return Decision("block", "", (Hit(category, 0, 0, f"image:{rule}", "block"),))


def set_avatar(rt: Runtime, origin: audit.Origin, account_id: str, data: bytes) -> ProfileChange:
    """PUT /me/avatar: the upload is decoded within the limits and re-encoded (no metadata kept); a QR
    code or an image on the blocklist is refused (422 ``account_info_rejected``, field ``avatar``);
    otherwise it is shown at once or held for a reviewer (``avatar_needs_review``), the previous one
    staying until the new one is approved."""
    settings = rt.settings
    with rt.db.read() as db:
        refuse_if_restricted(get(db, account_id), "profile")  # a restriction takes account information away
    rt.limiter.hit(AVATAR_UPLOADS, "avatar-upload", account_id)
    processed = images.process(data, max_bytes=settings.avatar_max_bytes, max_pixels=settings.avatar_max_pixels,
                               size=settings.avatar_size)
    refusal = None
    if processed.qr:
        refusal = _refused_image("advertising", "qr_code")
    else:
        with rt.db.read() as db:
            block = images.blocked(db, processed.phash, settings.avatar_hash_distance)
        if block is not None:
            refusal = _refused_image(block.category, "blocklist")
    if refusal is not None:
        with unit_of_work(rt, origin, actor=("user", account_id)) as work:
            work.audit("account.profile_refused", subject=("account", account_id), result="denied",
                       details={"fields": {"avatar": refusal.category}, "rule": refusal.hits[0].rule,
                                "phash": processed.phash})
        raise moderation.rejected({"avatar": refusal})
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        account = work.db.scalars(select(Account).where(Account.id == account_id).with_for_update()).one()
        refuse_if_restricted(account, "profile")
        why = avatar_needs_review(rt, account, work.at)
        row = Avatar(account_id=account.id, status="pending" if why else "approved", image=processed.data,
                     content_type=images.CONTENT_TYPE, width=processed.width, height=processed.height,
                     phash=processed.phash, created_at=work.at)
        work.db.add(row)
        work.db.flush()
        if why:
            hold(work, account, "avatar", row.id, Decision("review", "", ()), why=why)
        else:
            withdraw_pending(work, account, "avatar")
            drop_avatar(work.db, account.avatar_id, "removed", work.at)
            row.decided_at = work.at
            account.avatar_id = row.id
            account.updated_at = work.at
            work.audit("account.profile_updated", subject=("account", account.id), details={"fields": ["avatar"]})
        result = view(rt, account, agreements.pending_for(rt, work.db, account_id))
        work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))
    return ProfileChange(result, ["avatar"] if why else [])


def remove_avatar(rt: Runtime, origin: audit.Origin, account_id: str) -> None:
    """DELETE /me/avatar: the shown avatar and any held one go (no avatar: the initial is shown)."""
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        account = work.db.scalars(select(Account).where(Account.id == account_id).with_for_update()).one()
        if account.avatar_id is None and account.avatar_pending_id is None:
            return
        withdraw_pending(work, account, "avatar")
        drop_avatar(work.db, account.avatar_id, "removed", work.at)
        account.avatar_id = None
        account.updated_at = work.at
        work.audit("account.avatar_removed", subject=("account", account.id))
        work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))
