"""Journeys through the credential pages in Chromium: forgot password by SMS; "my account was stolen"
→ frozen → unfreeze with code and recovery key → log in; change password and a new recovery key."""

from __future__ import annotations

import re

import httpx
import pytest

from credentials_testing import NEW_PASSWORD
from passport_testing import STRONG_PASSWORD, outbox_messages, register_account

pytestmark = pytest.mark.browser
RECOVERY_KEY = re.compile(r"[A-Z2-9]{5}(?:-[A-Z2-9]{5}){4}")


def wait_for_code(rt, page, phone: str, purpose: str, after: int) -> str:
    """The code of ``purpose`` sent after ``after`` outbox lines (the page sends it in the background)."""
    for _ in range(50):
        fresh = [m for m in outbox_messages(rt)[after:] if m["to"] == "+86" + phone and m["purpose"] == purpose]
        if fresh:
            return fresh[-1]["code"]
        page.wait_for_timeout(100)
    raise AssertionError(f"no {purpose} code reached the outbox")


def outbox_size(rt) -> int:
    return len(outbox_messages(rt))


def registered(live_server: str, rt) -> dict:
    with httpx.Client(base_url=live_server) as http:
        return register_account(http, rt, nickname="旅程用户")


def log_in(page, live_server: str, phone: str, password: str) -> None:
    page.goto(f"{live_server}/login")
    page.fill("#form-password input[name=login]", phone)
    page.fill("#form-password input[name=password]", password)
    page.click("#form-password #submit")


def test_forgot_password_by_sms_then_log_in(page, live_server, rt):
    done = registered(live_server, rt)
    phone = done["phone"]
    rt.clock.advance(seconds=61)  # one code a minute per number: the registration code was the last

    page.goto(f"{live_server}/forgot-password")
    # The tabs switch without a reload.
    page.click("#tab-key")
    assert page.is_visible("#key-recovery-key") and not page.is_visible("#sms-code")
    page.click("#tab-sms")
    page.fill("#sms-phone", phone)
    sent_before = outbox_size(rt)
    page.click("#send-code")
    page.wait_for_selector("#sms-code-status.field-ok")
    assert page.is_disabled("#send-code")  # counting down to the next send
    page.fill("#sms-code", wait_for_code(rt, page, phone, "reset_password", sent_before))
    page.fill("#sms-new-password", NEW_PASSWORD)
    page.fill("#sms-new-password-again", NEW_PASSWORD)
    page.click("#submit-sms")
    assert page.inner_text("#outcome") == "密码已重置"

    page.click("#continue")
    page.wait_for_url(re.compile(r".*/login$"))
    log_in(page, live_server, phone, STRONG_PASSWORD)
    assert page.inner_text("#form-password .alert-error") == "账号或密码错误。"
    log_in(page, live_server, phone, NEW_PASSWORD)
    page.wait_for_url(re.compile(r".*/account$"))
    assert page.inner_text("#account-nickname") == "旅程用户"


def test_stolen_account_freeze_unfreeze_and_log_in(page, live_server, rt):
    done = registered(live_server, rt)
    phone = done["phone"]
    log_in(page, live_server, phone, STRONG_PASSWORD)
    page.wait_for_url(re.compile(r".*/account$"))

    rt.clock.advance(seconds=61)
    page.goto(f"{live_server}/account-stolen")
    page.fill("#phone", phone)
    sent_before = outbox_size(rt)
    page.click("#send-code")
    page.fill("#code", wait_for_code(rt, page, phone, "freeze", sent_before))
    page.click("#submit")
    assert page.inner_text("#outcome") == "账号已冻结"
    assert page.locator("#logout").count() == 0  # this browser's session ended with the others

    log_in(page, live_server, phone, STRONG_PASSWORD)
    assert page.inner_text("#form-password .alert-error") == "该账号已冻结，请使用手机号和恢复密钥解冻。"

    page.goto(f"{live_server}/account-stolen")
    page.click("#unfreeze-link")
    page.wait_for_url(re.compile(r".*/unfreeze$"))
    rt.clock.advance(seconds=61)
    page.fill("#phone", phone)
    sent_before = outbox_size(rt)
    page.click("#send-code")
    page.fill("#code", wait_for_code(rt, page, phone, "unfreeze", sent_before))
    page.fill("#recovery_key", done["recovery_key"])
    page.fill("#new_password", NEW_PASSWORD)
    page.click("#submit")
    assert page.inner_text("#outcome") == "账号已解冻"

    page.click("#continue")
    log_in(page, live_server, phone, NEW_PASSWORD)
    page.wait_for_url(re.compile(r".*/account$"))
    assert page.inner_text("#account-nickname") == "旅程用户"


def test_change_password_and_make_a_new_recovery_key(page, live_server, rt):
    done = registered(live_server, rt)
    phone = done["phone"]
    log_in(page, live_server, phone, STRONG_PASSWORD)
    page.wait_for_url(re.compile(r".*/account$"))

    page.goto(f"{live_server}/account/password")
    page.fill("#current_password", STRONG_PASSWORD)
    page.fill("#new_password", "short")  # the rules tick off as one types; the failing one is named
    assert "rule-bad" in page.get_attribute("#new_password-rules [data-rule=length]", "class")
    page.fill("#new_password", NEW_PASSWORD)
    assert "rule-ok" in page.get_attribute("#new_password-rules [data-rule=length]", "class")
    page.fill("#new_password-again", NEW_PASSWORD + "x")  # a typo in the second field: not sent
    page.click("#submit")
    assert "/account/password" in page.url and "done" not in page.url
    page.fill("#new_password-again", NEW_PASSWORD)
    page.click("#new_password ~ .password-toggle")  # show it: now a text field
    assert page.get_attribute("#new_password", "type") == "text"
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/account/password\?done=1$"))
    assert "密码已修改" in page.inner_text(".alert-ok")

    page.goto(f"{live_server}/account/recovery-key")
    page.fill("#password", NEW_PASSWORD)
    page.click("#submit")
    key = page.inner_text("#recovery-key")
    assert RECOVERY_KEY.fullmatch(key) and key != done["recovery_key"]
    page.click("#continue")
    page.wait_for_url(re.compile(r".*/account$"))

    with httpx.Client(base_url=live_server) as http:
        old = http.post("/api/v1/password-resets", json={"phone": phone, "recovery_key": done["recovery_key"],
                                                         "new_password": "Xq4!second-Osprey"})
        assert old.status_code == 400
        assert http.post("/api/v1/sessions", json={"login": phone, "password": NEW_PASSWORD}).status_code == 201
