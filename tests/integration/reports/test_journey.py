"""The done-when journey of issue 18: A reports B's nickname → a reviewer decides "violation, reset the
nickname + warning" → B's nickname is reset and B is told the reason with an appeal link → B appeals → a
second reviewer reverses → B is told; A sees the outcome."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from passport.accounts.models import Account
from passport.accounts.service import neutral_nickname
from passport.admin.models import AccountAction
from passport.audit.models import AuditEvent
from passport.reviews.models import Review
from passport_testing import bearer, deliver_notices, outbox_messages
from reports_testing import ADMIN, PNG, claim, decide, decide_appeal, file_report, inbox


def test_report_decide_appeal_reverse(client, rt, reviewers, two_users):
    first, second = reviewers
    a, b = two_users
    a_token, b_token = a["session"]["token"], b["session"]["token"]
    b_id = b["account"]["id"]

    filed = file_report(client, a_token, b_id, files=[("evidence", ("shot.png", PNG, "image/png"))])
    assert filed.status_code == 202, filed.text
    report = filed.json()["report"]
    assert not filed.json()["merged"] and report["status"] == "open" and report["evidence"] == 1

    listed = client.get(f"{ADMIN}/reports", headers=first["headers"])
    case = next(i for i in listed.json()["items"] if i["subject_id"] == b_id)
    assert case["reporters"] == 1 and case["subject"]["nickname"] == "坏名字" and case["overdue"] is False
    review_id = case["id"]
    assert claim(client, first, review_id).status_code == 200
    detail = client.get(f"{ADMIN}/reports/{review_id}", headers=first["headers"]).json()
    [shown] = detail["reports"]
    assert shown["description"] == "昵称侮辱他人" and detail["subject"]["status"] == "active"
    image = client.get(f"{ADMIN}/reports/{review_id}/evidence/{shown['evidence_ids'][0]}", headers=first["headers"])
    assert image.status_code == 200 and image.content == PNG

    done = decide(client, first, review_id, outcome="violation", actions=["reset_field", "warn"], field="nickname",
                  reason="昵称含侮辱性内容")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "approved"
    me = client.get("/api/v1/me", headers=bearer(b_token)).json()
    assert me["nickname"] == neutral_nickname(b_id) and me["status"] == "active"

    # B is told the action, the reason and where to appeal it.
    messages = inbox(client, b_token)
    action_notice = next(m for m in messages if m["template"] == "notice_account_action")
    assert "警告" in action_notice["text"] and "昵称含侮辱性内容" in action_notice["text"]
    action_id = int(re.search(r"/appeals/new\?token=(\d+)\.", action_notice["text"]).group(1))
    assert any(m["template"] == "profile_reset" and "昵称含侮辱性内容" in m["text"] for m in messages)
    # A is told the outcome, and nothing of B.
    [outcome] = [m for m in inbox(client, a_token) if m["template"] == "report_outcome"]
    assert "违规" in outcome["text"] and "坏名字" not in outcome["text"] and "警告" not in outcome["text"]

    actions = client.get("/api/v1/me/actions", headers=bearer(b_token)).json()
    assert {x["action"] for x in actions} == {"reset_field", "warn"} and all(x["appealable"] for x in actions)
    appealed = client.post("/api/v1/me/appeals", json={"action_id": action_id, "text": "我的昵称并无侮辱含义"},
                           headers=bearer(b_token))
    assert appealed.status_code == 201, appealed.text
    again = client.post("/api/v1/me/appeals", json={"action_id": actions[0]["id"], "text": "再次申诉"},
                        headers=bearer(b_token))
    assert again.status_code == 409 and again.json()["code"] == "appeal_exists"

    appeal_case = next(i for i in client.get(f"{ADMIN}/appeals", headers=second["headers"]).json()["items"]
                       if i["account_id"] == b_id)
    appeal_review = appeal_case["id"]
    # The reviewer who acted may not decide the appeal.
    assert claim(client, first, appeal_review).status_code == 200
    same = decide_appeal(client, first, appeal_review, outcome="reversed", reason="复核")
    assert same.status_code == 403 and same.json()["code"] == "same_reviewer"
    with rt.db.read() as db:
        assert db.scalar(select(AuditEvent.seq).where(AuditEvent.action == "review.decision_refused",
                                                     AuditEvent.subject_id == appeal_review)) is not None
    release = client.post(f"{ADMIN}/reviews/{appeal_review}/claim", headers=second["headers"])
    assert release.status_code == 409  # the first reviewer's claim runs: the second waits or it goes stale
    with rt.db.write() as db:
        db.execute(update(Review).where(Review.id == appeal_review).values(claimed_by=None, claimed_at=None))
    assert claim(client, second, appeal_review).status_code == 200
    reversed_ = decide_appeal(client, second, appeal_review, outcome="reversed", reason="昵称为方言用语，不构成侮辱")
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["appeal"]["status"] == "reversed"

    with rt.db.read() as db:
        rows = db.scalars(select(AccountAction).where(AccountAction.account_id == b_id)).all()
        assert rows and all(r.reversed_at is not None for r in rows)
        # A reset field is not restored by a reversal (the old value is gone).
        assert db.get(Account, b_id).nickname == neutral_nickname(b_id)
    told = [m for m in inbox(client, b_token) if m["template"] == "appeal_decided"]
    assert told and "申诉成立" in told[0]["text"] and "不会自动恢复" in told[0]["text"]
    deliver_notices(rt)
    assert any(m["purpose"] == "appeal_decided" for m in outbox_messages(rt) if m["to"].endswith(b["phone"]))

    mine = client.get("/api/v1/me/reports", headers=bearer(a_token)).json()
    assert mine[0]["id"] == report["id"] and mine[0]["status"] == "closed" and mine[0]["outcome"] == "violation"
