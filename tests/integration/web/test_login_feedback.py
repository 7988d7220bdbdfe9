"""Login pages that say what to do next (issue 20, points 5, 6, 7, 17, 21) without telling anyone
whether an account exists: the hint after repeated failures from this browser, the code tab's
field error, human-readable waits, ``next`` kept on this site, signed-in users sent on."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from passport.accounts import service as accounts
from passport.web import html
from passport_testing import STRONG_PASSWORD, csrf, last_code, new_phone, register_account


def login_post(client, **data):
    client.get("/login")
    return client.post("/login", data={"csrf_token": csrf(client)} | data, follow_redirects=False)


def hint_shown(answer) -> bool:
    return 'id="login-hint"' in answer.text


def test_repeated_failures_from_this_browser_suggest_sms_or_reset_the_same_for_unknown_numbers(app, client, rt):
    person = register_account(client, rt)
    client.cookies.clear()
    unknown = TestClient(app)
    answers = {"known": [], "unknown": []}
    for _ in range(3):
        answers["known"].append(login_post(client, method="password", login=person["phone"], password="wrong-1A!x"))
        answers["unknown"].append(login_post(unknown, method="password", login=new_phone(), password="wrong-1A!x"))
    for kind, tries in answers.items():
        assert [a.status_code for a in tries] == [401, 401, 401], kind
        assert [hint_shown(a) for a in tries] == [False, False, True], kind  # from the third try on
        assert 'href="/login?method=sms"' in tries[-1].text and 'href="/forgot-password"' in tries[-1].text
    # Nothing in the answer tells the two apart: same alert, same hint.
    alert = re.compile(r'<div class="alert alert-error" role="alert">(.*?)</div>', re.S)
    assert alert.search(answers["known"][-1].text).group(1) == alert.search(answers["unknown"][-1].text).group(1)
    # A fresh browser (another attacker's) starts from zero: the hint follows the browser, not the account.
    assert not hint_shown(login_post(TestClient(app), method="password", login=person["phone"], password="x1!Aaaaa"))
    # Success forgets the count.
    done = login_post(client, method="password", login=person["phone"], password=STRONG_PASSWORD)
    assert done.status_code == 303
    assert any(h.startswith("passport_login_tries=") and "Max-Age=0" in h
               for h in done.headers.get_list("set-cookie"))


def test_forged_tries_cookie_is_ignored(client):
    client.cookies.set("passport_login_tries", "99999999999")
    assert not hint_shown(client.get("/login"))
    client.cookies.set("passport_login_tries", "<script>")
    assert client.get("/login").status_code == 200


def test_wrong_sms_code_is_said_at_the_code_field_the_same_for_any_number(client, rt):
    person = register_account(client, rt)
    client.cookies.clear()
    texts = []
    for phone in (person["phone"], new_phone()):
        answer = login_post(client, method="sms", phone=phone, code="000000")
        assert answer.status_code == 401
        field = re.search(r'<p id="sms-code-status" class="field-status field-error"[^>]*>(.*?)</p>', answer.text, re.S)
        assert field and "验证码错误或已过期" in field.group(1)
        assert 'role="alert">账号或密码错误' not in answer.text  # not the password tab's message on top
        texts.append(field.group(1))
    assert texts[0] == texts[1]


def test_code_limits_read_in_minutes_with_the_rule(client, rt):
    phone = new_phone()
    client.get("/login?method=sms")
    for _ in range(rt.settings.code_per_hour):
        assert client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"}).status_code == 202
        rt.clock.offset += type(rt.clock.offset)(seconds=rt.settings.code_resend_seconds + 1)
    refused = client.post("/send-code", data={"csrf_token": csrf(client), "phone": phone, "purpose": "register"})
    assert refused.status_code == 429
    text = re.sub(r"\s+", " ", refused.text)
    assert re.search(r"请 \d+ 分钟后再试（每小时最多 5 条）。", text), text[:2000]
    assert not re.search(r"\d{3,} 秒", text)
    api = client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"})
    assert api.status_code == 429 and api.json()["limit"] == {"count": 5, "per": "hour"}


@pytest.mark.parametrize(("seconds", "zh"), [(45, "45 秒"), (89, "89 秒"), (90, "2 分钟"), (3204, "54 分钟"),
                                              (7200, "2 小时"), (86000, "24 小时")])
def test_durations_read_as_people_say_them(seconds, zh):
    class Request:  # what duration() reads: the language
        cookies, headers = {}, {}
        query_params = {"lang": "zh-CN"}
    assert html.duration(Request(), seconds) == zh


def test_next_is_followed_on_this_site_only(client, rt):
    person = register_account(client, rt)
    client.cookies.clear()
    asked = client.get("/account/email", follow_redirects=False)
    assert asked.status_code == 303 and asked.headers["location"] == "/login?next=%2Faccount%2Femail"
    page = client.get(asked.headers["location"])
    assert '<input type="hidden" name="next" value="/account/email">' in page.text
    done = login_post(client, method="password", login=person["phone"], password=STRONG_PASSWORD,
                      next="/account/email")
    assert done.status_code == 303 and done.headers["location"] == "/account/email"
    # Signed in: /login and /register send the browser on instead of showing the forms.
    assert client.get("/login", follow_redirects=False).headers["location"] == "/account"
    assert client.get("/login?next=/messages", follow_redirects=False).headers["location"] == "/messages"
    assert client.get("/register", follow_redirects=False).headers["location"] == "/account"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "http:/evil.example", "/login?next=//evil.example"])
def test_next_never_leaves_the_site(client, rt, target):
    person = register_account(client, rt)
    client.cookies.clear()
    page = client.get("/login", params={"next": target})
    assert 'name="next"' not in page.text  # not carried into the form (the language links keep the query, encoded)
    done = login_post(client, method="password", login=person["phone"], password=STRONG_PASSWORD, next=target)
    assert done.status_code == 303 and done.headers["location"] == "/account"


def test_frozen_account_login_links_to_unfreeze(client, rt):
    person = register_account(client, rt)
    with rt.db.write() as db:
        assert accounts.set_status(db, person["account"]["id"], "frozen", expected="active", now=rt.clock.now())
    client.cookies.clear()
    answer = login_post(client, method="password", login=person["phone"], password=STRONG_PASSWORD)
    assert 'id="login-unfreeze"' in answer.text and 'href="/unfreeze"' in answer.text


def test_sms_tab_says_unregistered_numbers_get_no_code(client):
    page = client.get("/login?method=sms").text
    assert "未注册的手机号收不到登录验证码" in page and 'href="/register"' in page


def test_wrong_code_hint_does_not_depend_on_a_code_having_been_sent(client, rt):
    phone = new_phone()
    client.get("/login?method=sms")
    client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "login"})
    with pytest.raises(AssertionError):
        last_code(rt, phone, "login")  # an unregistered number gets no code at all
    assert login_post(client, method="sms", phone=phone, code="123456").status_code == 401


def test_suspended_user_with_a_session_is_told_why_at_the_login_page(app, client, rt):
    from passport.sessions import service as sessions

    person = register_account(client, rt)
    browser = TestClient(app)
    browser.cookies.set("passport_session", person["session"]["token"])
    assert browser.get("/account").status_code == 200
    with rt.db.write() as db:
        assert accounts.set_status(db, person["account"]["id"], "suspended", expected="active", now=rt.clock.now(),
                                   reason="发布违规广告", until=rt.clock.now().replace(year=2099))
    sessions.forget_sessions(rt, account_id=person["account"]["id"])
    dropped = browser.get("/account", follow_redirects=False)
    assert dropped.status_code == 303 and dropped.headers["location"] == "/login?ended=1"
    told = browser.get("/login?ended=1")
    assert "账号已被暂停" in told.text or "暂停" in told.text
    assert "发布违规广告" in told.text and "2099" in told.text
    assert any(h.startswith("passport_session=") and "Max-Age=0" in h for h in told.headers.get_list("set-cookie"))
    # Anyone else (no such session, or a forged ?ended=1) is told nothing.
    assert "发布违规广告" not in TestClient(app).get("/login?ended=1").text


def test_chinese_notices_lose_doubled_stops_and_stray_spaces():
    from passport.notify.outbox import tidy_chinese

    assert tidy_chinese("原因：发布违规广告。。截止 2099-01-01。") == "原因：发布违规广告。截止 2099-01-01。"
    assert tidy_chinese("已发布新版本， 也可以继续使用。 原因：无") == "已发布新版本，也可以继续使用。原因：无"
    assert tidy_chinese("详见 http://example.cn/a.b") == "详见 http://example.cn/a.b"  # URLs and numbers untouched
