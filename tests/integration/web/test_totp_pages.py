"""The pages of two-step verification: /account/totp (QR code, confirm, disable) and the second
step of the login page."""

from __future__ import annotations

import ast
import base64
import html
import re
from pathlib import Path

import pyotp
from babel.messages.pofile import read_po

from passport.accounts.models import TOTP_SECRET, Account
from passport.credentials import pages as totp_pages
from passport_testing import bearer, csrf, last_code, login_form, register_account

SRC = Path(totp_pages.__file__).resolve().parents[1]
CATALOG = SRC / "web" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style|\sstyle=", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+=", re.I)


def hidden_inputs(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


def signed_in(client, rt) -> dict:
    done = register_account(client, rt)
    assert login_form(client, done["phone"], done["password"]).status_code == 303
    return done


def post(client, url: str, **data):
    return client.post(url, data={"csrf_token": csrf(client)} | data, follow_redirects=False)


def page_secret(page: str) -> str:
    found = re.search(r'<output id="totp-secret"[^>]*>([^<]+)</output>', page)
    assert found, "the secret is shown for manual entry"
    return found.group(1).replace(" ", "")


def stored_secret(rt, account_id: str) -> str | None:
    with rt.db.read() as db:
        row = db.get(Account, account_id)
    return rt.keys.cipher.decrypt(row.totp_secret_enc, TOTP_SECRET, account_id) if row.totp_secret_enc else None


def code_now(rt, secret: str) -> str:
    return pyotp.TOTP(secret).at(rt.clock.now())


def with_totp_by_api(client, rt) -> tuple[dict, str]:
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    secret = client.post("/api/v1/me/totp", headers=headers).json()["secret"]
    assert client.post("/api/v1/me/totp/confirm", json={"code": code_now(rt, secret)},
                       headers=headers).status_code == 204
    rt.clock.advance(seconds=30)
    return done, secret


def alert_of(page: str) -> str:
    found = re.search(r'<div class="alert alert-error" role="alert">(.*?)</div>', page, re.S)
    return found.group(1).strip() if found else ""


# --- /account/totp ---------------------------------------------------------------------------------

def test_the_settings_page_needs_a_session(client):
    answer = client.get("/account/totp", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].split("?")[0] == "/login"
    refused = client.post("/account/totp/enroll", data={}, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"].split("?")[0] == "/login"


def test_enable_with_the_qr_code_then_disable(client, rt):
    done = signed_in(client, rt)
    account_id, phone = done["account"]["id"], done["phone"]
    off = client.get("/account/totp")
    assert off.status_code == 200
    assert "未开启" in off.text and 'id="enable-totp"' in off.text and 'id="totp-qr"' not in off.text

    started = post(client, "/account/totp/enroll")
    assert started.status_code == 303 and started.headers["location"] == "/account/totp"
    setup = client.get("/account/totp").text
    secret = page_secret(setup)
    assert secret == stored_secret(rt, account_id)
    image = re.search(r'<img id="totp-qr" class="qr" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', setup)
    svg = base64.b64decode(image.group(1)).decode()
    assert svg.startswith("<svg") and "<script" not in svg
    link = html.unescape(re.search(r'class="[^"]*otpauth-link" href="([^"]+)"', setup).group(1))
    assert pyotp.parse_uri(link).secret == secret and pyotp.parse_uri(link).issuer == "奥集能"
    assert phone not in setup and phone not in link and f"{phone[:3]}%2A%2A%2A%2A{phone[7:]}" in link
    # Reloading shows the same secret: it waits for its first code.
    assert page_secret(client.get("/account/totp").text) == secret

    wrong = post(client, "/account/totp/confirm", code="000000" if code_now(rt, secret) != "000000" else "111111")
    assert wrong.status_code == 400
    assert re.search(r'<input id="totp-code" name="code"[^>]*aria-invalid="true"', wrong.text)
    assert "动态验证码错误或已过期。" in wrong.text
    assert page_secret(wrong.text) == secret

    code = code_now(rt, secret)
    confirmed = post(client, "/account/totp/confirm", code=code)
    assert confirmed.status_code == 303, alert_of(confirmed.text)
    assert confirmed.headers["location"] == "/account/totp?done=enabled"
    on = client.get(confirmed.headers["location"]).text
    assert "两步验证已开启" in on and "已开启" in on and 'id="form-totp-disable"' in on
    assert 'id="totp-secret"' not in on and secret not in on  # never shown again once on

    replay = post(client, "/account/totp/disable", code=code)
    assert replay.status_code == 400 and "该动态验证码已使用过，请等待下一个。" in replay.text
    rt.clock.advance(seconds=30)
    disabled = post(client, "/account/totp/disable", code=code_now(rt, secret))
    assert disabled.status_code == 303 and disabled.headers["location"] == "/account/totp?done=disabled"
    assert "两步验证未开启" in client.get("/account/totp?done=disabled").text
    assert stored_secret(rt, account_id) is None


def test_disable_on_the_page_with_the_recovery_key(client, rt):
    done = signed_in(client, rt)
    post(client, "/account/totp/enroll")
    secret = page_secret(client.get("/account/totp").text)
    assert post(client, "/account/totp/confirm", code=code_now(rt, secret)).status_code == 303

    wrong = post(client, "/account/totp/disable", recovery_key="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")
    assert wrong.status_code == 400 and "恢复密钥错误。" in wrong.text
    assert re.search(r'<details class="more" open>', wrong.text)
    assert post(client, "/account/totp/disable", recovery_key=done["recovery_key"]).status_code == 303
    assert stored_secret(rt, done["account"]["id"]) is None


def test_settings_forms_need_the_csrf_token(client, rt):
    done = signed_in(client, rt)
    refused = client.post("/account/totp/enroll", data={"csrf_token": "forged"}, follow_redirects=False)
    assert refused.status_code == 403 and alert_of(refused.text) == "页面已过期，请刷新后重试。"
    assert stored_secret(rt, done["account"]["id"]) is None


def test_english_settings_page(client, rt):
    signed_in(client, rt)
    page = client.get("/account/totp?lang=en").text
    assert "Two-step verification" in page and "Set up" in page and "两步验证" not in page


# --- the second login step -------------------------------------------------------------------------

def test_login_asks_for_the_code_then_opens_the_account(client, rt):
    done, secret = with_totp_by_api(client, rt)
    first = login_form(client, done["phone"], done["password"])
    assert first.status_code == 200
    assert not [h for h in first.headers.get_list("set-cookie") if h.startswith("passport_session=")]
    page = first.text
    assert '<form id="form-mfa"' in page and 'id="form-password"' not in page
    assert re.search(r'<input id="mfa-totp" name="totp"[^>]*autocomplete="one-time-code"', page)
    assert re.search(r'<form id="form-mfa"[^>]*>.*?<button id="submit"', page, re.S)
    token = hidden_inputs(page)["mfa_token"]
    assert token and done["password"] not in page

    wrong = client.post("/login/mfa", data={"csrf_token": csrf(client), "mfa_token": token, "totp": "12345"},
                        follow_redirects=False)
    assert wrong.status_code == 400 and "动态验证码错误或已过期。" in wrong.text
    assert re.search(r'<input id="mfa-totp" name="totp"[^>]*aria-invalid="true"', wrong.text)
    assert hidden_inputs(wrong.text)["mfa_token"] == token

    passed = client.post("/login/mfa", data={"csrf_token": csrf(client), "mfa_token": token,
                                             "totp": code_now(rt, secret)}, follow_redirects=False)
    assert passed.status_code == 303 and passed.headers["location"] == "/account"
    [cookie] = [h for h in passed.headers.get_list("set-cookie") if h.startswith("passport_session=")]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    account = client.get("/account")
    assert account.status_code == 200 and 'id="account-nickname"' in account.text


def test_sms_code_login_on_the_page_asks_for_the_code_too(client, rt):
    done, secret = with_totp_by_api(client, rt)
    rt.clock.advance(seconds=61)
    client.get("/login?method=sms")
    assert client.post("/api/v1/verification-codes", json={"to": done["phone"], "purpose": "login"}).status_code == 202
    first = client.post("/login", data={"csrf_token": csrf(client), "method": "sms", "phone": done["phone"],
                                        "code": last_code(rt, done["phone"], "login")}, follow_redirects=False)
    assert first.status_code == 200 and '<form id="form-mfa"' in first.text
    token = hidden_inputs(first.text)["mfa_token"]
    passed = client.post("/login/mfa", data={"csrf_token": csrf(client), "mfa_token": token,
                                             "totp": code_now(rt, secret)}, follow_redirects=False)
    assert passed.status_code == 303 and passed.headers["location"] == "/account"


def test_login_with_the_recovery_key_on_the_page(client, rt):
    done, _secret = with_totp_by_api(client, rt)
    token = hidden_inputs(login_form(client, done["phone"], done["password"]).text)["mfa_token"]
    wrong = client.post("/login/mfa", data={"csrf_token": csrf(client), "mfa_token": token,
                                            "recovery_key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"}, follow_redirects=False)
    assert wrong.status_code == 400 and "恢复密钥错误。" in wrong.text
    passed = client.post("/login/mfa", data={"csrf_token": csrf(client), "mfa_token": token,
                                             "recovery_key": done["recovery_key"]}, follow_redirects=False)
    assert passed.status_code == 303 and passed.headers["location"] == "/account"


def test_a_spent_or_forged_token_sends_the_user_back_to_log_in(client, rt):
    done, secret = with_totp_by_api(client, rt)
    token = hidden_inputs(login_form(client, done["phone"], done["password"]).text)["mfa_token"]
    for bad in ("forged", token[:-1] + ("A" if token[-1] != "A" else "B")):
        answer = client.post("/login/mfa", data={"csrf_token": csrf(client), "mfa_token": bad,
                                                 "totp": code_now(rt, secret)}, follow_redirects=False)
        assert answer.status_code == 401
        assert alert_of(answer.text) == "本次验证已失效，请重新登录。"
        assert 'id="form-password"' in answer.text and 'id="form-mfa"' not in answer.text


def test_the_mfa_step_needs_the_csrf_token(client, rt):
    done, secret = with_totp_by_api(client, rt)
    token = hidden_inputs(login_form(client, done["phone"], done["password"]).text)["mfa_token"]
    answer = client.post("/login/mfa", data={"csrf_token": "forged", "mfa_token": token,
                                             "totp": code_now(rt, secret)}, follow_redirects=False)
    assert answer.status_code == 403 and 'id="form-mfa"' in answer.text
    assert not [h for h in answer.headers.get_list("set-cookie") if h.startswith("passport_session=")]


def test_login_page_links_to_forgot_password_and_account_stolen(client):
    page = client.get("/login").text
    assert re.search(r'<a id="forgot-password" href="/forgot-password">忘记密码</a>', page)
    assert re.search(r'<a id="account-stolen" href="/account-stolen">账号被盗？</a>', page)
    english = client.get("/login?lang=en").text
    assert "Forgot password?" in english and "Account stolen?" in english
    for target in ("/forgot-password", "/account-stolen"):
        assert client.get(target).status_code == 200, target


def test_pages_carry_no_inline_code_and_send_the_security_headers(client, rt):
    done, _secret = with_totp_by_api(client, rt)
    seen = [login_form(client, done["phone"], done["password"])]
    signed_in(client, rt)
    seen.append(client.get("/account/totp"))
    post(client, "/account/totp/enroll")
    seen.append(client.get("/account/totp"))
    for page in seen:
        assert page.status_code == 200
        assert "img-src 'self' data:" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert '<meta name="viewport"' in page.text
        assert not INLINE_SCRIPT.search(page.text)
        assert not INLINE_STYLE.search(page.text)
        assert not INLINE_HANDLER.search(page.text)


def test_page_messages_of_the_totp_pages_are_translated():
    """test_pages.py reads the translate() calls of its own page modules; these are this one's."""
    translated = set()
    for path in sorted(CATALOG.parent.glob("*.po")):  # messages.po and the later domains' files
        with path.open("rb") as fh:
            translated |= {m.id for m in read_po(fh) if m.id and m.string and not m.fuzzy}
    wanted = set(totp_pages.DONE_NOTICES.values())
    for path in (SRC / "credentials" / "pages.py", SRC / "sessions" / "pages.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node, "func", None) and getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name == "translate" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                wanted.add(node.args[1].value)
    assert "This verification step has ended. Please log in again." in wanted
    assert sorted(wanted - translated) == []
