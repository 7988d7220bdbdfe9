"""Review queues (issue 4): organisation verification, real-name manual review and profile review put
items here; a reviewer claims one and decides it once. Features react to decisions through hooks
registered with ``on_decision(queue)``, run in the deciding transaction.

Only the reviewer holding a current claim decides (issue 15: ``claim_required``); a queue whose items
carry a document the reviewer must look at is registered with ``require_opening(queue)`` and its items
are decided only after the claimer opened it during the claim (``record_opening``; else
``document_not_opened``). Refused decisions are audited (``review.decision_refused``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.audit import service as audit
from passport.clock import rfc3339
from passport.db import new_id
from passport.reviews.models import Review
from passport.runtime import Runtime
from passport.work import Work, unit_of_work

QUEUES = ("organization", "real_name", "profile", "reports", "appeals")
STATUSES = ("pending", "approved", "rejected", "withdrawn")
DECISIONS = {"approve": "approved", "reject": "rejected"}
CLAIM_TIMEOUT = timedelta(minutes=30)
PAGE_MAX = 100
REASON_MAX = 500


class Reviewer(Protocol):
    """The staff member who claims and decides (admin's StaffPrincipal)."""

    staff_id: str


@dataclass(frozen=True)
class Decided:
    review_id: str
    queue: str
    subject_type: str
    subject_id: str
    payload: dict
    decision: str  # approve | reject
    reason: str | None
    staff_id: str
    at: datetime
    # Runs the callback once the deciding transaction has committed (the unit of work's after_commit).
    after_commit: Callable[[Callable[[], Any]], None] = field(default=lambda callback: None, repr=False,
                                                             compare=False)


DecisionHook = Callable[[Runtime, Session, Decided], None]
_HOOKS: dict[str, list[DecisionHook]] = {}
_MUST_OPEN: set[str] = set()
# Queues whose decision carries more than approve/reject (a report's actions, an appeal's reversal):
# decided only through their feature, which calls ``settle`` (issue 18).
OWN_DECISION = frozenset({"reports", "appeals"})


def on_decision(queue: str) -> Callable[[DecisionHook], DecisionHook]:
    """Register ``fn(rt, db, decided)`` to run in the transaction that decides an item of ``queue``;
    an error it raises undoes the decision."""
    _check_queue(queue)

    def register(fn: DecisionHook) -> DecisionHook:
        _HOOKS.setdefault(queue, []).append(fn)
        return fn

    return register


def require_opening(queue: str) -> None:
    """Items of ``queue`` are decided only by a claimer who opened their document during the claim
    (the feature that shows the document calls ``record_opening``)."""
    _check_queue(queue)
    _MUST_OPEN.add(queue)


def record_opening(db: Session, review_id: str, staff_id: str, at: datetime) -> bool:
    """In the caller's unit of work (the one that audits the viewing): the reviewer holding a current
    claim of the pending item opened its document. False (nothing recorded) for anyone else."""
    done = db.execute(update(Review).where(Review.id == review_id, Review.status == "pending",
                                           _held_by(staff_id, at))
                      .values(opened_by=staff_id, opened_at=at)
                      .execution_options(synchronize_session=False)).rowcount
    return done == 1


def _check_queue(queue: str) -> None:
    if queue not in QUEUES:
        raise errors.invalid("invalid_queue", "Unknown review queue.", "queue")


def enqueue(db: Session, queue: str, subject_type: str, subject_id: str, payload: dict[str, Any],
            at: datetime, origin: audit.Origin | None = None) -> str:
    """Add an item in the caller's unit of work. ``payload`` must hold personal data masked or
    encrypted only: reviewers see it as it is."""
    _check_queue(queue)
    review_id = new_id()
    db.add(Review(id=review_id, queue=queue, subject_type=subject_type, subject_id=subject_id,
                  payload=json.dumps(payload, ensure_ascii=False, sort_keys=True), status="pending", created_at=at))
    db.flush()
    audit.record(db, at=at, action="review.enqueued", origin=origin or audit.Origin(channel="worker"),
                 actor_type="system", subject_type="review", subject_id=review_id,
                 details={"queue": queue, "about": f"{subject_type}:{subject_id}"})
    return review_id


def withdraw_items(db: Session, subject_type: str, subject_ids: list[str], reason: str, at: datetime,
                   origin: audit.Origin | None = None) -> int:
    """In the caller's unit of work: pending items about these subjects are closed (``withdrawn``) and
    the payload of every item about them is scrubbed (the subject's data is gone: an application
    withdrawn, an account cancelled). Returns how many pending items were closed."""
    if not subject_ids:
        return 0
    rows = db.scalars(select(Review).where(Review.subject_type == subject_type,
                                           Review.subject_id.in_(subject_ids)).with_for_update()).all()
    closed = 0
    for review in rows:
        review.payload = "{}"
        if review.status == "pending":
            review.status, review.reason, review.decided_at = "withdrawn", reason, at
            closed += 1
            audit.record(db, at=at, action="review.withdrawn", origin=origin or audit.Origin(channel="worker"),
                         actor_type="system", subject_type="review", subject_id=review.id,
                         details={"queue": review.queue, "reason": reason,
                                  "about": f"{review.subject_type}:{review.subject_id}"})
    db.flush()
    return closed


def _view(review: Review) -> dict:
    return {"id": review.id, "queue": review.queue, "subject_type": review.subject_type,
            "subject_id": review.subject_id, "payload": json.loads(review.payload or "{}"), "status": review.status,
            "claimed_by": review.claimed_by, "claimed_at": rfc3339(review.claimed_at), "decision": review.decision,
            "reason": review.reason, "decided_by": review.decided_by, "decided_at": rfc3339(review.decided_at),
            "created_at": rfc3339(review.created_at)}


def list_reviews(rt: Runtime, queue: str, status: str = "pending", *, offset: int = 0, limit: int = 20) -> dict:
    """Oldest first: the queue is worked in arrival order."""
    _check_queue(queue)
    if status not in STATUSES:
        raise errors.invalid("invalid_status", "Unknown review status.", "status")
    limit, offset = max(1, min(limit, PAGE_MAX)), max(0, offset)
    condition = (Review.queue == queue) & (Review.status == status)
    with rt.db.read() as db:
        total = db.scalar(select(func.count()).select_from(Review).where(condition))
        rows = db.scalars(select(Review).where(condition).order_by(Review.created_at, Review.id)
                          .offset(offset).limit(limit)).all()
        return {"items": [_view(r) for r in rows], "total": total, "offset": offset, "limit": limit}


def pending_counts(rt: Runtime) -> dict[str, int]:
    """How many items wait in each queue (every queue named, 0 when empty)."""
    with rt.db.read() as db:
        counts = dict(db.execute(select(Review.queue, func.count()).where(Review.status == "pending")
                                 .group_by(Review.queue)).all())
    return {queue: counts.get(queue, 0) for queue in QUEUES}


def get_review(rt: Runtime, review_id: str) -> dict:
    with rt.db.read() as db:
        review = db.get(Review, review_id)
        if review is None:
            raise errors.not_found("review")
        return _view(review)


def _free_for(staff_id: str, now: datetime):
    """Unclaimed, claimed by this reviewer, or claimed by someone who left it 30+ minutes ago."""
    return or_(Review.claimed_by.is_(None), Review.claimed_by == staff_id, Review.claimed_at <= now - CLAIM_TIMEOUT)


def _held_by(staff_id: str, now: datetime):
    """Claimed by this reviewer within the last 30 minutes: the only claim that lets one decide."""
    return (Review.claimed_by == staff_id) & (Review.claimed_at > now - CLAIM_TIMEOUT)


def _why_not(db: Session, review_id: str) -> errors.DomainError:
    review = db.get(Review, review_id)
    if review is None:
        return errors.not_found("review")
    if review.status != "pending":
        return errors.DomainError("already_decided", "This item has been decided already.", 409)
    return errors.DomainError("already_claimed", "Another reviewer is working on this item.", 409,
                              extra={"claimed_at": rfc3339(review.claimed_at)})


def _why_not_decide(db: Session, review_id: str, staff_id: str, now: datetime) -> errors.DomainError:
    review = db.get(Review, review_id)
    if review is None or review.status != "pending":
        return _why_not(db, review_id)
    current = review.claimed_at is not None and review.claimed_at > now - CLAIM_TIMEOUT
    if review.claimed_by is not None and review.claimed_by != staff_id and current:
        return _why_not(db, review_id)
    if review.claimed_by != staff_id or not current:
        return errors.DomainError("claim_required", "Claim this item before you decide it.", 403)
    return errors.DomainError("document_not_opened", "Open the document before you decide this item.", 403)


def claim(rt: Runtime, origin: audit.Origin, review_id: str, staff: Reviewer) -> dict:
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id), at=now) as work:
        db = work.db
        done = db.execute(update(Review).where(Review.id == review_id, Review.status == "pending",
                                               _free_for(staff.staff_id, now))
                          # A new claimer has not opened the document yet.
                          .values(claimed_by=staff.staff_id, claimed_at=now,
                                  opened_by=case((Review.claimed_by == staff.staff_id, Review.opened_by),
                                                 else_=None),
                                  opened_at=case((Review.claimed_by == staff.staff_id, Review.opened_at),
                                                 else_=None))
                          .execution_options(synchronize_session=False)).rowcount
        if done != 1:
            raise _why_not(db, review_id)
        work.audit("review.claimed", subject=("review", review_id))
        review = db.get(Review, review_id)
        db.refresh(review)
        return _view(review)


def decide(rt: Runtime, origin: audit.Origin, review_id: str, staff: Reviewer, *, decision: str,
           reason: str | None) -> dict:
    """Decide once: the conditional UPDATE lets exactly one of two simultaneous decisions through.
    Only the reviewer holding a current claim decides (403 ``claim_required``; 409 ``already_claimed``
    while another reviewer's claim runs); in a queue registered with ``require_opening`` only after
    opening the document during the claim (403 ``document_not_opened``). A refusal is audited."""
    if decision not in DECISIONS:
        raise errors.invalid("invalid_decision", "The decision is approve or reject.", "decision")
    reason = (reason or "").strip() or None
    if decision == "reject" and reason is None:
        raise errors.invalid("reason_required", "A reason is required.", "reason")
    if reason is not None and len(reason) > REASON_MAX:
        raise errors.invalid("reason_too_long", "The reason must be at most 500 characters.", "reason")
    now = rt.clock.now()
    with rt.db.read() as db:
        if db.scalar(select(Review.queue).where(Review.id == review_id)) in OWN_DECISION:
            raise errors.DomainError("decided_elsewhere", "Decide this item from its own page (reports or "
                                     "appeals).", 409)
    try:
        return _decide(rt, origin, review_id, staff, decision, reason, now)
    except errors.DomainError as refused:
        audit_refusal(rt, origin, review_id, staff.staff_id, decision, refused, now)
        raise


def _decide(rt: Runtime, origin: audit.Origin, review_id: str, staff: Reviewer, decision: str,
            reason: str | None, now: datetime) -> dict:
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id), at=now) as work:
        return _view(settle(work, review_id, staff.staff_id, decision, reason))


def settle(work: Work, review_id: str, staff_id: str, decision: str, reason: str | None) -> Review:
    """Decide the item in the caller's unit of work (what ``decide`` does inside its own): only the
    reviewer holding a current claim, once; runs the queue's decision hooks and audits
    ``review.decided``. A feature whose decision carries more than approve/reject (a report's actions,
    an appeal's reversal) calls it and acts in the same transaction."""
    rt, db, now = work.rt, work.db, work.at
    queue = db.scalar(select(Review.queue).where(Review.id == review_id))
    condition = _held_by(staff_id, now)
    if queue in _MUST_OPEN:
        condition = condition & (Review.opened_by == staff_id)
    done = db.execute(update(Review).where(Review.id == review_id, Review.status == "pending", condition)
                      .values(status=DECISIONS[decision], decision=decision, reason=reason,
                              decided_by=staff_id, decided_at=now)
                      .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise _why_not_decide(db, review_id, staff_id, now)
    review = db.get(Review, review_id)
    db.refresh(review)
    decided = Decided(review.id, review.queue, review.subject_type, review.subject_id,
                      json.loads(review.payload or "{}"), decision, reason, staff_id, now,
                      after_commit=work.after_commit)
    for hook in _HOOKS.get(review.queue, ()):
        hook(rt, db, decided)
    work.audit("review.decided", subject=("review", review_id),
               details={"queue": review.queue, "decision": decision, "reason": reason,
                        "about": f"{review.subject_type}:{review.subject_id}"})
    return review


def audit_refusal(rt: Runtime, origin: audit.Origin, review_id: str, staff_id: str, decision: str,
                  refused: errors.DomainError, now: datetime) -> None:
    """A refused decision (not the claimer, not opened) is audited (``review.decision_refused``)."""
    if refused.code in ("claim_required", "already_claimed", "document_not_opened"):
        with unit_of_work(rt, origin, actor=("staff", staff_id), at=now) as work:
            work.audit("review.decision_refused", subject=("review", review_id), result="denied",
                       details={"reason": refused.code, "decision": decision})
