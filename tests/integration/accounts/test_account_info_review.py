"""Account-information review on registration and PATCH /me (API.md "Account-information review",
COMPLIANCE I1): refused → 422 ``account_info_rejected``, held → 202 and the profile queue, allowed → 200;
a reviewer's approval or rejection reaches the account and its owner."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from passport import errors
from passport.accounts import profile
from passport.accounts.models import Account
from passport.audit.models import AuditEvent
from passport.notify.models import InboxMessage
from passport.origin import Origin
from passport.reviews.models import Review
from passport.work import unit_of_work
from passport_testing import bearer, last_code, make_staff, new_phone, register, register_account

ADMIN = "/api/v1/admin"


def me(client, done) -> dict:
    answer = client.get("/api/v1/me", headers=bearer(done["session"]["token"]))
    assert answer.status_code == 200, answer.text
    return answer.json()


def patch(client, done, **body):
    return client.patch("/api/v1/me", json=body, headers=bearer(done["session"]["token"]))


def pending_items(rt, account_id: str) -> list[Review]:
    with rt.db.read() as db:
        return list(db.scalars(select(Review).where(Review.subject_id == account_id, Review.queue == "profile",
                                                    Review.status == "pending")).all())


def actions(rt, account_id: str) -> list[AuditEvent]:
    with rt.db.read() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.subject_id == account_id)
                               .order_by(AuditEvent.seq)).all())


def decide(client, reviewer, review_id: str, decision: str, reason: str | None = None):
    assert client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=reviewer["headers"]).status_code == 200
    return client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": decision, "reason": reason},
                       headers=reviewer["headers"])


# --- PATCH /me -----------------------------------------------------------------------------------

def test_impersonating_nickname_is_refused_with_its_category_in_the_users_language(client, rt):
    done = register_account(client, rt)
    answer = patch(client, done, nickname="中央人民政府官方客服")
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "account_info_rejected"
    assert body["errors"] == [{"field": "nickname", "code": "account_info_rejected", "category": "impersonation",
                               "message": body["errors"][0]["message"]}]
    assert "冒充" in body["errors"][0]["message"] and "人民政府" not in answer.text
    english = client.patch("/api/v1/me", json={"nickname": "中央人民政府官方客服"},
                           headers=bearer(done["session"]["token"], **{"Accept-Language": "en"}))
    assert "Impersonating" in english.json()["errors"][0]["message"]
    assert me(client, done)["nickname"] == "测试用户" and me(client, done)["pending_review"] == {}
    refused = [e for e in actions(rt, done["account"]["id"]) if e.action == "account.profile_refused"]
    assert refused and refused[-1].result == "denied" and "人民政府" not in refused[-1].details


def test_bio_with_contact_gambling_and_fake_invoices_is_refused_and_nothing_changes(client, rt):
    done = register_account(client, rt)
    answer = patch(client, done, nickname="小明", bio="加微信…代开发票 赌博 http://…")
    assert answer.status_code == 422, answer.text
    assert [(e["field"], e["category"]) for e in answer.json()["errors"]] == [("bio", "illegal_services")]
    assert me(client, done)["nickname"] == "测试用户"  # the request is refused as a whole


def test_strict_term_is_held_old_value_stays_and_get_me_shows_it(client, rt):
    done = register_account(client, rt)
    answer = patch(client, done, nickname="中國好聲音")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "pending_review", "fields": ["nickname"]}
    shown = me(client, done)
    assert shown["nickname"] == "测试用户" and shown["pending_review"] == {"nickname": "中國好聲音"}
    [item] = pending_items(rt, done["account"]["id"])
    assert item.subject_type == "account.nickname"
    payload = __import__("json").loads(item.payload)
    assert payload["value"] == "中國好聲音" and payload["strict_review"] is True
    assert payload["hits"][0]["category"] == "strict_review" and payload["marks"] == [[0, 2, ["strict_review"]]]
    # The same value again is not a second item; a newer one supersedes it.
    assert patch(client, done, nickname="中國好聲音").status_code == 202
    assert len(pending_items(rt, done["account"]["id"])) == 1
    assert patch(client, done, nickname="中华小当家").status_code == 202
    [newer] = pending_items(rt, done["account"]["id"])
    assert newer.id != item.id and me(client, done)["pending_review"] == {"nickname": "中华小当家"}
    # An allowed nickname applies at once and withdraws what was held.
    assert patch(client, done, nickname="小当家").status_code == 200
    assert pending_items(rt, done["account"]["id"]) == []
    assert me(client, done)["pending_review"] == {} and me(client, done)["nickname"] == "小当家"


def test_allowed_names_apply_at_once(client, rt):
    done = register_account(client, rt)
    for nickname in ("阿卜杜·热合曼", "Zoë Müller", "公安题材小说爱好者", "2008奥运志愿者"):
        answer = patch(client, done, nickname=nickname, bio="微笑的信使，生于1990年")
        assert answer.status_code == 200, (nickname, answer.text)
        assert answer.json()["nickname"] == nickname and answer.json()["pending_review"] == {}


def test_unchanged_fields_are_not_checked_again(client, rt):
    done = register_account(client, rt)
    with rt.db.write() as db:  # a nickname from before the lexicon (or before this feature)
        db.get(Account, done["account"]["id"]).nickname = "赌神阿飞"
    rt.sessions_cache.drop(lambda row: True)
    answer = patch(client, done, nickname="赌神阿飞", bio="喜欢看电影")
    assert answer.status_code == 200, answer.text
    assert answer.json()["bio"] == "喜欢看电影" and pending_items(rt, done["account"]["id"]) == []


# --- registration --------------------------------------------------------------------------------

def test_registering_as_a_state_security_organ_is_refused_before_the_code_is_spent(client, rt):
    phone = new_phone()
    assert client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"}).status_code == 202
    code = last_code(rt, phone, "register")
    refused = register(client, phone, code, nickname="国家安全部 官方")
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0] == {"field": "nickname", "code": "account_info_rejected",
                                           "category": "impersonation",
                                           "message": refused.json()["errors"][0]["message"]}
    assert register(client, phone, code, nickname="小王").status_code == 201  # the same code still works


def test_registration_with_a_held_nickname_gets_a_neutral_one_until_approved(client, rt):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt, nickname="中华武术爱好者")
    account_id = done["account"]["id"]
    assert done["account"]["nickname"].startswith("用户") and "中华" not in done["account"]["nickname"]
    assert done["account"]["pending_review"] == {"nickname": "中华武术爱好者"}
    [item] = pending_items(rt, account_id)
    # Strict review: approval needs a reason.
    refused = decide(client, reviewer, item.id, "approve")
    assert refused.status_code == 422 and refused.json()["code"] == "reason_required"
    approved = client.post(f"{ADMIN}/reviews/{item.id}", json={"decision": "approve", "reason": "武术爱好者，无冒充"},
                           headers=reviewer["headers"])
    assert approved.status_code == 200, approved.text
    shown = me(client, done)
    assert shown["nickname"] == "中华武术爱好者" and shown["pending_review"] == {}


# --- the reviewer's decision ---------------------------------------------------------------------

def test_approval_applies_the_change_and_tells_the_user(client, rt):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    assert patch(client, done, bio="加微信聊聊摄影").status_code == 202
    [item] = pending_items(rt, account_id)
    listed = client.get(f"{ADMIN}/reviews", params={"queue": "profile", "limit": 100}, headers=reviewer["headers"])
    shown = next(i for i in listed.json()["items"] if i["id"] == item.id)
    assert shown["payload"]["hits"][0] | {"start": 0} == {"category": "advertising", "start": 0, "end": 3,
                                                        "rule": "contact.toml:加微信", "verdict": "review"}
    answer = decide(client, reviewer, item.id, "approve")
    assert answer.status_code == 200, answer.text
    assert me(client, done)["bio"] == "加微信聊聊摄影" and me(client, done)["pending_review"] == {}
    with rt.db.read() as db:
        inbox = db.scalars(select(InboxMessage).where(InboxMessage.account_id == account_id)
                           .order_by(InboxMessage.created_at.desc())).first()
    assert inbox.template == "profile_change_approved"
    messages = client.get("/api/v1/me/messages", headers=bearer(done["session"]["token"])).json()
    assert "资料修改已通过审核" in str(messages)
    updated = [e for e in actions(rt, account_id) if e.action == "account.profile_updated"]
    assert updated[-1].actor_type == "staff" and updated[-1].actor_id == reviewer["id"]


def test_rejection_keeps_the_old_value_and_tells_the_reason(client, rt):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    assert patch(client, done, nickname="人民日报读者").status_code == 202
    [item] = pending_items(rt, account_id)
    answer = decide(client, reviewer, item.id, "reject", "昵称易被误认为媒体官方账号")
    assert answer.status_code == 200, answer.text
    shown = me(client, done)
    assert shown["nickname"] == "测试用户" and shown["pending_review"] == {}
    with rt.db.read() as db:
        inbox = db.scalars(select(InboxMessage).where(InboxMessage.account_id == account_id)
                           .order_by(InboxMessage.created_at.desc())).first()
    assert inbox.template == "profile_change_rejected" and "昵称易被误认为媒体官方账号" in inbox.params
    assert any(e.action == "account.profile_change_rejected" for e in actions(rt, account_id))


def test_a_superseded_item_cannot_be_decided(client, rt):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    assert patch(client, done, nickname="中国象棋少年").status_code == 202
    assert patch(client, done, nickname="全国冠军").status_code == 202
    with rt.db.read() as db:
        old = db.scalars(select(Review).where(Review.subject_id == done["account"]["id"],
                                              Review.status == "withdrawn")).all()
    for item in old:
        answer = client.post(f"{ADMIN}/reviews/{item.id}/claim", headers=reviewer["headers"])
        assert answer.status_code == 409 and answer.json()["code"] == "already_decided"


# --- POST /moderation/check ----------------------------------------------------------------------

def test_check_endpoint_explains_the_verdict_to_staff_only(client, rt):
    operator = make_staff(rt, "operator")
    text = "國 务\u200b院客服"
    answer = client.post("/api/v1/moderation/check", json={"field": "nickname", "text": text},
                         headers=operator["headers"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["verdict"] == "block" and body["normalized"] == "国务院客服"
    organ = next(h for h in body["hits"] if h["rule"].endswith(":国务院"))
    assert organ["category"] == "impersonation" and text[organ["start"]:organ["end"]] == "國 务\u200b院"
    auditor = make_staff(rt, "auditor")
    assert client.post("/api/v1/moderation/check", json={"text": "x"}, headers=auditor["headers"]).status_code == 403
    done = register_account(client, rt)
    assert client.post("/api/v1/moderation/check", json={"text": "x"},
                       headers=bearer(done["session"]["token"])).status_code == 401
    bad = client.post("/api/v1/moderation/check", json={"field": "avatar", "text": "x"}, headers=operator["headers"])
    assert bad.status_code == 422


# --- staff reset (§五(一)) -----------------------------------------------------------------------------

def test_reset_puts_the_default_back_withdraws_a_held_change_and_tells_the_owner(client, rt):
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    assert patch(client, done, bio="喜欢爬山").status_code == 200
    assert patch(client, done, nickname="中國好聲音").status_code == 202
    staff = ("staff", "s-1")
    with unit_of_work(rt, Origin(channel="admin"), actor=staff) as work:
        assert profile.reset_account_info(rt, work, account_id, "nickname", reason="冒充他人", staff_id="s-1")
        assert profile.reset_account_info(rt, work, account_id, "bio", reason="广告", staff_id="s-1")
    shown = me(client, done)
    assert shown["nickname"] == f"用户{account_id[-6:].upper()}" and shown["bio"] is None
    assert shown["pending_review"] == {} and pending_items(rt, account_id) == []
    resets = [e for e in actions(rt, account_id) if e.action == "account.info_reset"]
    assert [json.loads(e.details)["field"] for e in resets] == ["nickname", "bio"]
    assert resets[0].actor_type == "staff" and json.loads(resets[0].details)["reason"] == "冒充他人"
    with rt.db.read() as db:
        templates = [m.template for m in db.scalars(select(InboxMessage).where(InboxMessage.account_id == account_id))]
    assert templates.count("profile_reset") == 2
    with unit_of_work(rt, Origin(channel="admin"), actor=staff) as work:  # already the default: nothing to do
        assert not profile.reset_account_info(rt, work, account_id, "bio", reason="广告", staff_id="s-1")
    with pytest.raises(errors.DomainError) as refused, unit_of_work(rt, Origin(channel="admin"), actor=staff) as work:
        profile.reset_account_info(rt, work, account_id, "nickname", reason="  ", staff_id="s-1")
    assert refused.value.code == "reason_required"
