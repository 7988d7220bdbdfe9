"""Actions on organisations (issue 18): warning, suspension (the public page shows 已暂停), revocation of
verification, dissolution by staff; a sole administrator dissolves or hands over a verified organisation
and can then cancel their own account (blocked before, possible after)."""

from __future__ import annotations

import pytest

from passport_testing import STRONG_PASSWORD, bearer, last_code, make_staff, new_id_number, new_uscc, register_account
from reports_testing import ADMIN, PNG, case_of, claim, decide, inbox

HTML = {"Accept": "text/html"}


@pytest.fixture()
def verified_org(client, rt, monkeypatch):
    """A verified organisation and its sole administrator."""
    monkeypatch.setattr(rt.settings, "realname_provider", "dev")
    owner = register_account(client, rt)
    headers = bearer(owner["session"]["token"])
    assert client.post("/api/v1/me/real-name", json={"name": "张小三", "id_number": new_id_number()},
                       headers=headers).json()["status"] == "verified"
    org = client.post("/api/v1/organizations", data={"name": "杭州云栖科技有限公司", "uscc": new_uscc(),
                                                     "legal_representative": "李四", "contact_phone": "13800138000"},
                      files={"license": ("l.png", PNG, "image/png")}, headers=headers).json()
    reviewer = make_staff(rt, "reviewer")
    review_id = client.get(f"{ADMIN}/reviews", params={"queue": "organization", "limit": 100},
                           headers=reviewer["headers"]).json()["items"]
    review_id = next(i["id"] for i in review_id if i["subject_id"] == org["id"])
    client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=reviewer["headers"])
    client.get(f"{ADMIN}/reviews/{review_id}/document", headers=reviewer["headers"])
    decided = client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "approve"}, headers=reviewer["headers"])
    assert decided.status_code == 200, decided.text
    return {"owner": owner, "headers": headers, "org_id": org["id"], "reviewer": reviewer}


def org_act(client, staff, org_id: str, **body):
    return client.post(f"{ADMIN}/organizations/{org_id}/actions", json=body, headers=staff["headers"])


def test_staff_actions_on_an_organisation(client, rt, verified_org):
    org_id, reviewer = verified_org["org_id"], verified_org["reviewer"]
    assert org_act(client, reviewer, org_id, action="warn", reason="名称不规范").status_code == 200
    assert org_act(client, reviewer, org_id, action="unsuspend", reason="x").json()["code"] == "invalid_transition"
    suspended = org_act(client, reviewer, org_id, action="suspend", reason="涉嫌虚假宣传")
    assert suspended.status_code == 200 and suspended.json()["suspended"] is True
    public = client.get(f"/api/v1/organizations/{org_id}").json()
    assert public["suspended"] is True and public["suspension_reason"] == "涉嫌虚假宣传"
    page = client.get(f"/organizations/{org_id}", headers=HTML)
    assert 'id="organization-suspended"' in page.text and "已暂停" in page.text
    assert f"/reports/new?subject_type=organization&amp;subject_id={org_id}" in page.text
    told = [m for m in inbox(client, verified_org["owner"]["session"]["token"])
            if m["template"] == "organization_action"]
    assert len(told) == 2 and "涉嫌虚假宣传" in told[0]["text"]
    assert org_act(client, reviewer, org_id, action="unsuspend", reason="已整改").json()["suspended"] is False
    revoked = org_act(client, reviewer, org_id, action="revoke_verification", reason="营业执照已吊销")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert client.get(f"/api/v1/organizations/{org_id}").json()["status"] == "revoked"
    again = org_act(client, reviewer, org_id, action="revoke_verification", reason="再次")
    assert again.status_code == 409
    dissolved = org_act(client, reviewer, org_id, action="dissolve", reason="主体已注销")
    assert dissolved.status_code == 200 and dissolved.json()["status"] == "dissolved"
    assert client.get(f"/api/v1/organizations/{org_id}").status_code == 404
    auditor = make_staff(rt, "auditor")
    assert org_act(client, auditor, org_id, action="warn", reason="x").status_code == 403


def request_cancellation(client, rt, user: dict, headers: dict):
    rt.clock.advance(seconds=61)
    sent = client.post("/api/v1/me/verification-codes", json={"purpose": "cancel_account"}, headers=headers)
    assert sent.status_code == 202, sent.text
    return client.post("/api/v1/me/cancellation", headers=headers,
                       json={"password": STRONG_PASSWORD, "code": last_code(rt, user["phone"], "cancel_account")})


def test_a_sole_administrator_dissolves_then_cancels(client, rt, verified_org):
    owner, headers, org_id = verified_org["owner"], verified_org["headers"], verified_org["org_id"]
    blocked = request_cancellation(client, rt, owner, headers)
    assert blocked.status_code == 409 and blocked.json()["code"] == "cancellation_blocked", blocked.text
    stranger = register_account(client, rt)
    refused = client.post(f"/api/v1/organizations/{org_id}/dissolve", headers=bearer(stranger["session"]["token"]))
    assert refused.status_code == 403
    done = client.post(f"/api/v1/organizations/{org_id}/dissolve", headers=headers)
    assert done.status_code == 200 and done.json()["status"] == "dissolved"
    assert client.get(f"/api/v1/organizations/{org_id}").status_code == 404
    allowed = request_cancellation(client, rt, owner, headers)
    assert allowed.status_code == 202, allowed.text


def test_a_sole_administrator_hands_over_then_cancels(client, rt, verified_org):
    owner, headers, org_id = verified_org["owner"], verified_org["headers"], verified_org["org_id"]
    assert request_cancellation(client, rt, owner, headers).status_code == 409
    successor = register_account(client, rt)
    url = f"/api/v1/organizations/{org_id}/administrators"
    assert client.post(url, json={"phone": successor["phone"]}, headers=headers).status_code == 202
    assert client.post(f"{url}/accept", headers=bearer(successor["session"]["token"])).status_code == 204
    assert client.delete(f"{url}/{owner['account']['id']}", headers=headers).status_code == 204
    assert request_cancellation(client, rt, owner, headers).status_code == 202
    assert client.get(f"/api/v1/organizations/{org_id}").json()["status"] == "verified"  # it lives on


def test_a_report_of_an_organisation_decided_with_organisation_actions(client, rt, verified_org):
    org_id, reviewer = verified_org["org_id"], verified_org["reviewer"]
    reporter = register_account(client, rt)
    filed = client.post("/api/v1/reports", data={"subject_type": "organization", "subject_id": org_id,
                                                 "category": "fraud", "field": "name", "description": "冒用名称"},
                        headers=bearer(reporter["session"]["token"]))
    assert filed.status_code == 202, filed.text
    case = case_of(client, reviewer, org_id)
    assert case["subject"]["name"] == "杭州云栖科技有限公司"
    claim(client, reviewer, case["id"])
    wrong = decide(client, reviewer, case["id"], outcome="violation", actions=["reset_field"], field="nickname",
                   reason="x")
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_action"
    done = decide(client, reviewer, case["id"], outcome="violation", actions=["warn", "suspend"], reason="冒用他人名称")
    assert done.status_code == 200, done.text
    public = client.get(f"/api/v1/organizations/{org_id}").json()
    assert public["suspended"] is True and public["suspension_reason"] == "冒用他人名称"
    assert [r["outcome"] for r in client.get("/api/v1/me/reports",
                                             headers=bearer(reporter["session"]["token"])).json()] == ["violation"]
