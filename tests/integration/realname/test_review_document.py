"""Issue 15: a real-name or organisation decision needs the claimer to have opened the document
(``documents.review_document``) during the claim; refusals are audited."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, update

from passport.audit.models import AuditEvent
from passport.reviews import service as reviews
from passport.reviews.models import Review
from passport_testing import make_staff, new_id_number, register_account

from .conftest import JPEG, verified_person
from .test_manual import review_for, submit
from .test_organizations import apply, review_of

ADMIN = "/api/v1/admin"


def audited(rt, review_id: str, action: str) -> list[tuple[str, str | None, dict]]:
    with rt.db.read() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.subject_id == review_id, AuditEvent.action == action)
                          .order_by(AuditEvent.seq)).all()
        return [(r.result, r.actor_id, json.loads(r.details or "{}")) for r in rows]


def decide(client, staff, review_id: str, decision: str = "approve"):
    body = {"decision": decision} if decision == "approve" else {"decision": decision, "reason": "证件照片不清晰"}
    return client.post(f"{ADMIN}/reviews/{review_id}", json=body, headers=staff["headers"])


def test_a_real_name_decision_needs_the_document_opened_by_the_claimer(client, rt, provider):
    provider("manual")
    person = register_account(client, rt)
    assert submit(client, person, new_id_number()).status_code == 200
    first, second = make_staff(rt, "reviewer"), make_staff(rt, "reviewer")
    review_id = review_for(client, first, person["account"]["id"])["id"]
    assert client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=first["headers"]).status_code == 200
    # The subject's data alone is not the document.
    assert client.get(f"{ADMIN}/reviews/{review_id}/subject", headers=first["headers"]).json()
    for decision in ("approve", "reject"):
        blind = decide(client, first, review_id, decision)
        assert blind.status_code == 403 and blind.json()["code"] == "document_not_opened"
    assert [(r, a, d["reason"]) for r, a, d in audited(rt, review_id, "review.decision_refused")] == [
        ("denied", first["id"], "document_not_opened")] * 2
    assert client.get(f"{ADMIN}/reviews/{review_id}/document", headers=first["headers"]).content == JPEG
    assert [a for _, a, _ in audited(rt, review_id, "document.viewed")] == [first["id"]]
    # The claim goes stale; the second reviewer takes it over: the first one's opening does not count.
    with rt.db.write() as db:
        db.execute(update(Review).where(Review.id == review_id)
                   .values(claimed_at=rt.clock.now() - reviews.CLAIM_TIMEOUT - timedelta(seconds=1)))
    assert client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=second["headers"]).status_code == 200
    taken = decide(client, second, review_id)
    assert taken.status_code == 403 and taken.json()["code"] == "document_not_opened"
    assert decide(client, first, review_id).json()["code"] == "already_claimed"
    assert client.get(f"{ADMIN}/reviews/{review_id}/document", headers=second["headers"]).content == JPEG
    done = decide(client, second, review_id)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "approved" and done.json()["decided_by"] == second["id"]


def test_an_organisation_decision_needs_the_licence_opened(client, rt, provider):
    person = verified_person(client, rt, provider)
    org = apply(client, person)
    assert org.status_code == 202, org.text
    reviewer = make_staff(rt, "reviewer")
    review_id = review_of(client, rt, reviewer, org.json()["id"])["id"]
    assert decide(client, reviewer, review_id).json()["code"] == "claim_required"
    client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=reviewer["headers"])
    blind = decide(client, reviewer, review_id)
    assert blind.status_code == 403 and blind.json()["code"] == "document_not_opened"
    assert client.get(f"{ADMIN}/reviews/{review_id}/document", headers=reviewer["headers"]).status_code == 200
    assert decide(client, reviewer, review_id).status_code == 200
    assert [d["reason"] for _, _, d in audited(rt, review_id, "review.decision_refused")] == [
        "claim_required", "document_not_opened"]
