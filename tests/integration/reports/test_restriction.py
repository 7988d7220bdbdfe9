"""A restriction bites (issue 18): account information, the email, new organisations and invitations are
refused with 403 ``account_restricted``; everything else works; apps read ``restricted`` in GET /me."""

from __future__ import annotations

import pytest

from passport_testing import (
    STRONG_PASSWORD,
    bearer,
    csrf_of,
    login,
    make_staff,
    new_id_number,
    new_uscc,
    register_account,
    step_up,
)
from reports_testing import ADMIN, PNG


def restrict(client, staff, account_id: str, reason: str = "多次发布违规信息"):
    done = client.post(f"{ADMIN}/accounts/{account_id}/actions", json={"action": "restrict", "reason": reason},
                       headers=staff["headers"])
    assert done.status_code == 201, done.text
    return done


@pytest.fixture()
def reviewer(rt):
    return make_staff(rt, "reviewer")


@pytest.fixture()
def member(client, rt, monkeypatch):
    """A verified person who administers an organisation (its application pending)."""
    monkeypatch.setattr(rt.settings, "realname_provider", "dev")
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    verified = client.post("/api/v1/me/real-name", json={"name": "张小三", "id_number": new_id_number()},
                           headers=headers)
    assert verified.status_code == 200, verified.text
    org = client.post("/api/v1/organizations", data={"name": "杭州云栖科技有限公司", "uscc": new_uscc(),
                                                     "legal_representative": "李四", "contact_phone": "13800138000"},
                      files={"license": ("l.png", PNG, "image/png")}, headers=headers)
    assert org.status_code == 202, org.text
    return done | {"headers": headers, "org_id": org.json()["id"]}


def _refused(answer, operation: str) -> None:
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["code"] == "account_restricted" and body["operation"] == operation
    assert body["reason"] == "多次发布违规信息"


def test_blocked_operations(client, rt, reviewer, member):
    restrict(client, reviewer, member["account"]["id"])
    headers = bearer(step_up(client, member["session"]["token"]))
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["status"] == "restricted" and me["restricted"] is True
    _refused(client.patch("/api/v1/me", json={"nickname": "新名字"}, headers=headers), "profile")
    _refused(client.patch("/api/v1/me", json={"bio": "新简介"}, headers=headers), "profile")
    _refused(client.put("/api/v1/me/avatar", files={"avatar": ("a.png", PNG, "image/png")}, headers=headers),
             "profile")
    _refused(client.post("/api/v1/me/email", json={"email": "x@example.com"}, headers=headers), "email")
    _refused(client.post("/api/v1/me/email/verify", json={"code": "123456"}, headers=headers), "email")
    _refused(client.post("/api/v1/organizations", data={"name": "杭州另一家科技有限公司", "uscc": new_uscc(),
                                                         "legal_representative": "李四",
                                                         "contact_phone": "13800138000"},
                         files={"license": ("l.png", PNG, "image/png")}, headers=headers), "organization")
    _refused(client.post(f"/api/v1/organizations/{member['org_id']}/administrators",
                         json={"phone": "13900139000"}, headers=headers), "invitation")
    assert client.get("/api/v1/me", headers=headers).json()["nickname"] == member["account"]["nickname"]


def test_allowed_operations(client, rt, reviewer, member):
    headers = member["headers"]
    restrict(client, reviewer, member["account"]["id"])
    assert login(client, member["phone"]).status_code == 201
    assert client.get("/api/v1/me/messages", headers=headers).status_code == 200
    assert client.get("/api/v1/sessions", headers=headers).status_code == 200
    assert client.get("/api/v1/me/organizations", headers=headers).status_code == 200
    assert client.get("/api/v1/me/actions", headers=headers).json()[0]["action"] == "restrict"
    changed = client.put("/api/v1/me/password", json={"current_password": STRONG_PASSWORD,
                                                       "new_password": STRONG_PASSWORD + "x"}, headers=headers)
    assert changed.status_code == 200, changed.text
    headers = bearer(changed.json()["token"])
    other = register_account(client, rt)
    reported = client.post("/api/v1/reports", data={"subject_type": "account", "subject_id": other["account"]["id"],
                                                    "category": "fraud", "description": "诈骗"}, headers=headers)
    assert reported.status_code == 202
    appeal = client.post("/api/v1/me/appeals", json={"action_id": client.get("/api/v1/me/actions", headers=headers)
                                                     .json()[0]["id"], "text": "请复核"}, headers=headers)
    assert appeal.status_code == 201, appeal.text
    # Lifting the restriction gives the changes back.
    lifted = client.post(f"{ADMIN}/accounts/{member['account']['id']}/actions",
                         json={"action": "unsuspend", "reason": "复核后解除"}, headers=reviewer["headers"])
    assert lifted.status_code == 201
    assert client.patch("/api/v1/me", json={"bio": "新简介"}, headers=headers).status_code == 200


def test_the_account_page_says_why_a_change_is_refused(client, rt, reviewer):
    user = register_account(client, rt, nickname="原来的名字")
    restrict(client, reviewer, user["account"]["id"])
    client.cookies.set("passport_session", user["session"]["token"])
    page = client.get("/account", headers={"Accept": "text/html"})
    refused = client.post("/account/profile", data={"csrf_token": csrf_of(page.text), "nickname": "新名字",
                                                    "bio": ""}, headers={"Accept": "text/html"})
    assert refused.status_code == 403 and "限制使用" in refused.text
    assert client.get("/api/v1/me", headers=bearer(user["session"]["token"])).json()["nickname"] == "原来的名字"
