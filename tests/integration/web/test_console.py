"""The admin console as an application (issue 20): its own layout, names instead of ids, a dashboard
of what waits and what is overdue, queue tabs with counts, no default role; the shared footer."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from passport.reviews.models import Review
from passport_testing import bearer, make_staff, register_account


def staff_browser(app, staff: dict) -> TestClient:
    browser = TestClient(app)
    browser.cookies.set("passport_admin", staff["token"])
    return browser


def held_nickname(client, rt) -> dict:
    """An account whose new nickname waits in the profile queue."""
    person = register_account(client, rt, nickname="小林")
    held = client.patch("/api/v1/me", json={"nickname": "中國象棋小林"}, headers=bearer(person["session"]["token"]))
    assert held.status_code == 202, held.text
    return person


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_staff_pages_have_their_own_layout_and_only_their_roles_links(app, rt):
    page = staff_browser(app, make_staff(rt, "auditor", login="auditor-layout")).get("/admin/audit")
    assert page.status_code == 200
    assert 'class="layout-admin"' in page.text and 'id="admin-nav"' in page.text
    assert 'class="topbar"' not in page.text  # not the user header: no user login link, no user banners
    assert 'href="/login"' not in page.text and "announcement-banner" not in page.text
    assert "auditor-layout" in page.text and "审计员" in page.text  # who is signed in, and the role
    nav = page.text.split('id="admin-nav"')[1].split("</nav>")[0]
    assert 'href="/admin/audit" aria-current="page"' in nav
    assert 'href="/admin/reviews"' not in nav and 'href="/admin/staff"' not in nav


def test_dashboard_says_what_waits_and_what_is_overdue(app, client, rt):
    held_nickname(client, rt)
    reviewer = staff_browser(app, make_staff(rt, "reviewer"))
    page = reviewer.get("/admin").text
    waiting = int(re.search(r'id="count-reviews-profile">(\d+)<', page).group(1))
    assert waiting >= 1 and 'id="overdue-profile"' not in page
    with rt.db.write() as db:  # the oldest item has waited three days
        oldest = db.scalars(select(Review.id).where(Review.queue == "profile", Review.status == "pending")
                            .order_by(Review.created_at)).first()
        db.execute(update(Review).where(Review.id == oldest).values(created_at=rt.clock.now() - timedelta(days=3)))
    page = reviewer.get("/admin").text
    assert re.search(r'id="overdue-profile">\d+ 项已超时<', page)
    assert 'href="/admin/reviews?queue=profile"' in page


def test_review_tabs_count_and_open_where_work_waits(app, client, rt):
    held_nickname(client, rt)
    with rt.db.read() as db:
        pending = {q: db.scalar(select(Review.id).where(Review.queue == q, Review.status == "pending").limit(1))
                   for q in ("organization", "real_name")}
    page = staff_browser(app, make_staff(rt, "reviewer")).get("/admin/reviews").text
    counts = dict(re.findall(r'id="queue-count-(\w+)">(\d+)<', page))
    assert set(counts) == {"organization", "real_name", "profile"} and int(counts["profile"]) >= 1
    opened = re.search(r'id="queue-(\w+)" href="[^"]+" aria-current="page"', page).group(1)
    first_waiting = next(q for q in ("organization", "real_name", "profile") if int(counts[q]))
    assert opened == first_waiting
    if not any(pending.values()):
        assert opened == "profile" and "中國象棋小林" in page


def test_audit_log_names_staff_and_accounts_and_translates_events(app, client, rt):
    person = register_account(client, rt, nickname="林小明")
    auditor = make_staff(rt, "auditor", login="auditor-names")
    browser = staff_browser(app, auditor)
    browser.get("/admin/audit")  # records audit.searched by this auditor
    page = browser.get("/admin/audit").text
    rows = page.split('id="audit-results"')[1]
    assert "auditor-names" in rows and "查询审计日志" in rows  # staff by login, the event by name
    account_id = person["account"]["id"]
    own = browser.get(f"/admin/audit?subject={account_id}").text.split('id="audit-results"')[1]
    assert "创建账号" in own and "account.registered" in own  # the name, the key beside it
    assert "林**" in own and "林小明" not in own  # the nickname masked
    assert f">{account_id}<" not in own  # the id is a filter link's title, not the cell's text
    assert f'title="{account_id}"' in own


def test_new_staff_has_no_default_role(app, rt):
    browser = staff_browser(app, make_staff(rt, "superadmin"))
    page = browser.get("/admin/staff").text
    select_html = page.split('id="new-staff-role"')[1].split("</select>")[0]
    assert re.search(r'<option value="" selected disabled>', select_html)
    assert 'value="superadmin" selected' not in select_html
    refused = browser.post("/admin/staff", data={"csrf_token": csrf_of(page), "login": "no-role-staff", "role": ""})
    assert refused.status_code == 422 and "no-role-staff" in refused.text and "/admin/enrol/" not in refused.text


def test_account_search_without_a_filter_names_the_fields_the_page_has(app, rt):
    browser = staff_browser(app, make_staff(rt, "reviewer"))
    page = browser.get("/admin/accounts").text
    answer = browser.post("/admin/accounts", data={"csrf_token": csrf_of(page), "phone": "", "status": ""})
    assert answer.status_code == 422
    assert "请输入手机号或选择账号状态" in answer.text and "身份证" not in answer.text


def test_footer_shows_operator_icp_and_customer_service(client, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "icp_number", "京ICP备12345678号-1")
    monkeypatch.setattr(rt.settings, "customer_service_phone", "400-800-1234")
    monkeypatch.setattr(rt.settings, "customer_service_email", "help@example.cn")
    page = client.get("/login").text
    footer = page.split('<footer class="footer">')[1]
    assert "京ICP备12345678号-1" in footer and 'href="tel:4008001234"' in footer
    assert 'href="mailto:help@example.cn"' in footer and "奥集能" in footer
    assert "operator-language-note" not in footer
    english = client.get("/login?lang=en").text.split('<footer class="footer">')[1]
    assert "published in Chinese" in english


def test_disabling_staff_answers_with_a_redirect_and_says_it_once(app, rt):
    boss = staff_browser(app, make_staff(rt, "superadmin"))
    victim = make_staff(rt, "operator")
    page = boss.get("/admin/staff").text
    assert f'action="/admin/staff/{victim["id"]}/disable" data-confirm=' in page  # confirmed in a dialog
    done = boss.post(f"/admin/staff/{victim['id']}/disable", data={"csrf_token": csrf_of(page)},
                     follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/admin/staff?done=disabled"
    shown = boss.get(done.headers["location"]).text
    assert shown.count("该员工已停用，其登录会话已全部结束。") == 1
    assert staff_browser(app, victim).get("/admin", follow_redirects=False).status_code == 303


def test_account_centre_has_a_navigation_and_the_marketing_box_its_own_label(app, client, rt):
    person = register_account(client, rt, nickname="小周")
    browser = TestClient(app)
    browser.cookies.set("passport_session", person["session"]["token"])
    page = browser.get("/account/notifications").text
    nav = page.split('class="account-nav"')[1].split("</nav>")[0]
    hrefs = re.findall(r'href="([^"]+)"', nav)
    assert hrefs == ["/account", "/account#security", "/account/real-name", "/account/notifications",
                     "/account/consents", "/account/apps", "/account/cancellation"]
    assert 'href="/account/notifications" aria-current="page"' in nav
    assert "已授权的应用" in nav and "隐私与数据" in nav
    # the checkbox and its text side by side: a label of its own, not a label wrapping the box
    assert re.search(r'<input id="marketing" type="checkbox" name="marketing"[^>]*>\s*<label for="marketing">', page)
    assert page.count('class="back-link account-back"') == 1 and "返回我的账号" not in page


def test_organisation_form_is_disabled_with_the_reason_for_an_unverified_user(app, client, rt):
    person = register_account(client, rt)
    browser = TestClient(app)
    browser.cookies.set("passport_session", person["session"]["token"])
    page = browser.get("/organizations/new").text
    assert re.search(r'<fieldset class="plain-fieldset" id="org-fields" disabled>', page)
    assert 'id="org-needs-real-name"' in page and 'href="/account/real-name"' in page
    # Posted anyway (a stale page): refused, and said once, not twice.
    refused = browser.post("/organizations/new", data={"csrf_token": csrf_of(page), "name": "某某科技有限公司"},
                           files={"license": ("l.png", b"\x89PNG\r\n\x1a\n", "image/png")})
    assert refused.status_code == 403
    assert refused.text.count("请先完成个人实名认证，再申请组织账号。") == 1
    assert "申请组织账号前，请先完成个人实名认证。" not in refused.text  # the refusal is not said a second time


def test_english_pages_say_the_operators_texts_are_in_chinese(client):
    english = client.get("/agreements/user-agreement?lang=en").text
    assert "publishes this text in Chinese only" in english and '<div class="prose" lang="zh-CN">' in english
    assert "publishes this text in Chinese only" not in client.get("/agreements/user-agreement?lang=zh-CN").text
