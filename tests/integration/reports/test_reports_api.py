"""POST /reports and GET /me/reports (issue 18): validation, evidence checked by content and sealed,
merging, priority, limits, no existence oracle; the decision's error paths."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from passport.realname import documents
from passport.realname.models import Document
from passport.reports.models import RIGHT_HOLDER, Appeal, Report
from passport_testing import bearer, register_account
from reports_testing import ADMIN, PNG, case_of, claim, decide, file_report


def test_signed_in_only(client, two_users):
    _, b = two_users
    answer = client.post("/api/v1/reports", data={"subject_type": "account", "subject_id": b["account"]["id"],
                                                  "category": "fraud", "description": "x"})
    assert answer.status_code == 401


def test_an_unknown_subject_gets_the_answer_a_known_one_gets(client, rt, two_users, reviewers):
    a, b = two_users
    token = a["session"]["token"]
    known = file_report(client, token, b["account"]["id"])
    unknown = file_report(client, token, uuid.uuid4().hex)
    assert known.status_code == unknown.status_code == 202
    assert set(known.json()["report"]) == set(unknown.json()["report"])
    strip = {"id", "subject_id", "created_at"}
    assert ({k: v for k, v in known.json()["report"].items() if k not in strip}
            == {k: v for k, v in unknown.json()["report"].items() if k not in strip})
    # The reviewer sees the subject is gone and closes it as no violation; an action is refused.
    first, _ = reviewers
    case = case_of(client, first, unknown.json()["report"]["subject_id"])
    assert case["subject"] is None
    assert claim(client, first, case["id"]).status_code == 200
    refused = decide(client, first, case["id"], outcome="violation", actions=["warn"], reason="违规")
    assert refused.status_code == 409 and refused.json()["code"] == "subject_not_found"
    closed = decide(client, first, case["id"], outcome="no_violation", reason="对象不存在")
    assert closed.status_code == 200
    mine = {r["id"]: r for r in client.get("/api/v1/me/reports", headers=bearer(token)).json()}
    assert mine[unknown.json()["report"]["id"]]["outcome"] == "no_violation"


def test_validation(client, rt, two_users):
    a, b = two_users
    token, subject = a["session"]["token"], b["account"]["id"]
    cases = [
        (dict(category="nonsense"), "invalid_category"),
        (dict(description="  "), "description_required"),
        (dict(description="x" * 1001), "description_too_long"),
        (dict(field="name"), "invalid_field"),
        (dict(category="infringement"), "right_holder_required"),
        (dict(subject_type="planet"), "invalid_subject"),
    ]
    for overrides, code in cases:
        body = dict(subject_id=subject) | overrides
        answer = file_report(client, token, body.pop("subject_id"), **body)
        assert answer.status_code == 422 and answer.json()["code"] == code, (overrides, answer.text)
    self_report = file_report(client, token, a["account"]["id"])
    assert self_report.status_code == 422 and self_report.json()["code"] == "cannot_report_self"
    executable = file_report(client, token, subject, files=[("evidence", ("a.png", b"MZ\x90\x00" + bytes(64),
                                                                          "image/png"))])
    assert executable.status_code == 422 and executable.json()["code"] == "invalid_file_type"
    four = file_report(client, token, subject, files=[("evidence", (f"{i}.png", PNG, "image/png")) for i in range(4)])
    assert four.status_code == 422 and four.json()["code"] == "too_many_files"
    with rt.db.read() as db:
        assert db.scalars(select(Report).where(Report.reporter_id == a["account"]["id"])).all() == []


def test_infringement_keeps_the_right_holder_sealed(client, rt, two_users):
    a, b = two_users
    answer = file_report(client, a["session"]["token"], b["account"]["id"], category="infringement",
                         right_holder="权利人王五 13800138000", files=[("evidence", ("a.png", PNG, "image/png"))])
    assert answer.status_code == 202, answer.text
    with rt.db.read() as db:
        report = db.get(Report, answer.json()["report"]["id"])
        assert b"13800138000" not in report.right_holder_enc
        assert rt.keys.cipher.decrypt(report.right_holder_enc, RIGHT_HOLDER, report.id) == "权利人王五 13800138000"
        [document_id] = json.loads(report.evidence)
        document = db.get(Document, document_id)
        assert document.kind == "evidence" and document.content_type == "image/png"
    on_disk = (documents.uploads_dir(rt) / document.stored_name).read_bytes()
    assert PNG not in on_disk and documents.read_document(rt, document) == PNG


def test_the_same_reporter_is_merged_and_many_reporters_raise_priority(client, rt, two_users, reviewers):
    a, b = two_users
    subject = b["account"]["id"]
    first = file_report(client, a["session"]["token"], subject)
    again = file_report(client, a["session"]["token"], subject, category="fraud", description="还在骗人")
    assert again.json()["merged"] is True and again.json()["report"]["id"] == first.json()["report"]["id"]
    assert "还在骗人" in again.json()["report"]["description"]
    quiet = register_account(client, rt)
    file_report(client, a["session"]["token"], quiet["account"]["id"])
    for _ in range(2):
        other = register_account(client, rt)
        assert file_report(client, other["session"]["token"], subject).status_code == 202
    listed = client.get(f"{ADMIN}/reports", headers=reviewers[0]["headers"]).json()["items"]
    ours = [i for i in listed if i["subject_id"] in (subject, quiet["account"]["id"])]
    assert [i["subject_id"] for i in ours] == [subject, quiet["account"]["id"]]
    assert ours[0]["reporters"] == 3 and ours[1]["reporters"] == 1
    detail = client.get(f"{ADMIN}/reports/{ours[0]['id']}", headers=reviewers[0]["headers"]).json()
    assert len(detail["reports"]) == 3


def test_reporters_are_limited(client, rt, two_users, monkeypatch):
    a, _ = two_users
    monkeypatch.setattr(rt.settings, "report_per_hour", 2)
    for _ in range(2):
        target = register_account(client, rt)
        assert file_report(client, a["session"]["token"], target["account"]["id"]).status_code == 202
    target = register_account(client, rt)
    limited = file_report(client, a["session"]["token"], target["account"]["id"])
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"


def test_decision_errors(client, rt, two_users, reviewers):
    a, b = two_users
    first, second = reviewers
    file_report(client, a["session"]["token"], b["account"]["id"])
    case = case_of(client, first, b["account"]["id"])
    unclaimed = decide(client, first, case["id"], outcome="no_violation", reason="无")
    assert unclaimed.status_code == 403 and unclaimed.json()["code"] == "claim_required"
    assert claim(client, first, case["id"]).status_code == 200
    taken = decide(client, second, case["id"], outcome="no_violation", reason="无")
    assert taken.status_code == 409 and taken.json()["code"] == "already_claimed"
    for body, code in [(dict(outcome="violation", actions=[], reason="r"), "action_required"),
                       (dict(outcome="no_violation", actions=["warn"], reason="r"), "invalid_action"),
                       (dict(outcome="violation", actions=["restrict", "suspend"], reason="r"), "invalid_action"),
                       (dict(outcome="violation", actions=["reset_field"], reason="r"), "field_required"),
                       (dict(outcome="violation", actions=["refuse_registration"], reason="r"), "invalid_action"),
                       (dict(outcome="violation", actions=["warn"], reason=" "), "reason_required")]:
        answer = decide(client, first, case["id"], **body)
        assert answer.status_code == 422 and answer.json()["code"] == code, (body, answer.text)
    suspended = decide(client, first, case["id"], outcome="violation", actions=["suspend"], reason="诈骗")
    assert suspended.status_code == 200
    me = client.get("/api/v1/me", headers=bearer(b["session"]["token"]))
    assert me.status_code == 401  # an indefinite suspension ends the sessions
    twice = decide(client, first, case["id"], outcome="no_violation", reason="无")
    assert twice.status_code == 409 and twice.json()["code"] == "already_decided"
    auditor_view = client.get(f"{ADMIN}/reports", headers={"Authorization": "Bearer nope"})
    assert auditor_view.status_code == 401


def test_the_generic_review_decision_refuses_report_and_appeal_items(client, rt, two_users, reviewers):
    a, b = two_users
    first, _ = reviewers
    file_report(client, a["session"]["token"], b["account"]["id"])
    case = case_of(client, first, b["account"]["id"])
    claim(client, first, case["id"])
    bypass = client.post(f"{ADMIN}/reviews/{case['id']}", json={"decision": "approve"}, headers=first["headers"])
    assert bypass.status_code == 409 and bypass.json()["code"] == "decided_elsewhere"
    mine = client.get("/api/v1/me/reports", headers=bearer(a["session"]["token"])).json()
    assert mine[0]["status"] == "open"


def test_a_database_dump_shows_no_report_or_appeal_text(client, rt, two_users, reviewers):
    a, b = two_users
    filed = file_report(client, a["session"]["token"], b["account"]["id"], description="骗子电话13912345678")
    first, _ = reviewers
    action = client.post(f"{ADMIN}/accounts/{b['account']['id']}/actions", json={"action": "warn", "reason": "r"},
                         headers=first["headers"]).json()["id"]
    appealed = client.post("/api/v1/me/appeals", json={"action_id": action, "text": "我的身份证110101199003070000"},
                           headers=bearer(b["session"]["token"]))
    assert appealed.status_code == 201 and appealed.json()["text"] == "我的身份证110101199003070000"
    with rt.db.read() as db:
        report = db.get(Report, filed.json()["report"]["id"])
        appeal = db.get(Appeal, appealed.json()["id"])
        assert b"13912345678" not in report.description_enc
        assert b"110101199003070000" not in appeal.text_enc
    assert client.get("/api/v1/me/reports", headers=bearer(a["session"]["token"])).json()[0]["description"] \
        == "骗子电话13912345678"
