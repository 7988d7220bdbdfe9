"""The console's pages for actions that were only in the JSON API (issue 18): the legal hold on the account
page (superadmins) and the organisation page with its actions outside a report case (reviewers)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from passport.audit.models import AuditEvent
from passport.reports.models import LegalHold
from passport_testing import bearer, csrf_of, make_staff, new_id_number, new_uscc, register_account
from reports_testing import ADMIN, PNG

HTML = {"Accept": "text/html"}


def as_staff(client, staff: dict | None) -> None:
    client.cookies.clear()
    if staff is not None:
        client.cookies.set("passport_admin", staff["token"])


def holds(rt, account_id: str) -> list[LegalHold]:
    with rt.db.read() as db:
        return list(db.scalars(select(LegalHold).where(LegalHold.account_id == account_id).order_by(LegalHold.id)))


def audited(rt, action: str, subject_id: str) -> list[dict]:
    with rt.db.read() as db:
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                     AuditEvent.subject_id == subject_id))
        return [json.loads(e.details) if isinstance(e.details, str) else e.details for e in events]


def test_the_legal_holds_page_is_for_superadmins_only(client, rt):
    user = register_account(client, rt)
    for role in ("reviewer", "auditor", "operator"):
        as_staff(client, make_staff(rt, role))
        assert client.get("/admin/legal-holds", headers=HTML).status_code == 403
        assert "/admin/legal-holds" not in client.get("/admin", headers=HTML).text
    page = client.get("/admin/passkeys", headers=HTML)
    refused = client.post("/admin/legal-holds", data={"csrf_token": csrf_of(page.text), "reason": "法院协助调查函",
                                                      "account_id": user["account"]["id"]}, headers=HTML)
    assert refused.status_code == 403 and holds(rt, user["account"]["id"]) == []
    as_staff(client, None)
    signed_out = client.get("/admin/legal-holds", headers=HTML, follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/admin/login")
    anonymous = client.post("/admin/legal-holds", headers=HTML, follow_redirects=False,
                            data={"reason": "法院协助调查函", "account_id": user["account"]["id"]})
    assert anonymous.status_code in (303, 403) and holds(rt, user["account"]["id"]) == []

    as_staff(client, make_staff(rt, "superadmin"))
    page = client.get(f"/admin/legal-holds?account={user['account']['id']}", headers=HTML)
    assert page.status_code == 200 and 'id="form-hold-set"' in page.text and user["account"]["id"] in page.text
    assert 'id="admin-legal-holds-link"' in page.text


def test_set_and_release_a_hold_through_the_page(client, rt):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    zh = {**HTML, "Accept-Language": "zh-CN"}
    as_staff(client, make_staff(rt, "superadmin"))
    page = client.get("/admin/legal-holds", headers=HTML)
    token = csrf_of(page.text)

    forged = client.post("/admin/legal-holds", data={"csrf_token": "forged", "account_id": account_id,
                                                     "reason": "法院协助调查函"}, headers=HTML)
    assert forged.status_code == 403 and holds(rt, account_id) == []
    short = client.post("/admin/legal-holds", data={"csrf_token": token, "account_id": account_id, "reason": "短"},
                        headers=zh)
    assert short.status_code == 422 and 'id="hold-reason-error"' in short.text and "至少" in short.text
    unknown = client.post("/admin/legal-holds", data={"csrf_token": token, "account_id": "nope",
                                                      "reason": "法院协助调查函"}, headers=zh)
    assert unknown.status_code == 404 and 'id="hold-account-error"' in unknown.text and "账号不存在" in unknown.text
    assert holds(rt, account_id) == []

    done = client.post("/admin/legal-holds", data={"csrf_token": token, "account_id": account_id,
                                                   "reason": "法院协助调查函"}, headers=HTML, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/admin/legal-holds?done=set"
    (hold,) = holds(rt, account_id)
    assert hold.reason == "法院协助调查函" and hold.released_at is None
    assert audited(rt, "account.legal_hold_set", account_id)[0]["reason"] == "法院协助调查函"
    page = client.get(done.headers["location"], headers=zh)
    assert f'data-account="{account_id}"' in page.text and "法院协助调查函" in page.text
    assert "已设置法律保全" in page.text and 'data-confirm="解除法律保全？"' in page.text
    reviewer = make_staff(rt, "reviewer")  # reviewers see the hold on the account page, without its forms
    as_staff(client, reviewer)
    detail = client.get(f"/admin/accounts/{account_id}", headers=HTML)
    assert 'id="account-legal-hold"' in detail.text and "法院协助调查函" in detail.text
    assert "/admin/legal-holds" not in detail.text
    as_staff(client, make_staff(rt, "superadmin"))
    token = csrf_of(client.get("/admin/legal-holds", headers=HTML).text)

    again = client.post("/admin/legal-holds", data={"csrf_token": token, "account_id": account_id,
                                                    "reason": "法院协助调查函"}, headers=zh)
    assert again.status_code == 409 and "该账号已处于法律保全中" in again.text and len(holds(rt, account_id)) == 1

    released = client.post("/admin/legal-holds/release", data={"csrf_token": token, "account_id": account_id,
                                                               "release": "yes", "reason": "调查已结束了"},
                           headers=HTML, follow_redirects=False)
    assert released.status_code == 303 and released.headers["location"] == "/admin/legal-holds?done=released"
    (hold,) = holds(rt, account_id)
    assert hold.released_at is not None
    assert audited(rt, "account.legal_hold_released", account_id)[0]["reason"] == "调查已结束了"
    page = client.get("/admin/legal-holds", headers=HTML)
    assert f'data-account="{account_id}"' not in page.text
    nothing = client.post("/admin/legal-holds/release", data={"csrf_token": token, "account_id": account_id,
                                                              "release": "yes", "reason": "调查已结束了"}, headers=zh)
    assert nothing.status_code == 404 and 'role="alert"' in nothing.text and "未设置法律保全" in nothing.text


@pytest.fixture()
def verified_org(client, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "realname_provider", "dev")
    owner = register_account(client, rt)
    headers = bearer(owner["session"]["token"])
    assert client.post("/api/v1/me/real-name", json={"name": "张小三", "id_number": new_id_number()},
                       headers=headers).json()["status"] == "verified"
    org = client.post("/api/v1/organizations", data={"name": "杭州云栖科技有限公司", "uscc": new_uscc(),
                                                     "legal_representative": "李四", "contact_phone": "13800138000"},
                      files={"license": ("l.png", PNG, "image/png")}, headers=headers).json()
    reviewer = make_staff(rt, "reviewer")
    items = client.get(f"{ADMIN}/reviews", params={"queue": "organization", "limit": 100},
                       headers=reviewer["headers"]).json()["items"]
    review_id = next(i["id"] for i in items if i["subject_id"] == org["id"])
    client.post(f"{ADMIN}/reviews/{review_id}/claim", headers=reviewer["headers"])
    client.get(f"{ADMIN}/reviews/{review_id}/document", headers=reviewer["headers"])
    assert client.post(f"{ADMIN}/reviews/{review_id}", json={"decision": "approve"},
                       headers=reviewer["headers"]).status_code == 200
    return {"org_id": org["id"], "reviewer": reviewer, "review_id": review_id}


def test_the_organisation_page_and_its_roles(client, rt, verified_org):
    org_id, reviewer = verified_org["org_id"], verified_org["reviewer"]
    url = f"/admin/organizations/{org_id}"
    as_staff(client, reviewer)
    page = client.get(url, headers={**HTML, "Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "杭州云栖科技有限公司" in page.text
    assert 'data-suspended="no"' in page.text and 'id="organization-admins">1<' in page.text
    assert "李四" not in page.text and "13800138000" not in page.text  # no personal data
    assert 'id="form-org-act"' in page.text and 'data-confirm="确定对该组织采取此措施？"' in page.text
    assert 'id="form-org-warn"' in page.text
    review = client.get(f"/admin/reviews/{verified_org['review_id']}", headers=HTML)
    assert f'href="{url}"' in review.text
    assert client.get("/admin/organizations/nope", headers=HTML).status_code == 404

    as_staff(client, make_staff(rt, "auditor"))
    assert client.get(url, headers=HTML).status_code == 403
    as_staff(client, None)
    assert client.get(url, headers=HTML, follow_redirects=False).headers["location"].startswith("/admin/login")


def test_an_organisation_action_through_the_page_takes_effect(client, rt, verified_org):
    org_id, reviewer = verified_org["org_id"], verified_org["reviewer"]
    url = f"/admin/organizations/{org_id}"
    as_staff(client, reviewer)
    page = client.get(url, headers=HTML)
    forged = client.post(f"{url}/actions", data={"csrf_token": "forged", "action": "suspend", "reason": "涉嫌虚假宣传"},
                         headers=HTML)
    assert forged.status_code == 403
    assert client.get(f"/api/v1/organizations/{org_id}").json()["suspended"] is False
    no_reason = client.post(f"{url}/actions", data={"csrf_token": csrf_of(page.text), "action": "suspend",
                                                    "reason": ""}, headers={**HTML, "Accept-Language": "zh-CN"})
    assert no_reason.status_code == 422 and 'class="field-error"' in no_reason.text
    lift = client.post(f"{url}/actions", data={"csrf_token": csrf_of(page.text), "action": "unsuspend",
                                               "reason": "误操作"}, headers={**HTML, "Accept-Language": "zh-CN"})
    assert lift.status_code == 409 and "该组织当前状态下无法执行此操作" in lift.text

    done = client.post(f"{url}/actions", data={"csrf_token": csrf_of(page.text), "action": "suspend",
                                               "reason": "涉嫌虚假宣传"}, headers=HTML, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"{url}?done=1"
    public = client.get(f"/organizations/{org_id}", headers={**HTML, "Accept-Language": "zh-CN"})
    assert 'id="organization-suspended"' in public.text and "已暂停" in public.text
    page = client.get(done.headers["location"], headers=HTML)
    assert 'data-suspended="yes"' in page.text and "涉嫌虚假宣传" in page.text and 'id="notice"' in page.text

    lifted = client.post(f"{url}/actions", data={"csrf_token": csrf_of(page.text), "action": "unsuspend",
                                                 "reason": "已整改"}, headers=HTML, follow_redirects=False)
    assert lifted.status_code == 303
    assert client.get(f"/api/v1/organizations/{org_id}").json()["suspended"] is False
