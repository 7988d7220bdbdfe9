"""The enforcement journey in a browser: a reviewer enrols from the one-time link (password + TOTP),
logs in with password and TOTP, finds a user by phone, suspends them with a reason; the user then
sees that reason when they try to log in."""

from __future__ import annotations

import re

import httpx
import pyotp
import pytest

from passport.admin import service as admin
from passport.audit.service import Origin
from passport_testing import STRONG_PASSWORD, register_account

pytestmark = pytest.mark.browser


def test_reviewer_suspends_a_user_who_then_sees_the_reason(page, live_server, rt):
    with httpx.Client(base_url=live_server) as http:
        user = register_account(http, rt, nickname="被处置用户")
    login = f"reviewer-{user['phone'][-6:]}"
    _, enrolment_token = admin.create_staff(rt, Origin(channel="cli"), login=login, role="reviewer")

    # Enrolment: the key shown under the QR code feeds the authenticator (pyotp here).
    page.goto(f"{live_server}/admin/enrol/{enrolment_token}")
    secret = page.inner_text("#admin-totp-secret").replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.fill("#form-admin-enrol input[name=password]", STRONG_PASSWORD)
    page.fill("#form-admin-enrol input[name=totp]", totp.at(rt.clock.now()))
    page.click("#form-admin-enrol #submit")
    page.wait_for_selector("#form-admin-login")
    rt.clock.advance(seconds=30)  # the enrolment code's step is spent: log in with the next one
    staff = {"login": login, "password": STRONG_PASSWORD}

    page.goto(f"{live_server}/admin/accounts")
    page.wait_for_url(re.compile(r".*/admin/login.*"))
    page.fill("#form-admin-login input[name=login]", staff["login"])
    page.fill("#form-admin-login input[name=password]", staff["password"])
    page.fill("#form-admin-login input[name=totp]", totp.at(rt.clock.now()))
    page.click("#form-admin-login #submit")
    page.wait_for_url(re.compile(r".*/admin/accounts$"))

    page.fill("input[name=phone]", user["phone"])
    page.click("#search")
    page.wait_for_selector("#account-results")
    masked = f"{user['phone'][:3]}****{user['phone'][-4:]}"
    assert masked in page.inner_text("#account-results")
    page.click(f"#account-results a[href='/admin/accounts/{user['account']['id']}']")
    page.wait_for_url(re.compile(r".*/admin/accounts/[0-9a-f]+$"))

    page.select_option("select[name=action]", "suspend")
    page.fill("input[name=until]", "2099-01-01T08:00")
    assert not page.is_visible("textarea[name=reason]")  # asked for in the confirmation dialog
    page.click("#act")
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for()
    assert "确定对该账号执行此处置" in dialog.inner_text() and "暂停" in dialog.inner_text()
    page.click("#confirm-dialog-ok")  # no reason yet: the dialog stays open
    assert dialog.is_visible()
    page.click("#confirm-dialog-cancel")  # cancelled: nothing happened
    assert not dialog.is_visible() and "/admin/accounts/" in page.url and "done" not in page.url
    page.click("#act")
    page.locator("#confirm-dialog textarea[name=reason]").fill("发布违规广告")
    page.click("#confirm-dialog-ok")
    page.wait_for_url(re.compile(r".*\?done=1$"))
    assert page.get_attribute("#account-status", "data-status") == "suspended"

    page.context.clear_cookies()
    page.goto(f"{live_server}/login")
    page.fill("#form-password input[name=login]", user["phone"])
    page.fill("#form-password input[name=password]", user["password"])
    page.click("#form-password #submit")
    alert = page.locator("#form-password [role=alert]")
    alert.wait_for()
    assert "发布违规广告" in alert.inner_text() and "2099-01-01 08:00" in alert.inner_text()
