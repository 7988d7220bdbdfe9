"""Admin console pages: account search, detail, reveal, actions; the review queue page."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from passport.audit.models import AuditEvent
from passport.clock import CHINA_TIME, rfc3339
from passport_testing import STRONG_PASSWORD, csrf, login_form, make_staff, register_account

HTML = {"Accept": "text/html"}


def sign_in(client, staff) -> None:
    client.cookies.set("passport_admin", staff["token"])


def test_pages_send_strangers_to_the_admin_login(client, rt):
    for path in ("/admin/accounts", "/admin/accounts/x", "/admin/reviews"):
        answer = client.get(path, headers=HTML, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login")


def test_a_role_without_the_permission_gets_403(client, rt):
    sign_in(client, make_staff(rt, "auditor"))
    assert client.get("/admin/accounts", headers=HTML).status_code == 403


def test_search_shows_masked_results(client, rt):
    user = register_account(client, rt)
    client.cookies.clear()
    sign_in(client, make_staff(rt, "reviewer"))
    client.get("/admin/accounts", headers=HTML)
    page = client.post("/admin/accounts", data={"csrf_token": csrf(client), "phone": user["phone"]}, headers=HTML)
    assert page.status_code == 200
    table = page.text[page.text.index('id="account-results"'):]
    assert f"{user['phone'][:3]}****{user['phone'][-4:]}" in table
    assert user["phone"] not in table  # the search box keeps what the reviewer typed; the results stay masked
    assert f'/admin/accounts/{user["account"]["id"]}' in page.text
    assert 'id="search"' in page.text
    bad = client.post("/admin/accounts", data={"csrf_token": csrf(client), "phone": "12"}, headers=HTML)
    assert bad.status_code == 422 and 'class="field-error"' in bad.text


def test_suspend_from_the_detail_page_then_the_user_sees_the_reason(client, rt):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    client.cookies.clear()
    sign_in(client, make_staff(rt, "reviewer"))
    detail = client.get(f"/admin/accounts/{account_id}", headers=HTML)
    assert detail.status_code == 200
    for marker in ('name="action"', 'name="reason"', 'name="until"', 'id="act"'):
        assert marker in detail.text
    end = (rt.clock.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    until = end.astimezone(CHINA_TIME).strftime("%Y-%m-%dT%H:%M")  # what a datetime-local input sends
    missing = client.post(f"/admin/accounts/{account_id}/actions", headers=HTML,
                          data={"csrf_token": csrf(client), "action": "suspend", "reason": "", "until": until})
    assert missing.status_code == 422
    expired = client.post(f"/admin/accounts/{account_id}/actions", headers=HTML,
                          data={"csrf_token": "forged", "action": "suspend", "reason": "刷单", "until": until})
    assert expired.status_code == 403
    done = client.post(f"/admin/accounts/{account_id}/actions", headers=HTML, follow_redirects=False,
                       data={"csrf_token": csrf(client), "action": "suspend", "reason": "刷单", "until": until})
    assert done.status_code == 303, done.text
    shown = client.get(done.headers["location"], headers=HTML)
    assert 'data-status="suspended"' in shown.text and "刷单" in shown.text
    refused = client.post("/api/v1/sessions", json={"login": user["phone"], "password": STRONG_PASSWORD})
    assert refused.status_code == 403 and refused.json()["reason"] == "刷单"
    assert refused.json()["until"] == rfc3339(end)
    client.cookies.clear()
    login_page = login_form(client, user["phone"], STRONG_PASSWORD, follow_redirects=True, **HTML)
    assert login_page.status_code == 403
    assert "原因：刷单" in login_page.text and until.replace("T", " ") in login_page.text


def test_reveal_form_needs_a_reason(client, rt):
    user = register_account(client, rt)
    account_id = user["account"]["id"]
    client.cookies.clear()
    staff = make_staff(rt, "reviewer")
    sign_in(client, staff)
    client.get(f"/admin/accounts/{account_id}", headers=HTML)
    refused = client.post(f"/admin/accounts/{account_id}/reveal", headers=HTML,
                          data={"csrf_token": csrf(client), "field": "phone", "reveal_reason": ""})
    assert refused.status_code == 422 and user["phone"] not in refused.text
    shown = client.post(f"/admin/accounts/{account_id}/reveal", headers=HTML,
                        data={"csrf_token": csrf(client), "field": "phone", "reveal_reason": "用户来电核实"})
    assert shown.status_code == 200 and "+86" + user["phone"] in shown.text
    with rt.db.read() as db:
        [details] = db.scalars(select(AuditEvent.details).where(AuditEvent.action == "account.revealed",
                                                                AuditEvent.subject_id == account_id)).all()
    assert json.loads(details)["channel"] == "web" and user["phone"] not in details


def test_reviews_page_lists_the_queue(client, rt):
    from passport.reviews import service as reviews

    with rt.db.write() as db:
        review_id = reviews.enqueue(db, "profile", "account", "acc-page", {}, rt.clock.now())
    sign_in(client, make_staff(rt, "reviewer"))
    page = client.get("/admin/reviews", params={"queue": "profile"}, headers=HTML)
    assert page.status_code == 200 and review_id in page.text
