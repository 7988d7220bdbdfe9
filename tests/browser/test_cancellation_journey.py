"""Cancellation in Chromium: from the account page to the cancellation page, read what happens, send the
code, confirm with the password, see the countdown; log in again during the cooling-off, follow the
offer to withdraw, withdraw. Then download my data."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from passport_testing import STRONG_PASSWORD, outbox_messages, register_account

pytestmark = pytest.mark.browser


def code_for(rt, page, phone: str, purpose: str) -> str:
    for _ in range(50):
        sent = [m for m in outbox_messages(rt) if m["to"] == "+86" + phone and m["purpose"] == purpose]
        if sent:
            return sent[-1]["code"]
        page.wait_for_timeout(100)
    raise AssertionError(f"no {purpose} code reached the outbox")


def log_in(page, live_server: str, phone: str) -> None:
    page.goto(f"{live_server}/login")
    page.fill("#form-password input[name=login]", phone)
    page.fill("#form-password input[name=password]", STRONG_PASSWORD)
    page.click("#form-password #submit")
    page.wait_for_url(re.compile(r".*/account$"))


def test_request_see_the_countdown_log_in_again_and_withdraw(page, live_server, rt):
    with httpx.Client(base_url=live_server) as http:
        phone = register_account(http, rt, nickname="注销旅程")["phone"]
    log_in(page, live_server, phone)

    page.click("#data-links a[href='/account/cancellation']")
    page.wait_for_url(re.compile(r".*/account/cancellation$"))
    assert "您的手机号、邮箱、昵称和简介。" in page.inner_text("#cancel-deleted")
    assert "365 天" in page.inner_text("#cancel-kept")
    assert "15 天" in page.inner_text("#cancel-when")

    rt.clock.advance(seconds=61)  # one code a minute per number: the registration code was the last
    page.click("#send-code")
    page.wait_for_selector("#code-status.field-ok")
    page.fill("#code", code_for(rt, page, phone, "cancel_account"))
    page.fill("#password", STRONG_PASSWORD)
    page.click("#submit")
    page.wait_for_selector("#countdown")
    assert re.fullmatch(r"剩余 1[45] 天 \d+ 小时 \d+ 分钟", page.inner_text("#countdown").strip())
    assert "您的账号将于" in page.inner_text("#cancel-pending")

    # Log out and in again: the account page offers to withdraw.
    page.click(".account-menu summary")
    page.click("#logout")
    page.wait_for_url(re.compile(r".*/login$"))
    log_in(page, live_server, phone)
    assert "您的账号正在注销中" in page.inner_text("#cancellation-pending")
    page.click("#cancellation-withdraw-link")
    page.wait_for_selector("#withdraw")
    page.click("#withdraw")
    page.wait_for_selector("#cancel-notice")
    assert "注销申请已撤销" in page.inner_text("#cancel-notice")
    assert page.is_visible("#form-cancel")

    # Download my data, from the account pages.
    page.goto(f"{live_server}/account")
    page.click("#data-links a[href='/account/export']")
    rt.clock.advance(seconds=61)
    page.click("#send-code")
    page.wait_for_selector("#code-status.field-ok")
    page.fill("#code", code_for(rt, page, phone, "export"))
    with page.expect_download() as download:
        page.click("#submit")
    archive = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert archive["phone"] == "+86" + phone
    assert [r["status"] for r in archive["cancellation"]] == ["withdrawn"]
