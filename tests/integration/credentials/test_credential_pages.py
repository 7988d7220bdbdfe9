"""The credential pages: forgot password (SMS code, recovery key), "my account was stolen", unfreeze,
change password, new recovery key, freeze — as a browser without JavaScript uses them; CSRF, language,
and the page security baseline."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from credentials_testing import (
    NEW_PASSWORD,
    WRONG_KEY,
    WRONG_PASSWORD,
    account_row,
    assert_password_is,
    assert_password_unchanged,
    login,
    me,
    notices,
)
from passport.credentials import pages as credential_pages
from passport.sessions import service as sessions
from passport_testing import STRONG_PASSWORD, csrf, last_code, login_form, new_phone, register_account

RECOVERY_KEY = re.compile(r"[A-Z2-9]{5}(?:-[A-Z2-9]{5}){4}")
PUBLIC_PAGES = ["/forgot-password", "/forgot-password?method=key", "/account-stolen", "/unfreeze"]
SIGNED_IN_PAGES = ["/account/password", "/account/recovery-key", "/account/freeze"]


def alert_of(html: str) -> str:
    found = re.search(r'<div class="alert alert-error" role="alert">(.*?)</div>', html, re.S)
    return found.group(1).strip() if found else ""


def field_error(html: str, field_id: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', html, re.S)
    return found.group(1).strip() if found else ""


def code_status(html: str, code_id: str) -> str:
    found = re.search(rf'<p id="{code_id}-status" class="[^"]*"[^>]*>(.*?)</p>', html, re.S)
    return found.group(1).strip() if found else ""


def send_code_form(client, rt, page: str, phone: str, purpose: str) -> str:
    """The no-JS "send code" button: POST /send-code, which draws the page again; returns the code."""
    rt.clock.advance(seconds=61)
    client.get(page)
    sent = client.post("/send-code", data={"csrf_token": csrf(client), "phone": phone, "purpose": purpose,
                                           "new_password": NEW_PASSWORD})
    assert sent.status_code == 200, sent.text
    assert "验证码已发送" in sent.text
    assert f'value="{phone}"' in sent.text  # the form keeps the number
    assert NEW_PASSWORD not in sent.text
    return last_code(rt, phone, purpose)


def browser_login(client, phone: str, password: str = STRONG_PASSWORD) -> str:
    answer = login_form(client, phone, password)
    assert answer.status_code == 303, answer.text
    return client.cookies.get("passport_session")


# --- forgot password -------------------------------------------------------------------------------

def test_forgot_password_by_sms_code(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    code = send_code_form(client, rt, "/forgot-password", phone, "reset_password")
    page = client.get("/forgot-password")
    assert re.search(r'<form id="form-sms"[^>]*role="tabpanel"[^>]*aria-labelledby="tab-sms">', page.text)

    answer = client.post("/forgot-password", data={"csrf_token": csrf(client), "method": "sms", "phone": phone,
                                                   "code": code, "new_password": NEW_PASSWORD})

    assert answer.status_code == 200, alert_of(answer.text)
    assert re.search(r'<h1 id="outcome">密码已重置</h1>', answer.text)
    assert 'href="/login"' in answer.text
    assert NEW_PASSWORD not in answer.text
    assert_password_is(client, phone, NEW_PASSWORD, not_=(STRONG_PASSWORD,))
    assert me(client, done["session"]["token"]).status_code == 401
    assert len(notices(rt, phone, "password_reset")) == 1


def test_forgot_password_by_recovery_key(client, rt):
    done = register_account(client, rt)
    client.get("/forgot-password?method=key")
    answer = client.post("/forgot-password", data={
        "csrf_token": csrf(client), "method": "key", "phone": done["phone"],
        "recovery_key": done["recovery_key"].lower(), "new_password": NEW_PASSWORD})
    assert answer.status_code == 200, alert_of(answer.text)
    assert "密码已重置" in answer.text
    assert_password_is(client, done["phone"], NEW_PASSWORD)


def test_forgot_password_mistakes_are_shown_next_to_their_fields(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    code = send_code_form(client, rt, "/forgot-password", phone, "reset_password")
    form = {"csrf_token": csrf(client), "method": "sms", "phone": phone, "code": code}

    weak = client.post("/forgot-password", data=form | {"new_password": "password"})
    assert weak.status_code == 422
    assert field_error(weak.text, "sms-new-password").startswith("密码不符合要求：")
    assert 'value="password"' not in weak.text
    assert f'value="{phone}"' in weak.text

    wrong = client.post("/forgot-password", data=form | {"code": f"{(int(code) + 1) % 10**6:06d}",
                                                         "new_password": NEW_PASSWORD})
    assert wrong.status_code == 400
    assert code_status(wrong.text, "sms-code") == "验证码错误或已过期。"
    assert_password_unchanged(client, phone)

    by_key = client.post("/forgot-password", data={"csrf_token": csrf(client), "method": "key", "phone": phone,
                                                   "recovery_key": WRONG_KEY, "new_password": NEW_PASSWORD})
    assert by_key.status_code == 400
    assert field_error(by_key.text, "key-recovery-key") == "手机号或恢复密钥错误。"
    assert WRONG_KEY not in by_key.text  # the key field is never filled back in
    assert re.search(r'<form id="form-key"[^>]*role="tabpanel"[^>]*aria-labelledby="tab-key">', by_key.text)

    # The weak try and the wrong one left the code usable.
    assert client.post("/forgot-password", data=form | {"new_password": NEW_PASSWORD}).status_code == 200
    assert_password_is(client, phone, NEW_PASSWORD)


@pytest.mark.parametrize("method", ["sms", "key"])
def test_forgot_password_answers_alike_for_unknown_numbers(client, rt, method):
    done = register_account(client, rt)
    client.get("/forgot-password")
    answers = []
    for phone in (done["phone"], new_phone()):
        answers.append(client.post("/forgot-password", data={
            "csrf_token": csrf(client), "method": method, "phone": phone, "code": "123456",
            "recovery_key": WRONG_KEY, "new_password": NEW_PASSWORD}))
    assert answers[0].status_code == answers[1].status_code == 400
    strip = re.compile(r'value="1\d{10}"')
    assert strip.sub("", answers[0].text) == strip.sub("", answers[1].text)


def test_forgot_password_without_the_csrf_token_changes_nothing(client, rt):
    done = register_account(client, rt)
    client.get("/forgot-password?method=key")
    answer = client.post("/forgot-password", data={"csrf_token": "forged", "method": "key", "phone": done["phone"],
                                                   "recovery_key": done["recovery_key"],
                                                   "new_password": NEW_PASSWORD})
    assert answer.status_code == 403
    assert "页面已过期" in answer.text
    assert_password_unchanged(client, done["phone"])


# --- my account was stolen, unfreeze ---------------------------------------------------------------

def test_stolen_account_freeze_then_unfreeze_through_the_pages(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    stolen = client.get("/account-stolen")
    assert 'href="/unfreeze"' in stolen.text

    code = send_code_form(client, rt, "/account-stolen", phone, "freeze")
    frozen = client.post("/account-stolen", data={"csrf_token": csrf(client), "phone": phone, "code": code})

    assert frozen.status_code == 200, alert_of(frozen.text)
    assert re.search(r'<h1 id="outcome">账号已冻结</h1>', frozen.text)
    assert 'href="/unfreeze"' in frozen.text
    assert account_row(rt, done["account"]["id"]).status == "frozen"
    assert me(client, done["session"]["token"]).status_code == 401
    refused = login_form(client, phone, STRONG_PASSWORD, follow_redirects=True)
    assert refused.status_code == 403
    assert alert_of(refused.text) == "该账号已冻结，请使用手机号和恢复密钥解冻。"

    code = send_code_form(client, rt, "/unfreeze", phone, "unfreeze")
    back = client.post("/unfreeze", data={"csrf_token": csrf(client), "phone": phone, "code": code,
                                          "recovery_key": done["recovery_key"], "new_password": NEW_PASSWORD})
    assert back.status_code == 200, alert_of(back.text)
    assert re.search(r'<h1 id="outcome">账号已解冻</h1>', back.text)
    assert_password_is(client, phone, NEW_PASSWORD, not_=(STRONG_PASSWORD,))


def test_stolen_page_wrong_code_and_unknown_number_look_alike(client, rt):
    done = register_account(client, rt)
    client.get("/account-stolen")
    answers = [client.post("/account-stolen", data={"csrf_token": csrf(client), "phone": phone, "code": "123456"})
               for phone in (done["phone"], new_phone())]
    assert answers[0].status_code == answers[1].status_code == 400
    assert code_status(answers[0].text, "code") == code_status(answers[1].text, "code") == "验证码错误或已过期。"
    assert account_row(rt, done["account"]["id"]).status == "active"


def test_unfreeze_page_refuses_a_wrong_key_with_one_message(client, rt):
    done = register_account(client, rt)
    client.get("/unfreeze")
    answer = client.post("/unfreeze", data={"csrf_token": csrf(client), "phone": done["phone"], "code": "123456",
                                            "recovery_key": WRONG_KEY, "new_password": NEW_PASSWORD})
    assert answer.status_code == 400
    assert alert_of(answer.text) == "验证码或恢复密钥错误，或验证码已过期。"
    assert WRONG_KEY not in answer.text


# --- signed in: change password, recovery key, freeze ----------------------------------------------

@pytest.mark.parametrize("url", SIGNED_IN_PAGES)
def test_signed_in_pages_send_visitors_to_login(client, url):
    assert client.get(url, follow_redirects=False).headers["location"].split("?")[0] == "/login"
    posted = client.post(url, data={}, follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"].split("?")[0] == "/login"


def test_change_password_page(client, rt):
    done = register_account(client, rt)
    token = browser_login(client, done["phone"])
    page = client.get("/account/password")
    assert re.search(r'<input id="current_password" name="current_password"[^>]*autocomplete="current-password"',
                     page.text)
    assert re.search(r'<input id="new_password" name="new_password"[^>]*autocomplete="new-password"', page.text)

    wrong = client.post("/account/password", data={"csrf_token": csrf(client), "current_password": WRONG_PASSWORD,
                                                   "new_password": NEW_PASSWORD})
    assert wrong.status_code == 400
    assert field_error(wrong.text, "current_password") == "当前密码错误。"

    changed = client.post("/account/password", data={"csrf_token": csrf(client),
                                                     "current_password": STRONG_PASSWORD,
                                                     "new_password": NEW_PASSWORD}, follow_redirects=False)
    assert changed.status_code == 303 and changed.headers["location"] == "/account/password?done=1"
    shown = client.get(changed.headers["location"])
    assert "密码已修改，其他设备均已退出登录。" in shown.text
    # This browser stays logged in, on a new token: the one it had (perhaps stolen) ends too.
    assert sessions.authenticate(rt, token) is None
    rotated = client.cookies.get("passport_session")
    assert rotated != token and sessions.authenticate(rt, rotated) is not None
    assert client.get("/account", follow_redirects=False).status_code == 200
    assert me(client, done["session"]["token"]).status_code == 401  # the API session ended
    assert_password_is(client, done["phone"], NEW_PASSWORD, not_=(STRONG_PASSWORD,))


def test_change_password_page_needs_the_csrf_token(client, rt):
    done = register_account(client, rt)
    browser_login(client, done["phone"])
    answer = client.post("/account/password", data={"current_password": STRONG_PASSWORD,
                                                    "new_password": NEW_PASSWORD})
    assert answer.status_code == 403 and "页面已过期" in answer.text
    assert_password_unchanged(client, done["phone"])


def test_new_recovery_key_page_shows_the_key_once(client, rt):
    done = register_account(client, rt)
    browser_login(client, done["phone"])
    client.get("/account/recovery-key")

    wrong = client.post("/account/recovery-key", data={"csrf_token": csrf(client), "password": WRONG_PASSWORD})
    assert wrong.status_code == 400
    assert field_error(wrong.text, "password") == "密码错误。"
    assert not RECOVERY_KEY.search(wrong.text)

    made = client.post("/account/recovery-key", data={"csrf_token": csrf(client), "password": STRONG_PASSWORD})
    assert made.status_code == 200
    assert made.headers["cache-control"] == "no-store"
    [key] = set(RECOVERY_KEY.findall(made.text))  # shown, and in the download link
    assert key != done["recovery_key"]
    assert "请立即保存恢复密钥" in made.text
    assert not RECOVERY_KEY.search(client.get("/account/recovery-key").text)
    rt.clock.advance(seconds=1)
    old = client.post("/api/v1/password-resets", json={"phone": done["phone"], "recovery_key": done["recovery_key"],
                                                       "new_password": NEW_PASSWORD})
    assert old.status_code == 400
    new = client.post("/api/v1/password-resets", json={"phone": done["phone"], "recovery_key": key,
                                                       "new_password": NEW_PASSWORD})
    assert new.status_code == 204


def test_freeze_page_freezes_and_logs_this_browser_out(client, rt):
    done = register_account(client, rt)
    token = browser_login(client, done["phone"])
    confirm = client.get("/account/freeze")
    assert re.search(r'<form id="form-freeze"[^>]*action="/account/freeze"', confirm.text)

    answer = client.post("/account/freeze", data={"csrf_token": csrf(client)})

    assert answer.status_code == 200
    assert re.search(r'<h1 id="outcome">账号已冻结</h1>', answer.text)
    assert 'id="logout"' not in answer.text  # drawn for a visitor
    assert client.cookies.get("passport_session") is None
    assert sessions.authenticate(rt, token) is None
    assert account_row(rt, done["account"]["id"]).status == "frozen"
    assert login(client, done["phone"], STRONG_PASSWORD).json()["code"] == "account_frozen"


def test_freeze_page_without_the_csrf_token_freezes_nothing(client, rt):
    done = register_account(client, rt)
    browser_login(client, done["phone"])
    answer = client.post("/account/freeze", data={"csrf_token": "forged"})
    assert answer.status_code == 403
    assert account_row(rt, done["account"]["id"]).status == "active"


# --- language, baseline, translations --------------------------------------------------------------

def test_pages_in_english(client, rt):
    english = {"/forgot-password": "Reset your password", "/account-stolen": "My account was stolen",
               "/unfreeze": "Unfreeze your account"}
    for url, heading in english.items():
        page = client.get(f"{url}?lang=en")
        assert '<html lang="en">' in page.text and heading in page.text
    done = register_account(client, rt)
    browser_login(client, done["phone"])
    for url, heading in {"/account/password": "Change password", "/account/recovery-key": "New recovery key",
                         "/account/freeze": "Freeze my account"}.items():
        assert heading in client.get(url).text  # the lang cookie keeps English


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style|\sstyle=", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+=", re.I)


def test_pages_keep_the_security_baseline(client, rt):
    seen = [client.get(url) for url in PUBLIC_PAGES]
    done = register_account(client, rt)
    browser_login(client, done["phone"])
    seen += [client.get(url) for url in SIGNED_IN_PAGES]
    seen.append(client.post("/account/recovery-key", data={"csrf_token": csrf(client), "password": STRONG_PASSWORD}))
    for page in seen:
        assert page.status_code == 200, page.url
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert '<meta name="viewport"' in page.text
        assert not INLINE_SCRIPT.search(page.text), page.url
        assert not INLINE_STYLE.search(page.text), page.url
        assert not INLINE_HANDLER.search(page.text), page.url
        for form in re.findall(r'<form[^>]*method="post".*?</form>', page.text, re.S):
            assert 'name="csrf_token"' in form, page.url
        ids = re.findall(r'\sid="([^"]+)"', page.text)
        assert len(ids) == len(set(ids)), page.url


def test_every_input_has_a_label(client):
    for url in PUBLIC_PAGES:
        html = client.get(url).text
        for input_id in re.findall(r'<input id="([^"]+)"', html):
            assert f'<label for="{input_id}">' in html, (url, input_id)


def test_messages_of_the_credential_pages_are_translated():
    """Messages the page module passes to ``translate`` (the shared test reads only the other modules)."""
    source = Path(credential_pages.__file__)
    found = {credential_pages.CHANGED_NOTICE}
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        name = getattr(node, "func", None) and getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name == "translate" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            found.add(node.args[1].value)
    catalog = source.parents[1] / "web" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
    with catalog.open("rb") as fh:
        translated = {m.id for m in read_po(fh) if m.id and m.string and not m.fuzzy}
    assert sorted(found - translated) == []
