"""Appeals (申诉) of actions on one's account (agreement §五(四), issue 18). Every action notice links to
the appeal form; an appeal goes to the ``appeals`` queue and is decided by a reviewer other than the one
who acted. Reversed: the action is undone at once — the status it changed comes back through
``accounts.set_status``, a correction deadline is dropped, a refusal of re-registration lifted. A reset
field is NOT restored (the old value is gone; the owner may set it again). Upheld: nothing changes.
The owner is told either way, with the reason."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import refusals
from passport.accounts import service as accounts
from passport.admin import enforcement
from passport.admin.models import AccountAction
from passport.admin.service import StaffPrincipal
from passport.audit import service as audit
from passport.cancellation import service as cancellation
from passport.clock import as_utc, rfc3339
from passport.db import new_id
from passport.reports.models import APPEAL_TEXT, Appeal
from passport.reports.service import handling_due
from passport.reviews import service as reviews
from passport.reviews.models import Review
from passport.runtime import Runtime
from passport.sessions import service as sessions
from passport.work import Work, unit_of_work

QUEUE = "appeals"
TEXT_MAX = 1000
APPEALABLE = frozenset({"reset_field", "warn", "require_correction", "restrict", "suspend", "terminate",
                        "refuse_registration"})
OUTCOMES = {"reversed": "approve", "upheld": "reject"}
# What a reversal gives back, when the action's status still stands.
_SET_BY = {"restrict": "restricted", "suspend": "suspended", "terminate": "terminated"}
_TAKEN_BY = {status: action for action, status in _SET_BY.items()}
OUTCOME_TEXT = {
    "reversed": {"zh-CN": "申诉成立，相关处理已撤销。被重置的账号信息不会自动恢复，您可以重新设置。",
                 "en": "Your appeal was granted and the action undone. Reset account information is not "
                       "restored; you can set it again."},
    "upheld": {"zh-CN": "申诉未获支持，原处理维持不变。", "en": "Your appeal was not granted; the action stands."}}


def _group(db: Session, action: AccountAction) -> list[AccountAction]:
    """The actions of one decision (a report case's actions share its review id), or the action alone."""
    if action.review_id is None:
        return [action]
    return list(db.scalars(select(AccountAction).where(AccountAction.account_id == action.account_id,
                                                       AccountAction.review_id == action.review_id)
                           .order_by(AccountAction.id)).all())


def _not_found() -> errors.DomainError:
    return errors.not_found("action")


def appealable_actions(rt: Runtime, account_id: str) -> list[dict[str, Any]]:
    """The account's own actions with their reason, and whether (and how) each can be appealed."""
    now = rt.clock.now()
    with rt.db.read() as db:
        rows = db.scalars(select(AccountAction).where(AccountAction.account_id == account_id)
                          .order_by(AccountAction.id.desc())).all()
        appealed = {a.action_id: a for a in db.scalars(select(Appeal).where(Appeal.account_id == account_id))}
        out = []
        for row in rows:
            group_ids = [a.id for a in _group(db, row)]
            appeal = next((appealed[i] for i in group_ids if i in appealed), None)
            window = as_utc(row.created_at) + timedelta(days=rt.settings.appeal_window_days)
            out.append({"id": row.id, "action": row.action, "field": row.field, "reason": row.reason,
                        "until": rfc3339(row.until), "created_at": rfc3339(row.created_at),
                        "reversed_at": rfc3339(row.reversed_at),
                        "appeal": _appeal_view(rt, appeal) if appeal else None,
                        "appealable": (row.action in APPEALABLE and appeal is None and row.reversed_at is None
                                       and now < window)})
        return out


@cancellation.export_section("actions")
def _export_actions(rt: Runtime, db: Session, account_id: str) -> list[dict[str, Any]]:
    """The personal-data export (PIPL Art. 45): actions on the account, their reasons, its appeals."""
    appealed = {a.action_id: a for a in db.scalars(select(Appeal).where(Appeal.account_id == account_id))}
    return [{"id": row.id, "action": row.action, "field": row.field, "reason": row.reason, "until": rfc3339(row.until),
             "created_at": rfc3339(row.created_at), "reversed_at": rfc3339(row.reversed_at),
             "appeal": _appeal_view(rt, appealed[row.id]) if row.id in appealed else None}
            for row in db.scalars(select(AccountAction).where(AccountAction.account_id == account_id)
                                  .order_by(AccountAction.id))]


def _appeal_view(rt: Runtime, appeal: Appeal) -> dict[str, Any]:
    return {"id": appeal.id, "action_id": appeal.action_id,
            "text": rt.keys.cipher.decrypt(appeal.text_enc, APPEAL_TEXT, appeal.id), "status": appeal.status,
            "reason": appeal.reason, "created_at": rfc3339(appeal.created_at), "decided_at": rfc3339(appeal.decided_at)}


def appeals_of(rt: Runtime, account_id: str) -> list[dict[str, Any]]:
    with rt.db.read() as db:
        return [_appeal_view(rt, a) for a in db.scalars(select(Appeal).where(Appeal.account_id == account_id)
                                                    .order_by(Appeal.created_at.desc()))]


def file_appeal(rt: Runtime, origin: audit.Origin, account_id: str, *, action_id: int, text: str | None) -> dict:
    """Appeal an action on one's own account, once per decision, within the appeal window. Another
    account's action or an unknown id: 404 alike."""
    text = unicodedata.normalize("NFC", (text or "").strip())
    if not text:
        raise errors.invalid("text_required", "Say why the action should be reconsidered.", "text")
    if len(text) > TEXT_MAX:
        raise errors.invalid("text_too_long", "The text is too long.", "text")
    if any(unicodedata.category(c)[0] == "C" and c not in "\n\t" for c in text):
        raise errors.invalid("invalid_text", "Control characters are not allowed.", "text")
    rt.limiter.hit("20/day", "appeal", account_id)
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        db = work.db
        db.execute(select(accounts.Account.id).where(accounts.Account.id == account_id).with_for_update())
        action = db.get(AccountAction, action_id)
        if action is None or action.account_id != account_id or action.action not in APPEALABLE:
            raise _not_found()
        group = _group(db, action)
        if db.scalar(select(Appeal.id).where(Appeal.action_id.in_([a.id for a in group]))) is not None:
            raise errors.DomainError("appeal_exists", "This action has been appealed already.", 409)
        if any(a.reversed_at is not None for a in group):
            raise errors.DomainError("action_reversed", "This action has been reversed already.", 409)
        if work.at >= as_utc(action.created_at) + timedelta(days=rt.settings.appeal_window_days):
            raise errors.DomainError("appeal_window_closed", "The time to appeal this action has passed.", 409)
        appeal = Appeal(id=new_id(), account_id=account_id, action_id=group[0].id, status="pending",
                        created_at=work.at)
        appeal.text_enc = rt.keys.cipher.encrypt(text, APPEAL_TEXT, appeal.id)
        db.add(appeal)
        db.flush()
        appeal.review_id = reviews.enqueue(db, QUEUE, "appeal", appeal.id, {
            "appeal_id": appeal.id, "account_id": account_id, "actions": [a.action for a in group],
            "acted_by": action.staff_id}, work.at, work.origin)
        work.audit("appeal.filed", subject=("account", account_id),
                   details={"appeal": appeal.id, "actions": [a.id for a in group]})
        return _appeal_view(rt, appeal)


def file_appeal_by_link(rt: Runtime, origin: audit.Origin, *, token: str | None, text: str | None) -> dict:
    """The appeal link of a notice (``enforcement.appeal_token``), signed in or not: a suspended or
    terminated account cannot sign in and must still be able to appeal. A bad link: 404."""
    rt.limiter.hit("30/hour", "appeal-link-ip", origin.ip or "-")  # no session: counted by address
    action_id = enforcement.action_of_token(rt, token)
    if action_id is None:
        raise _not_found()
    with rt.db.read() as db:
        action = db.get(AccountAction, action_id)
        if action is None:
            raise _not_found()
        account_id = action.account_id
    return file_appeal(rt, origin, account_id, action_id=action_id, text=text)


def action_for_link(rt: Runtime, token: str | None) -> dict[str, Any]:
    """What the appeal page shows for a link: the action and its reason (the holder of the notice
    has read them already), and whether it can still be appealed."""
    action_id = enforcement.action_of_token(rt, token)
    if action_id is None:
        raise _not_found()
    with rt.db.read() as db:
        action = db.get(AccountAction, action_id)
        if action is None:
            raise _not_found()
        account_id = action.account_id
    return next(a for a in appealable_actions(rt, account_id) if a["id"] == action_id)


def list_appeals(rt: Runtime, *, status: str = "pending", limit: int = 50) -> dict:
    if status not in reviews.STATUSES:
        raise errors.invalid("invalid_status", "Unknown review status.", "status")
    now = rt.clock.now()
    with rt.db.read() as db:
        rows = db.execute(select(Review, Appeal).join(Appeal, Appeal.review_id == Review.id)
                          .where(Review.queue == QUEUE, Review.status == status)
                          .order_by(Review.created_at, Review.id).limit(max(1, min(limit, reviews.PAGE_MAX)))).all()
        items = []
        for review, appeal in rows:
            due = handling_due(rt, QUEUE, review.created_at)
            action = db.get(AccountAction, appeal.action_id)
            items.append({"id": review.id, "appeal": _appeal_view(rt, appeal), "account_id": appeal.account_id,
                          "actions": [a.action for a in _group(db, action)], "action_reason": action.reason,
                          "acted_by": action.staff_id, "claimed_by": review.claimed_by,
                          "created_at": rfc3339(review.created_at), "due_at": rfc3339(due),
                          "overdue": review.status == "pending" and due < now, "status": review.status})
    return {"items": items, "total": len(items)}


def appeal_case(rt: Runtime, review_id: str) -> dict:
    with rt.db.read() as db:
        review = db.get(Review, review_id)
        appeal = db.scalar(select(Appeal).where(Appeal.review_id == review_id))
        if review is None or review.queue != QUEUE or appeal is None:
            raise errors.not_found("review")
        action = db.get(AccountAction, appeal.action_id)
        account = db.get(accounts.Account, appeal.account_id)
        due = handling_due(rt, QUEUE, review.created_at)
        return {"id": review.id, "status": review.status, "appeal": _appeal_view(rt, appeal),
                "account": {"id": account.id, "nickname": account.nickname, "status": account.status},
                "actions": [{"id": a.id, "action": a.action, "field": a.field, "reason": a.reason,
                             "until": rfc3339(a.until), "staff_id": a.staff_id, "created_at": rfc3339(a.created_at),
                             "reversed_at": rfc3339(a.reversed_at)} for a in _group(db, action)],
                "acted_by": action.staff_id, "claimed_by": review.claimed_by, "decided_by": review.decided_by,
                "reason": review.reason, "created_at": rfc3339(review.created_at), "due_at": rfc3339(due),
                "overdue": review.status == "pending" and due < rt.clock.now()}


def decide_appeal(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, review_id: str, *, outcome: str,
                  reason: str | None) -> dict:
    """Reversed or upheld, with a reason, by the claimer — never the reviewer who took the action
    (403 ``same_reviewer``, audited as a refused decision)."""
    if outcome not in OUTCOMES:
        raise errors.invalid("invalid_decision", "The decision is reversed or upheld.", "outcome")
    reason = enforcement.clean_reason(reason)
    now = rt.clock.now()
    try:
        with unit_of_work(rt, origin, actor=("staff", staff.staff_id), at=now) as work:
            db = work.db
            appeal = db.scalars(select(Appeal).where(Appeal.review_id == review_id).with_for_update()).first()
            if appeal is None:
                raise errors.not_found("review")
            group = _group(db, db.get(AccountAction, appeal.action_id))
            if any(a.staff_id == staff.staff_id for a in group):
                raise errors.DomainError("same_reviewer", "An appeal is decided by a reviewer other than the one "
                                         "who took the action.", 403)
            reviews.settle(work, review_id, staff.staff_id, OUTCOMES[outcome], reason)
            appeal.status, appeal.reason, appeal.decided_at = outcome, reason, now
            undone = _reverse(work, appeal.account_id, group, reason) if outcome == "reversed" else []
            work.audit(f"appeal.{outcome}", subject=("account", appeal.account_id),
                       details={"appeal": appeal.id, "reason": reason, "undone": undone})
            work.notify(appeal.account_id, "appeal_decided",
                        {"outcome": OUTCOME_TEXT[outcome], "reason": reason}, channels=("inbox", "sms"))
    except errors.DomainError as refused:
        if refused.code == "same_reviewer":
            with unit_of_work(rt, origin, actor=("staff", staff.staff_id), at=now) as work:
                work.audit("review.decision_refused", subject=("review", review_id), result="denied",
                           details={"reason": "same_reviewer", "decision": outcome})
        else:
            reviews.audit_refusal(rt, origin, review_id, staff.staff_id, OUTCOMES[outcome], refused, now)
        raise
    return appeal_case(rt, review_id)


def _reverse(work: Work, account_id: str, group: list[AccountAction], reason: str) -> list[str]:
    """Undo the decision's actions. The status comes back only while the action's status still stands
    (a later action is not undone by reversing an earlier one)."""
    db, now = work.db, work.at
    db.execute(select(accounts.Account.id).where(accounts.Account.id == account_id).with_for_update())
    account = accounts.get(db, account_id)
    undone = []
    for action in group:
        if action.reversed_at is not None:
            continue
        action.reversed_at = now
        if action.action == "require_correction" and action.settled_at is None:
            action.settled_at = now
        elif action.action == "refuse_registration":
            refusals.lift(db, action.id, now)
        elif action.action in _SET_BY and account.status == _SET_BY[action.action]:
            back = action.from_status if action.from_status in ("active", "restricted", "suspended") else "active"
            # The restriction or suspension it replaced comes back with its own reason and end.
            before = None if back == "active" else db.scalars(select(AccountAction).where(
                AccountAction.account_id == account_id, AccountAction.id < action.id,
                AccountAction.action == _TAKEN_BY[back], AccountAction.reversed_at.is_(None))
                .order_by(AccountAction.id.desc())).first()
            if (account.status, back) in accounts.TRANSITIONS and accounts.set_status(
                    db, account_id, back, expected=account.status, now=now,
                    reason=before.reason if before else None, until=before.until if before else None):
                work.after_commit(partial(sessions.forget_sessions, work.rt, account_id=account_id))
        undone.append(action.action)
        work.audit("account.action.reversed", subject=("account", account_id),
                   details={"action_id": action.id, "action": action.action, "reason": reason,
                            "status": account.status})
    db.flush()
    return undone
