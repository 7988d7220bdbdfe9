"""Two-step verification in a browser: turn TOTP on at /account/totp from the QR page, log out,
log in with the password, pass the code step, land on /account."""

from __future__ import annotations

import re

import httpx
import pyotp
import pytest

from passport_testing import register_account

pytestmark = pytest.mark.browser


def test_enable_totp_then_log_in_with_it(page, live_server, rt):
    with httpx.Client(base_url=live_server) as http:
        done = register_account(http, rt, nickname="双重验证")
    phone = done["phone"]

    page.goto(f"{live_server}/login")
    page.fill("#form-password input[name=login]", phone)
    page.fill("#form-password input[name=password]", done["password"])
    page.click("#form-password #submit")
    page.wait_for_url(re.compile(r".*/account$"))

    page.goto(f"{live_server}/account/totp")
    assert "未开启" in page.inner_text("#totp-status")
    page.click("#enable-totp")
    page.wait_for_selector("#totp-qr")
    # The QR code is an inline SVG image that the page's CSP lets load.
    assert page.eval_on_selector("#totp-qr", "img => img.complete && img.naturalWidth > 0")
    secret = page.inner_text("#totp-secret").replace(" ", "")
    assert len(secret) == 32
    assert phone not in page.content()

    page.fill("#totp-code", pyotp.TOTP(secret).at(rt.clock.now()))
    page.click("#confirm-totp")
    page.wait_for_url(re.compile(r".*/account/totp\?done=enabled$"))
    assert "已开启" in page.inner_text("#totp-status")

    page.click(".account-menu summary")
    page.click("#logout")
    page.wait_for_url(re.compile(r".*/login.*"))
    page.fill("#form-password input[name=login]", phone)
    page.fill("#form-password input[name=password]", done["password"])
    page.click("#form-password #submit")
    page.wait_for_selector("#form-mfa")
    assert page.url.endswith("/login")
    page.goto(f"{live_server}/account")  # not logged in yet: the password alone opened nothing
    page.wait_for_url(re.compile(r".*/login\?next=%2Faccount$"))  # and back there after logging in

    page.fill("#form-password input[name=login]", phone)
    page.fill("#form-password input[name=password]", done["password"])
    page.click("#form-password #submit")
    page.wait_for_selector("#form-mfa")
    rt.clock.advance(seconds=30)  # the code that turned TOTP on used the current step
    page.fill("#form-mfa input[name=totp]", pyotp.TOTP(secret).at(rt.clock.now()))
    page.click("#form-mfa #submit")
    page.wait_for_url(re.compile(r".*/account$"))
    assert page.inner_text("#account-nickname") == "双重验证"
