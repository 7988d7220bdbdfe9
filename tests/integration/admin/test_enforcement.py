"""Account search, detail, reveal and enforcement actions: API.md "Admin", COMPLIANCE R3, I3, D5."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from passport.accounts.models import ID_NUMBER, Account
from passport.admin.models import AccountAction
from passport.audit.models import AuditEvent
from passport.clock import rfc3339
from passport_testing import (
    bearer,
    csrf,
    deliver_notices,
    login,
    make_staff,
    outbox_messages,
    register_account,
)

ADMIN = "/api/v1/admin"


@pytest.fixture()
def reviewer(rt):
    return make_staff(rt, "reviewer")


def act(client, staff, account_id: str, **body):
    return client.post(f"{ADMIN}/accounts/{account_id}/actions", json=body, headers=staff["headers"])


def later(rt, **delta) -> str:
    return rfc3339(rt.clock.now() + timedelta(**delta))


def events(rt, action: str, subject_id: str) -> list[dict]:
    with rt.db.read() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                   AuditEvent.subject_id == subject_id)).all()
        return [{"actor_type": r.actor_type, "actor_id": r.actor_id, "details": json.loads(r.details)} for r in rows]


def test_search_by_phone_answers_masked(client, rt, reviewer):
    user = register_account(client, rt)
    phone = user["phone"]
    found = client.get(f"{ADMIN}/accounts", params={"phone": "+86 " + phone}, headers=reviewer["headers"])
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["total"] == 1
    assert body["items"][0]["id"] == user["account"]["id"]
    assert body["items"][0]["phone"] == f"{phone[:3]}****{phone[-4:]}"
    assert phone not in found.text


def test_search_by_status_and_bad_filters(client, rt, reviewer):
    user = register_account(client, rt)
    act(client, reviewer, user["account"]["id"], action="restrict", reason="多次发布广告")
    found = client.get(f"{ADMIN}/accounts", params={"status": "restricted", "limit": 100}, headers=reviewer["headers"])
    assert found.status_code == 200
    assert user["account"]["id"] in {item["id"] for item in found.json()["items"]}
    bad = client.get(f"{ADMIN}/accounts", params={"status": "sleeping"}, headers=reviewer["headers"])
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_status"
    none = client.get(f"{ADMIN}/accounts", headers=reviewer["headers"])
    assert none.status_code == 422 and none.json()["code"] == "filter_required"


def test_search_by_id_number_goes_through_the_blind_index(client, rt, reviewer):
    from sqlalchemy import update

    from passport.accounts.models import Account
    from passport.admin.enforcement import id_number_index

    user = register_account(client, rt)
    id_number = f"110105{random.randrange(10**11):011d}X"
    # Real-name verification stores these; here the test plays its part.
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == user["account"]["id"]).values(
            real_name_status="verified",
            id_number_enc=rt.keys.cipher.encrypt(id_number, ID_NUMBER, user["account"]["id"]),
            id_number_bidx=id_number_index(rt, id_number)))
    found = client.get(f"{ADMIN}/accounts", params={"id_number": id_number.lower()}, headers=reviewer["headers"])
    assert found.status_code == 200
    assert [item["id"] for item in found.json()["items"]] == [user["account"]["id"]]
    assert id_number not in found.text and user["phone"] not in found.text
    other = client.get(f"{ADMIN}/accounts", params={"id_number": "11010519491231002X"}, headers=reviewer["headers"])
    assert other.status_code == 200 and other.json()["items"] == []
    malformed = client.get(f"{ADMIN}/accounts", params={"id_number": "12345"}, headers=reviewer["headers"])
    assert malformed.status_code == 422 and malformed.json()["code"] == "invalid_id_number"


@pytest.mark.parametrize("role", ["auditor", "operator", "superadmin"])
def test_other_roles_cannot_read_reveal_or_act(client, rt, role):
    staff = make_staff(rt, role)
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    assert client.get(f"{ADMIN}/accounts", params={"phone": user["phone"]}, headers=staff["headers"]).status_code == 403
    assert client.get(f"{ADMIN}/accounts/{account_id}", headers=staff["headers"]).status_code == 403
    assert client.post(f"{ADMIN}/accounts/{account_id}/reveal", json={"field": "phone", "reason": "核实身份信息"},
                       headers=staff["headers"]).status_code == 403
    assert act(client, staff, account_id, action="warn", reason="x").status_code == 403
    assert client.get(f"{ADMIN}/accounts", params={"phone": user["phone"]}).status_code == 401


def test_detail_shows_status_sessions_consents_activity_and_history(client, rt, reviewer):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    act(client, reviewer, account_id, action="warn", reason="昵称不当")
    detail = client.get(f"{ADMIN}/accounts/{account_id}", headers=reviewer["headers"])
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["status"] == "active"
    assert body["phone"].count("*") == 4 and user["phone"] not in detail.text
    assert len(body["sessions"]) == 1
    assert {c["kind"] for c in body["consents"]} == {"user-agreement", "privacy-policy"}
    assert body["activity"][0]["action"] == "account.action.warn"
    assert body["actions"][0]["action"] == "warn" and body["actions"][0]["reason"] == "昵称不当"
    assert body["actions"][0]["staff"] == reviewer["login"]
    assert client.get(f"{ADMIN}/accounts/nope", headers=reviewer["headers"]).status_code == 404


def test_reveal_needs_a_reason_and_is_audited_without_the_value(client, rt, reviewer):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    for reason in ("", "  ab "):
        refused = client.post(f"{ADMIN}/accounts/{account_id}/reveal", json={"field": "phone", "reason": reason},
                              headers=reviewer["headers"])
        assert refused.status_code == 422 and refused.json()["code"] == "reason_required"
    assert events(rt, "account.revealed", account_id) == []
    shown = client.post(f"{ADMIN}/accounts/{account_id}/reveal", json={"field": "phone", "reason": "用户来电核实身份"},
                        headers=reviewer["headers"])
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"field": "phone", "value": "+86" + user["phone"]}
    [event] = events(rt, "account.revealed", account_id)
    assert event["actor_type"] == "staff" and event["actor_id"] == reviewer["id"]
    assert event["details"]["field"] == "phone" and event["details"]["reason"] == "用户来电核实身份"
    assert user["phone"] not in json.dumps(event, ensure_ascii=False)
    no_email = client.post(f"{ADMIN}/accounts/{account_id}/reveal", json={"field": "email", "reason": "核实邮箱地址"},
                           headers=reviewer["headers"])
    assert no_email.status_code == 404


def test_suspension_blocks_login_with_reason_and_until_and_revokes_sessions(client, rt, reviewer):
    user = register_account(client, rt)
    account_id, token = user["account"]["id"], user["session"]["token"]
    until = later(rt, days=3)
    done = act(client, reviewer, account_id, action="suspend", reason="发布违法信息", until=until)
    assert done.status_code == 201, done.text
    assert done.json()["revoked_sessions"] == 1
    assert done.json()["account"]["status"] == "suspended"
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    refused = login(client, user["phone"])
    assert refused.status_code == 403
    body = refused.json()
    assert body["code"] == "account_suspended"
    assert body["reason"] == "发布违法信息"
    assert body["until"][:19] == until[:19]
    [row] = events(rt, "account.action.suspend", account_id)
    assert row["actor_type"] == "staff" and row["details"]["to_status"] == "suspended"
    with rt.db.read() as db:
        [action] = db.scalars(select(AccountAction).where(AccountAction.account_id == account_id)).all()
        assert action.action == "suspend" and action.staff_id == reviewer["id"]


def test_suspension_notice_reaches_the_user_by_sms(client, rt, reviewer):
    user = register_account(client, rt)
    act(client, reviewer, user["account"]["id"], action="suspend", reason="发布违法信息", until=later(rt, days=1))
    deliver_notices(rt)
    notices = [m for m in outbox_messages(rt) if m["to"] == "+86" + user["phone"]
               and m["purpose"] == "notice_account_action"]
    assert len(notices) == 1
    assert "暂停使用" in notices[0]["text"] and "发布违法信息" in notices[0]["text"]
    assert "截止时间" in notices[0]["text"]


def test_expired_suspension_lets_the_user_back_in(client, rt, reviewer):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    act(client, reviewer, account_id, action="suspend", reason="短期处罚", until=later(rt, hours=2))
    assert login(client, user["phone"]).status_code == 403
    # The end time passes (moved back rather than the clock forward: the shared database keeps no
    # events dated in the future for later tests to trip over).
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id)
                   .values(status_until=rt.clock.now() - timedelta(minutes=1)))
    back = login(client, user["phone"])
    assert back.status_code == 201, back.text
    assert back.json()["account"]["status"] == "active"
    me = client.get("/api/v1/me", headers=bearer(back.json()["token"]))
    assert me.status_code == 200 and me.json()["status"] == "active"
    assert len(events(rt, "account.suspension_ended", account_id)) == 1


def test_unsuspend_restores_login_and_needs_a_suspension(client, rt, reviewer):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    wrong = act(client, reviewer, account_id, action="unsuspend", reason="误操作")
    assert wrong.status_code == 409 and wrong.json()["code"] == "invalid_transition"
    act(client, reviewer, account_id, action="suspend", reason="调查中", until=later(rt, days=7))
    lifted = act(client, reviewer, account_id, action="unsuspend", reason="调查完毕，未发现违规")
    assert lifted.status_code == 201 and lifted.json()["account"]["status"] == "active"
    assert lifted.json()["account"]["status_reason"] is None
    assert login(client, user["phone"]).status_code == 201


def test_terminate_is_final(client, rt, reviewer):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    done = act(client, reviewer, account_id, action="terminate", reason="严重违反用户协议")
    assert done.status_code == 201 and done.json()["revoked_sessions"] == 1
    refused = login(client, user["phone"])
    assert refused.status_code == 403
    assert refused.json()["code"] == "account_terminated" and refused.json()["reason"] == "严重违反用户协议"
    for action in ("unsuspend", "warn", "suspend"):
        again = act(client, reviewer, account_id, action=action, reason="再次处理", until=later(rt, days=1))
        assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


def test_warn_and_require_correction_keep_status_and_sessions(client, rt, reviewer):
    user = register_account(client, rt)
    account_id, token = user["account"]["id"], user["session"]["token"]
    assert act(client, reviewer, account_id, action="warn", reason="头像不当").status_code == 201
    missing = act(client, reviewer, account_id, action="require_correction", reason="请修改昵称")
    assert missing.status_code == 422 and missing.json()["code"] == "until_required"
    past = act(client, reviewer, account_id, action="require_correction", reason="请修改昵称", until=later(rt, days=-1))
    assert past.status_code == 422 and past.json()["code"] == "until_in_past"
    done = act(client, reviewer, account_id, action="require_correction", reason="请修改昵称", until=later(rt, days=5))
    assert done.status_code == 201 and done.json()["account"]["status"] == "active"
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    deliver_notices(rt)
    texts = [m["text"] for m in outbox_messages(rt) if m["to"] == "+86" + user["phone"]
             and m["purpose"] == "notice_account_action"]
    assert any("限期改正" in t and "改正期限" in t for t in texts)


def test_restrict_keeps_login_but_sets_status(client, rt, reviewer):
    user = register_account(client, rt)
    done = act(client, reviewer, user["account"]["id"], action="restrict", reason="账号信息待核实")
    assert done.status_code == 201 and done.json()["account"]["status"] == "restricted"
    assert login(client, user["phone"]).status_code == 201


@pytest.mark.parametrize("body", [
    {"action": "warn", "reason": ""},
    {"action": "warn", "reason": "   "},
    {"action": "warn"},
    {"action": "require_correction", "reason": "违规"},
    {"action": "explode", "reason": "违规"},
])
def test_bad_action_requests_change_nothing(client, rt, reviewer, body):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    answer = act(client, reviewer, account_id, **body)
    assert answer.status_code == 422
    with rt.db.read() as db:
        assert db.get(Account, account_id).status == "active"
        assert db.scalars(select(AccountAction).where(AccountAction.account_id == account_id)).all() == []


def test_actions_on_a_cancelled_account_are_refused(client, rt, reviewer):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id).values(status="cancelled"))
    answer = act(client, reviewer, account_id, action="warn", reason="违规")
    assert answer.status_code == 409 and answer.json()["code"] == "account_cancelled"
    assert events(rt, "account.action.warn", account_id) == []


def test_a_frozen_account_is_not_suspended_over_the_owners_freeze(client, rt, reviewer):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id).values(status="frozen"))
    for action in ("restrict", "suspend", "unsuspend"):
        answer = act(client, reviewer, account_id, action=action, reason="处理", until=later(rt, days=1))
        assert answer.status_code == 409 and answer.json()["code"] == "invalid_transition"
    ended = act(client, reviewer, account_id, action="terminate", reason="严重违规")
    assert ended.status_code == 201 and ended.json()["account"]["status"] == "terminated"


def staff_reads(rt, staff_id: str, action: str) -> list[dict]:
    with rt.db.read() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.action == action, AuditEvent.actor_id == staff_id)
                          .order_by(AuditEvent.seq)).all()
        return [{"actor_type": r.actor_type, "subject": (r.subject_type, r.subject_id), "result": r.result,
                 "details": json.loads(r.details), "raw": r.details} for r in rows]


def test_staff_searches_and_detail_views_are_audited_masked(client, rt, reviewer):
    """Issue 15 (PIPL Art. 51): a search by phone or ID number and a look at an account are recorded,
    naming the staff member, with the searched value masked."""
    user = register_account(client, rt)
    phone, account_id = user["phone"], user["account"]["id"]
    id_number = f"110105{random.randrange(10**11):011d}X"
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id).values(
            real_name_status="verified", id_number_enc=rt.keys.cipher.encrypt(id_number, ID_NUMBER, account_id),
            id_number_bidx=rt.keys.blind_index("id_number", id_number)))
    assert client.get(f"{ADMIN}/accounts", params={"phone": phone}, headers=reviewer["headers"]).status_code == 200
    assert client.get(f"{ADMIN}/accounts", params={"id_number": id_number},
                      headers=reviewer["headers"]).status_code == 200
    searches = staff_reads(rt, reviewer["id"], "account.searched")
    assert [(s["actor_type"], {k: v for k, v in s["details"].items() if k != "channel"}) for s in searches] == [
        ("staff", {"phone": f"{phone[:3]}****{phone[-4:]}", "total": 1, "accounts": [account_id]}),
        ("staff", {"id_number": f"{id_number[:4]}**********{id_number[-4:]}", "total": 1,
                   "accounts": [account_id]})]
    assert not any(phone in s["raw"] or id_number in s["raw"] for s in searches)
    assert client.get(f"{ADMIN}/accounts/{account_id}", headers=reviewer["headers"]).status_code == 200
    [viewed] = staff_reads(rt, reviewer["id"], "account.viewed")
    assert viewed["actor_type"] == "staff" and viewed["subject"] == ("account", account_id)
    assert phone not in viewed["raw"]
    # The account pages (the staff cookie) are recorded the same way.
    client.cookies.set("passport_admin", reviewer["token"])
    try:
        assert client.get(f"/admin/accounts/{account_id}").status_code == 200
        assert client.post("/admin/accounts", data={"phone": phone, "csrf_token": csrf(client)}).status_code == 200
    finally:
        client.cookies.delete("passport_admin")
    assert len(staff_reads(rt, reviewer["id"], "account.viewed")) == 2
    assert staff_reads(rt, reviewer["id"], "account.searched")[-1]["details"]["phone"] == f"{phone[:3]}****{phone[-4:]}"
