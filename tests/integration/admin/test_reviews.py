"""The review queue framework: enqueue, list, claim, decide once, decision hooks (issue 4)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from passport import errors
from passport.admin.service import authenticate_staff
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport.reviews import service as reviews
from passport.reviews.models import Review
from passport_testing import make_staff

ADMIN = "/api/v1/admin"


def enqueue(rt, queue: str = "profile", subject_id: str = "acc-1") -> str:
    with rt.db.write() as db:
        return reviews.enqueue(db, queue, "account", subject_id, {"nickname": "新昵称"}, rt.clock.now())


@pytest.fixture()
def two_reviewers(rt):
    return make_staff(rt, "reviewer"), make_staff(rt, "reviewer")


def test_listing_by_queue(client, rt, two_reviewers):
    first, _ = two_reviewers
    review_id = enqueue(rt, "organization")
    listed = client.get(f"{ADMIN}/reviews", params={"queue": "organization", "limit": 100}, headers=first["headers"])
    assert listed.status_code == 200, listed.text
    item = next(i for i in listed.json()["items"] if i["id"] == review_id)
    assert item["payload"] == {"nickname": "新昵称"} and item["status"] == "pending"
    unknown = client.get(f"{ADMIN}/reviews", params={"queue": "pets"}, headers=first["headers"])
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_queue"
    auditor = make_staff(rt, "auditor")
    assert client.get(f"{ADMIN}/reviews", params={"queue": "profile"}, headers=auditor["headers"]).status_code == 403


def test_one_claimer_until_the_claim_goes_stale(client, rt, two_reviewers):
    first, second = two_reviewers
    review_id = enqueue(rt)
    claimed = client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=first["headers"])
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == first["id"]
    assert client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=first["headers"]).status_code == 200
    taken = client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=second["headers"])
    assert taken.status_code == 409 and taken.json()["code"] == "already_claimed"
    blocked = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "approve"}, headers=second["headers"])
    assert blocked.status_code == 409 and blocked.json()["code"] == "already_claimed"
    with rt.db.write() as db:  # the first reviewer left it 31 minutes ago
        db.execute(update(Review).where(Review.id == review_id)
                   .values(claimed_at=rt.clock.now() - timedelta(minutes=31)))
    assert client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=second["headers"]).status_code == 200
    assert client.post(f"{ADMIN}/reviews/{review_id}/claim", headers={"Authorization": "Bearer x"}).status_code == 401
    assert client.post(f"{ADMIN}/reviews/missing/claim", headers=second["headers"]).status_code == 404


def test_reject_needs_a_reason_and_a_decision_is_final(client, rt, two_reviewers):
    first, second = two_reviewers
    review_id = enqueue(rt)
    assert client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=first["headers"]).status_code == 200
    bare = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "reject"}, headers=first["headers"])
    assert bare.status_code == 422 and bare.json()["code"] == "reason_required"
    odd = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "maybe"}, headers=first["headers"])
    assert odd.status_code == 422 and odd.json()["code"] == "invalid_decision"
    done = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "reject", "reason": "昵称含联系方式"},
                       headers=first["headers"])
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "rejected" and done.json()["decided_by"] == first["id"]
    again = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "approve"}, headers=second["headers"])
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    with rt.db.read() as db:
        actions = db.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == review_id)
                               .order_by(AuditEvent.seq)).all()
    assert actions == ["review.enqueued", "review.claimed", "review.decided"]


def test_concurrent_decisions_let_exactly_one_through(rt, two_reviewers):
    # The claimer's two tabs decide at once (only the claimer may decide at all).
    principal = authenticate_staff(rt, two_reviewers[0]["token"])
    principals = [principal, principal]
    review_id = enqueue(rt)
    reviews.claim(rt, Origin(), review_id, principal)
    barrier = threading.Barrier(len(principals))
    outcomes: list[str] = []

    def decide(principal, decision):
        barrier.wait()
        try:
            reviews.decide(rt, Origin(), review_id, principal, decision=decision, reason="并发测试")
            outcomes.append("ok")
        except errors.DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=decide, args=(p, d)) for p, d in zip(principals, ("approve", "reject"),
                                                                              strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["already_decided", "ok"]


def test_decision_hooks_run_in_the_deciding_transaction(rt, two_reviewers):
    principal = authenticate_staff(rt, two_reviewers[0]["token"])
    seen: list[reviews.Decided] = []

    @reviews.on_decision("real_name")
    def remember(_rt, db, decided):
        seen.append(decided)
        if decided.decision == "reject":
            raise errors.DomainError("hook_failed", "The feature refused.", 409)

    def claimed_and_opened(subject_id: str) -> str:
        review_id = enqueue(rt, "real_name", subject_id)
        reviews.claim(rt, Origin(), review_id, principal)
        with rt.db.write() as db:  # real_name items are decided after opening their document
            assert reviews.record_opening(db, review_id, principal.staff_id, rt.clock.now())
        return review_id

    try:
        approved = claimed_and_opened("acc-approve")
        reviews.decide(rt, Origin(), approved, principal, decision="approve", reason=None)
        assert seen[-1].subject_id == "acc-approve" and seen[-1].payload == {"nickname": "新昵称"}
        rejected = claimed_and_opened("acc-reject")
        with pytest.raises(errors.DomainError):
            reviews.decide(rt, Origin(), rejected, principal, decision="reject", reason="证件照片模糊")
        assert reviews.get_review(rt, rejected)["status"] == "pending"  # undone with the hook
    finally:
        reviews._HOOKS["real_name"].remove(remember)
    with pytest.raises(errors.DomainError):
        reviews.on_decision("pets")


def test_enqueue_refuses_an_unknown_queue(rt):
    with rt.db.write() as db, pytest.raises(errors.DomainError) as caught:
        reviews.enqueue(db, "pets", "account", "x", {}, rt.clock.now() - timedelta(0))
    assert caught.value.code == "invalid_queue"


def refusals(rt, review_id: str) -> list[tuple[str, str, str | None, dict]]:
    with rt.db.read() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.subject_id == review_id,
                                                   AuditEvent.action == "review.decision_refused")
                          .order_by(AuditEvent.seq)).all()
        return [(r.result, r.actor_type, r.actor_id, json.loads(r.details or "{}")) for r in rows]


def test_deciding_needs_a_current_claim_of_ones_own(client, rt, two_reviewers):
    """Issue 15: an unclaimed item, someone else's claim and an expired claim are refused, and audited."""
    first, second = two_reviewers
    review_id = enqueue(rt)
    unclaimed = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "approve"}, headers=first["headers"])
    assert unclaimed.status_code == 403 and unclaimed.json()["code"] == "claim_required"
    assert client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=first["headers"]).status_code == 200
    others = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "approve"}, headers=second["headers"])
    assert others.status_code == 409 and others.json()["code"] == "already_claimed"
    with rt.db.write() as db:  # the claim went stale: nobody may decide on it, the claimer included
        db.execute(update(Review).where(Review.id == review_id)
                   .values(claimed_at=rt.clock.now() - reviews.CLAIM_TIMEOUT - timedelta(seconds=1)))
    for staff in (first, second):
        stale = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "approve"}, headers=staff["headers"])
        assert stale.status_code == 403 and stale.json()["code"] == "claim_required"
    assert reviews.get_review(rt, review_id)["status"] == "pending"
    assert [(r, t, a, d["reason"]) for r, t, a, d in refusals(rt, review_id)] == [
        ("denied", "staff", first["id"], "claim_required"), ("denied", "staff", second["id"], "already_claimed"),
        ("denied", "staff", first["id"], "claim_required"), ("denied", "staff", second["id"], "claim_required")]
    assert client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=second["headers"]).status_code == 200
    done = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "approve"}, headers=second["headers"])
    assert done.status_code == 200 and done.json()["decided_by"] == second["id"]
