"""The cancellation, export and phone-number pages as a browser without JavaScript uses them: what
happens is said plainly, the countdown, withdrawal, the download, CSRF and sign-in."""

from __future__ import annotations

import json
import re

import pytest

from passport_testing import csrf, last_code, login_form, new_phone

SIGNED_IN_PAGES = ["/account/cancellation", "/account/export", "/account/phone"]


@pytest.fixture()
def browser(client, member):
    answer = login_form(client, member.phone, member.password)
    assert answer.status_code == 303, answer.text
    yield client
    client.cookies.clear()


@pytest.mark.parametrize("page", SIGNED_IN_PAGES)
def test_pages_need_a_signed_in_browser(client, page):
    answer = client.get(page, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].split("?")[0] == "/login"


def test_the_page_says_what_is_deleted_what_is_kept_and_when(browser):
    page = browser.get("/account/cancellation")
    assert page.status_code == 200
    for section in ("cancel-deleted", "cancel-kept", "cancel-when"):
        assert f'id="{section}"' in page.text
    assert "手机号、邮箱、昵称和简介" in page.text
    assert "保留 365 天" in page.text and "15 天" in page.text
    assert "Content-Security-Policy" in page.headers and "<script>" not in page.text
    english = browser.get("/account/cancellation?lang=en")
    assert "What is kept, and why" in english.text and "kept 365 days" in english.text


def test_request_see_the_countdown_and_withdraw(browser, rt, member):
    sent = browser.post("/account/cancellation/code", data={"csrf_token": csrf(browser)})
    assert sent.status_code == 200 and "验证码已发送" in sent.text
    assert f"{member.phone[:3]}****{member.phone[7:]}" in sent.text
    code = last_code(rt, member.phone, "cancel_account")

    wrong = browser.post("/account/cancellation", data={"csrf_token": csrf(browser), "code": code,
                                                        "password": "Wrong!password-7x"})
    assert wrong.status_code == 400 and 'id="password-error"' in wrong.text
    assert member.me().json()["status"] == "active"

    done = browser.post("/account/cancellation", data={"csrf_token": csrf(browser), "code": code,
                                                       "password": member.password}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account/cancellation"
    page = browser.get("/account/cancellation")
    assert re.search(r'id="countdown">\s*<time datetime="[^"]+Z">剩余 14 天 23 小时 5\d 分钟</time>', page.text)
    assert 'id="form-withdraw"' in page.text and 'id="form-cancel"' not in page.text
    assert 'id="cancellation-withdraw-link"' in browser.get("/account").text

    withdrawn = browser.post("/account/cancellation/withdraw", data={"csrf_token": csrf(browser)},
                             follow_redirects=False)
    assert withdrawn.status_code == 303
    after = browser.get(withdrawn.headers["location"])
    assert 'id="cancel-notice"' in after.text and 'id="form-cancel"' in after.text
    assert member.me().json()["status"] == "active"


def test_forms_without_the_csrf_token_change_nothing(browser, member):
    for path in ("/account/cancellation", "/account/cancellation/withdraw", "/account/export", "/account/phone"):
        answer = browser.post(path, data={"code": "123456", "password": member.password})
        assert answer.status_code == 403, path
    assert member.me().json()["status"] == "active"


def test_download_my_data_from_the_account_pages(browser, rt, member):
    assert 'href="/account/export"' in browser.get("/account").text
    assert browser.post("/account/export/code", data={"csrf_token": csrf(browser)}).status_code == 200
    code = last_code(rt, member.phone, "export")
    wrong = browser.post("/account/export", data={"csrf_token": csrf(browser), "code": "000000"})
    assert wrong.status_code == 400 and "验证码错误或已过期" in wrong.text
    download = browser.post("/account/export", data={"csrf_token": csrf(browser), "code": code})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/json")
    assert "attachment" in download.headers["content-disposition"]
    assert json.loads(download.text)["phone"] == "+86" + member.phone


def test_change_the_mobile_number_on_its_page(browser, rt, member):
    fresh = new_phone()
    sent = browser.post("/send-code", data={"csrf_token": csrf(browser), "phone": fresh, "purpose": "change_phone"})
    assert sent.status_code == 200 and f'value="{fresh}"' in sent.text and 'id="form-phone"' in sent.text
    code = last_code(rt, fresh, "change_phone")
    without_old = browser.post("/account/phone", data={"csrf_token": csrf(browser), "phone": fresh, "code": code,
                                                       "password": member.password})
    assert without_old.status_code == 400
    assert 'id="old-code-status" class="field-status field-error"' in without_old.text
    assert "请输入发送到当前手机号的验证码" in without_old.text
    old_sent = browser.post("/account/phone/old-code", data={"csrf_token": csrf(browser), "phone": fresh})
    assert old_sent.status_code == 200 and f'value="{fresh}"' in old_sent.text
    changed = browser.post("/account/phone", data={"csrf_token": csrf(browser), "phone": fresh,
                                                   "code": code, "old_code": last_code(rt, member.phone,
                                                                                       "change_phone_old"),
                                                   "password": member.password}, follow_redirects=False)
    assert changed.status_code == 303
    page = browser.get(changed.headers["location"])  # still signed in, with the rotated session
    assert 'id="phone-notice"' in page.text and f"{fresh[:3]}****{fresh[7:]}" in page.text
    assert member.me().status_code == 401  # the member's other (API) session ended
