"""Customer service (issue 18, §十四(二)): the configured contact is shown in the footer, on error and
suspension pages, on /support and in notices that say "contact customer service"; complaints and
questions go through the reports queue and the reviewer's reason is the answer."""

from __future__ import annotations

import pytest

from passport.notify.outbox import render
from passport_testing import csrf_of, login, make_staff, register_account
from reports_testing import case_of, claim, decide, inbox

HTML = {"Accept": "text/html"}


@pytest.fixture()
def configured(rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "customer_service_phone", "400-800-8888")
    monkeypatch.setattr(rt.settings, "customer_service_email", "kefu@example.cn")
    monkeypatch.setattr(rt.settings, "customer_service_hours", "工作日 9:00-18:00")
    monkeypatch.setattr(rt.settings, "operator_address", "浙江省杭州市西湖区某路1号")


def test_the_contact_is_shown_where_users_need_it(client, rt, configured):
    home = client.get("/", headers=HTML)
    assert "400-800-8888" in home.text and "kefu@example.cn" in home.text and "data-customer-service" in home.text
    missing = client.get("/no/such/page", headers=HTML)
    assert missing.status_code == 404 and "400-800-8888" in missing.text
    support = client.get("/support", headers=HTML)
    assert 'id="support-contact"' in support.text and "浙江省杭州市西湖区某路1号" in support.text
    # A suspended account's login page carries the contact with the refusal.
    user = register_account(client, rt)
    reviewer = make_staff(rt, "reviewer")
    client.post(f"/api/v1/admin/accounts/{user['account']['id']}/actions", headers=reviewer["headers"],
                json={"action": "suspend", "reason": "调查中"})
    client.cookies.clear()
    page = client.get("/login", headers=HTML)
    refused = client.post("/login", data={"csrf_token": csrf_of(page.text), "method": "password",
                                          "login": user["phone"], "password": user["password"]}, headers=HTML)
    assert refused.status_code == 403 and 'id="login-service"' in refused.text, refused.text[-800:]
    # Notices that say "contact customer service" carry the contact.
    text = render(rt, "cancellation_void", {}, "zh-CN").text
    assert "联系客服（客服电话：400-800-8888" in text
    assert "phone 400-800-8888" in render(rt, "cancellation_void", {}, "en").text


def test_nothing_configured_shows_no_contact(client, rt):
    home = client.get("/", headers=HTML)
    assert "data-customer-service" not in home.text and 'id="footer-support"' in home.text
    assert "（" not in render(rt, "cancellation_void", {}, "zh-CN").text.split("联系客服")[1][:1]


def test_a_complaint_is_answered_through_the_queue(client, rt, reviewers):
    user = register_account(client, rt)
    client.cookies.set("passport_session", user["session"]["token"])
    page = client.get("/support", headers=HTML)
    assert 'id="form-complaint"' in page.text
    sent = client.post("/support", data={"csrf_token": csrf_of(page.text), "category": "question",
                                         "description": "如何修改绑定邮箱？"}, headers=HTML, follow_redirects=False)
    assert sent.status_code == 303
    client.cookies.clear()
    assert 'id="form-complaint"' not in client.get("/support", headers=HTML).text  # signed out: log in first
    first, _ = reviewers
    case = case_of(client, first, user["account"]["id"])
    assert case["subject_type"] == "complaint"
    claim(client, first, case["id"])
    answered = decide(client, first, case["id"], outcome="no_violation", reason="请在账号中心的邮箱页面修改。")
    assert answered.status_code == 200, answered.text
    told = [m for m in inbox(client, user["session"]["token"]) if m["template"] == "complaint_answered"]
    assert told and "请在账号中心的邮箱页面修改。" in told[0]["text"]
    warn = decide(client, first, case["id"], outcome="violation", actions=["warn"], reason="x")
    assert warn.status_code == 422 and warn.json()["code"] == "invalid_action"  # no action on a complaint
    assert login(client, user["phone"]).status_code == 201


def test_the_account_page_links_reports_appeals_and_customer_service(client, rt):
    user = register_account(client, rt)
    client.cookies.set("passport_session", user["session"]["token"])
    page = client.get("/account", headers=HTML).text
    for link in ('id="link-reports" href="/reports"', 'id="link-appeals" href="/appeals"',
                 'id="link-support" href="/support"'):
        assert link in page
