"""Step-up in a browser: signed in by an SMS code alone, open two-step verification, confirm the
password on "confirm it is you", land back on /account/totp and start the set-up."""

from __future__ import annotations

import re

import httpx
import pytest

from credentials_testing import send_code
from passport_testing import register_account

pytestmark = pytest.mark.browser


def test_confirm_the_password_then_come_back(page, live_server, rt):
    with httpx.Client(base_url=live_server) as http:
        done = register_account(http, rt, nickname="确认身份")
        code = send_code(http, rt, done["phone"], "login")

    page.goto(f"{live_server}/login?method=sms")
    page.fill("#sms-phone", done["phone"])
    page.fill("#sms-code", code)
    page.click("#form-sms #submit")
    page.wait_for_url(re.compile(r".*/account$"))

    page.goto(f"{live_server}/account/totp")
    page.wait_for_url(re.compile(r".*/account/step-up\?next=/account/totp$"))
    page.fill("#step-up-password", "Wrong!password-7x")
    page.click("#form-step-up #submit")
    assert "密码错误" in page.inner_text("#form-step-up")
    page.fill("#step-up-password", done["password"])
    page.click("#form-step-up #submit")
    page.wait_for_url(re.compile(r".*/account/totp$"))
    page.click("#enable-totp")
    page.wait_for_selector("#totp-qr")
