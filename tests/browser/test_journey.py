"""A newcomer's journey through the pages: register → log out → password login → SMS login."""

from __future__ import annotations

import re

import pytest

from passport_testing import STRONG_PASSWORD, last_code, new_phone

pytestmark = pytest.mark.browser


def wait_for_code(rt, page, phone: str, purpose: str) -> str:
    for _ in range(50):
        try:
            return last_code(rt, phone, purpose)
        except AssertionError:
            page.wait_for_timeout(100)
    raise AssertionError(f"no {purpose} code reached the outbox")


def test_register_logout_password_login_sms_login(page, live_server, rt):
    phone = new_phone()
    masked = f"{phone[:3]}****{phone[7:]}"

    page.goto(f"{live_server}/register")
    page.fill("input[name=phone]", phone)
    page.click("#send-code")
    code = wait_for_code(rt, page, phone, "register")
    page.fill("input[name=code]", code)
    page.fill("input[name=nickname]", "浏览器用户")
    page.fill("input[name=password]", STRONG_PASSWORD)
    page.fill("#password-again", STRONG_PASSWORD)
    page.check("input[name=accept]")
    page.click("#submit")
    # The recovery key is shown once; then the account page.
    page.wait_for_selector("text=/[A-Z2-9]{5}-[A-Z2-9]{5}-[A-Z2-9]{5}-[A-Z2-9]{5}-[A-Z2-9]{5}/")
    assert page.url.endswith("/register/done")  # its own GET page: a reload shows it, never re-posts
    key = page.inner_text("#recovery-key")
    page.reload()
    assert page.inner_text("#recovery-key") == key
    assert page.is_visible("#download-recovery-key")
    page.click("#continue")
    page.wait_for_url(re.compile(r".*/account$"))
    assert page.inner_text("#account-phone") == masked
    assert page.inner_text("#account-nickname") == "浏览器用户"
    assert phone not in page.content()

    page.click(".account-menu summary")
    page.click("#logout")
    page.wait_for_url(re.compile(r".*/login.*"))
    page.goto(f"{live_server}/account")
    page.wait_for_url(re.compile(r".*/login.*"))

    page.fill("#form-password input[name=login]", phone)
    page.fill("#form-password input[name=password]", STRONG_PASSWORD)
    page.click("#form-password #submit")
    page.wait_for_url(re.compile(r".*/account$"))
    assert page.inner_text("#account-phone") == masked

    page.click(".account-menu summary")
    page.click("#logout")
    page.wait_for_url(re.compile(r".*/login.*"))
    rt.clock.advance(seconds=61)  # one code a minute per number: the registration code was the last
    page.click("#tab-sms")
    page.fill("#form-sms input[name=phone]", phone)
    page.click("#form-sms #send-code")
    code = wait_for_code(rt, page, phone, "login")
    page.fill("#form-sms input[name=code]", code)
    page.click("#form-sms #submit")
    page.wait_for_url(re.compile(r".*/account$"))
    assert page.inner_text("#account-nickname") == "浏览器用户"
