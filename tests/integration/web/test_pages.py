"""The web pages: register, log in (password, SMS code), account, log out, agreements, dev outbox,
language switch, CSRF and the page security baseline (ARCHITECTURE "Security baseline")."""

from __future__ import annotations

import ast
import random
import re
import uuid
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from passport.accounts import service as accounts
from passport.agreements import service as agreements
from passport.audit.service import Origin
from passport.sessions import service as sessions
from passport.settings import Settings
from passport.web import html
from passport_testing import STRONG_PASSWORD, csrf, last_code, login_form, new_phone, register_account

SRC = Path(html.__file__).resolve().parents[1]
LOCALE = SRC / "web" / "locale"
RECOVERY_KEY = re.compile(r"[A-Z2-9]{5}(?:-[A-Z2-9]{5}){4}")
NICKNAME = "小明"


# --- helpers ---------------------------------------------------------------------------------------

def phone_ending_5678() -> str:
    return f"138{random.randrange(10_000):04d}5678"


def hidden_inputs(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


def alert_of(html: str) -> str:
    found = re.search(r'<div class="alert alert-error" role="alert">(.*?)</div>', html, re.S)
    return found.group(1).strip() if found else ""


def account_exists(rt, phone: str) -> bool:
    with rt.db.read() as db:
        return accounts.account_exists(db, accounts.sms_target(rt, phone))


def register_form(client, rt, phone: str, *, accept: bool = True, csrf_field: str | None = "from-cookie",
                  follow: bool = True):
    """Fill in /register as a browser without JavaScript would, "send code" button included."""
    page = client.get("/register")
    assert page.status_code == 200
    fields = {k: v for k, v in hidden_inputs(page.text).items() if k.startswith("agreement.")}
    assert set(fields) == {"agreement.user-agreement", "agreement.privacy-policy"}
    sent = client.post("/send-code", data={"csrf_token": csrf(client), "phone": phone, "nickname": NICKNAME,
                                           "purpose": "register"})
    assert sent.status_code == 200, sent.text
    assert "验证码已发送" in sent.text
    assert f'value="{NICKNAME}"' in sent.text  # the form keeps what was typed
    data = fields | {"phone": phone, "code": last_code(rt, phone, "register"), "nickname": NICKNAME,
                     "password": STRONG_PASSWORD}
    if accept:
        data["accept"] = "on"
    if csrf_field is not None:
        data["csrf_token"] = csrf(client) if csrf_field == "from-cookie" else csrf_field
    return client.post("/register", data=data, follow_redirects=follow)


def set_cookie_headers(response, name: str) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]


# --- registration ----------------------------------------------------------------------------------

def test_register_through_the_form_lands_on_account_with_masked_phone(client, rt):
    phone = phone_ending_5678()
    posted = register_form(client, rt, phone, follow=False)

    # Post/redirect/get: the key is shown by a GET page (a reload or "back" never re-posts the form).
    assert posted.status_code == 303 and posted.headers["location"] == "/register/done", alert_of(posted.text)
    [cookie] = set_cookie_headers(posted, "passport_session")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie
    [sealed] = set_cookie_headers(posted, "passport_welcome")
    assert "Path=/register/done" in sealed and "HttpOnly" in sealed and "Max-Age=600" in sealed
    assert not RECOVERY_KEY.search(sealed), "the cookie holds the key sealed, never in clear"
    answer = client.get("/register/done")
    assert answer.status_code == 200
    key = RECOVERY_KEY.search(answer.text)
    assert key, "the recovery key is shown"
    assert "请立即保存恢复密钥" in answer.text and 'download="passport-recovery-key.txt"' in answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert phone not in answer.text
    assert RECOVERY_KEY.search(client.get("/register/done").text).group(0) == key.group(0)  # a reload shows it again
    assert client.get("/register", follow_redirects=False).headers["location"] == "/account"  # signed in
    saved = client.post("/register/done", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/account"
    gone = client.get("/register/done", follow_redirects=False)  # once saved, never shown again
    assert gone.status_code == 303 and gone.headers["location"] == "/account"

    account = client.get("/account")
    assert account.status_code == 200
    assert re.search(r'id="account-phone"[^>]*>138\*\*\*\*5678<', account.text)
    assert re.search(rf'id="account-nickname"[^>]*>{NICKNAME}<', account.text)
    assert phone not in account.text
    assert "本机" in account.text  # this device, in the sessions list
    assert "/agreements/user-agreement/1.0" in account.text  # the consent ledger


def test_unticked_agreement_box_shows_the_message_and_creates_nothing(client, rt):
    phone = new_phone()
    answer = register_form(client, rt, phone, accept=False)

    assert answer.status_code == 422
    assert "请阅读并同意最新版《用户服务协议》和《隐私政策》" in answer.text
    assert 'id="accept-error"' in answer.text
    assert f'value="{phone}"' in answer.text and f'value="{NICKNAME}"' in answer.text
    assert STRONG_PASSWORD not in answer.text
    assert not set_cookie_headers(answer, "passport_session")
    assert not account_exists(rt, phone)


@pytest.mark.parametrize("csrf_field", [None, "forged-value"], ids=["missing", "wrong"])
def test_register_without_the_csrf_token_is_refused_and_creates_nothing(client, rt, csrf_field):
    phone = new_phone()
    answer = register_form(client, rt, phone, csrf_field=csrf_field)

    assert answer.status_code == 403
    assert "页面已过期" in answer.text
    assert not set_cookie_headers(answer, "passport_session")
    assert not account_exists(rt, phone)


def test_weak_password_is_shown_next_to_the_password_field(client, rt):
    client.get("/register")
    answer = client.post("/register", data={
        "csrf_token": csrf(client), "phone": new_phone(), "code": "123456", "nickname": NICKNAME,
        "password": "password", "accept": "on"})
    assert answer.status_code == 422
    # Every rule it breaks, named, in one answer.
    assert re.search(r'<p class="field-error" id="password-error">密码不符合要求：'
                     r'小写字母、大写字母、数字、符号中少于 3 种；是常见密码。</p>', answer.text)
    assert 'value="password"' not in answer.text


def test_send_code_again_too_soon_says_how_long_to_wait(client, rt):
    phone = new_phone()
    client.get("/login?method=sms")
    form = {"csrf_token": csrf(client), "phone": phone, "purpose": "register"}
    assert client.post("/send-code", data=form).status_code == 200
    again = client.post("/send-code", data=form)
    assert again.status_code == 429
    assert re.search(r"请 \d+ 秒后再试", again.text)
    assert re.search(r'data-wait="[1-9]\d*"', again.text)


# --- login and logout ------------------------------------------------------------------------------

def test_password_login_sets_the_session_cookie_and_opens_the_account(client, rt):
    done = register_account(client, rt, nickname=NICKNAME)
    answer = login_form(client, done["phone"], STRONG_PASSWORD)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/account"
    [cookie] = set_cookie_headers(answer, "passport_session")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    account = client.get("/account")
    assert account.status_code == 200
    assert NICKNAME in account.text


def test_sms_code_login(client, rt):
    done = register_account(client, rt, nickname=NICKNAME)
    rt.clock.advance(seconds=61)  # past the resend wait of the registration code
    client.get("/login?method=sms")
    sent = client.post("/send-code", data={"csrf_token": csrf(client), "phone": done["phone"],
                                           "purpose": "login"})
    assert sent.status_code == 200
    assert re.search(r'<form id="form-sms"[^>]*role="tabpanel"[^>]*aria-labelledby="tab-sms">', sent.text)

    code = last_code(rt, done["phone"], "login")
    answer = client.post("/login", data={"csrf_token": csrf(client), "method": "sms", "phone": done["phone"],
                                         "code": code}, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get("/account").status_code == 200


def test_wrong_password_and_unknown_phone_get_the_same_answer(client, rt):
    done = register_account(client, rt)
    wrong = login_form(client, done["phone"], "Wrong!password-7x")
    unknown = login_form(client, new_phone(), "Wrong!password-7x")

    assert wrong.status_code == unknown.status_code == 401
    assert alert_of(wrong.text) == alert_of(unknown.text) == "账号或密码错误。"
    assert not set_cookie_headers(wrong, "passport_session")


def test_login_rotates_the_session_this_browser_had(client, rt):
    done = register_account(client, rt)
    first = set_cookie_headers(login_form(client, done["phone"], STRONG_PASSWORD), "passport_session")[0]
    old_token = first.split(";")[0].split("=", 1)[1]
    assert sessions.authenticate(rt, old_token) is not None

    login_form(client, done["phone"], STRONG_PASSWORD)
    assert sessions.authenticate(rt, old_token) is None
    assert client.get("/account").status_code == 200


def test_logout_ends_the_session_and_forgets_the_cookie(client, rt):
    done = register_account(client, rt)
    login_form(client, done["phone"], STRONG_PASSWORD)
    token = client.cookies.get("passport_session")
    client.get("/account")

    refused = client.post("/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert sessions.authenticate(rt, token) is not None

    answer = client.post("/logout", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].split("?")[0] == "/login"
    assert sessions.authenticate(rt, token) is None
    assert client.cookies.get("passport_session") is None
    assert client.get("/account", follow_redirects=False).headers["location"].split("?")[0] == "/login"


def test_account_page_needs_a_session(client):
    answer = client.get("/account", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].split("?")[0] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 200


def test_profile_edit_and_removing_another_device(client, rt):
    done = register_account(client, rt)  # its API session is "another device"
    login_form(client, done["phone"], STRONG_PASSWORD)
    client.get("/account")

    profile = {"csrf_token": csrf(client), "nickname": "新名字", "bio": "你好"}
    saved = client.post("/account/profile", data=profile, follow_redirects=False)
    assert saved.status_code == 303
    page = client.get(saved.headers["location"])
    assert re.search(r'id="account-nickname"[^>]*>新名字<', page.text)
    assert "个人资料已保存" in page.text

    too_long = client.post("/account/profile", data=profile | {"nickname": "长" * 40})
    assert too_long.status_code == 422
    assert "昵称须为 1 到 32 个字符" in too_long.text

    other = done["session"]["id"]
    assert f"/account/sessions/{other}/revoke" in page.text
    removed = client.post(f"/account/sessions/{other}/revoke", data={"csrf_token": csrf(client)},
                          follow_redirects=False)
    assert removed.status_code == 303
    assert sessions.authenticate(rt, done["session"]["token"]) is None
    assert f"/account/sessions/{other}/revoke" not in client.get("/account").text


# --- language, agreements, errors, outbox ----------------------------------------------------------

def test_chinese_by_default_and_english_on_request(client):
    chinese = client.get("/login")
    assert '<html lang="zh-CN">' in chinese.text
    assert "密码登录" in chinese.text

    english = client.get("/login?lang=en")
    assert '<html lang="en">' in english.text
    assert "Password login" in english.text and "密码登录" not in english.text
    assert set_cookie_headers(english, "lang")
    assert "Create your account" in client.get("/register").text  # the cookie keeps English

    assert "注册账号" in client.get("/register?lang=zh-CN").text


def test_accept_language_picks_english(client):
    assert "Log in" in client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text


def test_agreement_pages_render_markdown_safely_with_their_history(client, rt):
    kind = f"test-{uuid.uuid4().hex[:8]}"
    agreements.publish(rt, Origin(), kind=kind, version="1.0", title="Old", body="# Old\n\nfirst")
    rt.clock.advance(seconds=1)
    hostile = "# New terms\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) **bold**"
    agreements.publish(rt, Origin(), kind=kind, version="2.0", title="New terms", body=hostile)

    current = client.get(f"/agreements/{kind}")
    assert current.status_code == 200
    assert "<h1>New terms</h1>" in current.text and "<strong>bold</strong>" in current.text
    assert "<script>alert" not in current.text and "&lt;script&gt;" in current.text
    assert "href=\"javascript:" not in current.text
    assert f'href="/agreements/{kind}/1.0"' in current.text

    old = client.get(f"/agreements/{kind}/1.0")
    assert old.status_code == 200 and "<h1>Old</h1>" in old.text
    assert client.get(f"/agreements/{kind}/9.9").status_code == 404


def test_unknown_page_gets_an_html_error_page(client):
    answer = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "页面或资源不存在。" in answer.text

    crafted = client.get("/%5Cevil.example", headers={"Accept": "text/html"})
    assert crafted.status_code == 404
    assert "evil.example" not in crafted.text  # the language links stay on this site


def dev_client(rt):
    """A client of an app in PASSPORT_ENV=dev over the test runtime (its outbox directory)."""
    from fastapi.testclient import TestClient

    from passport.app import create_app

    return TestClient(create_app(rt.settings.model_copy(update={"env": "dev"}), runtime=rt))


def test_dev_outbox_lists_the_message_in_full(client, rt):
    phone = new_phone()
    sent = client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"})
    assert sent.status_code == 202
    outbox = dev_client(rt).get("/dev/outbox")
    assert outbox.status_code == 200
    assert f"+86{phone}" in outbox.text
    assert last_code(rt, phone, "register") in outbox.text


def test_dev_outbox_exists_only_in_dev(client, rt, tmp_path):
    # Issue 15: it was shown in test too, where the prod checks are skipped; now dev only.
    from fastapi.testclient import TestClient

    from passport.app import create_app

    with TestClient(create_app(Settings(env="dev", data_dir=tmp_path))) as dev:
        assert dev.get("/dev/outbox").status_code == 200
    assert client.get("/dev/outbox").status_code == 404
    key = "A" * 43 + "="
    prod = Settings(env="prod", data_dir=tmp_path, database_url="postgresql://passport@db.invalid/passport",
                    encryption_keys=f"k1:{key}", blind_index_key=key, secret_key=key,
                    audit_keys=f"a1:{key}", sms_backend="aliyun", email_backend="smtp",
                    base_url="https://passport.example.cn")
    # The prod app borrows the test runtime: only its settings decide which routers it has.
    with TestClient(create_app(prod, runtime=rt)) as live:
        assert live.get("/dev/outbox").status_code == 404
        assert live.get("/login").status_code == 200


# --- security baseline -----------------------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style|\sstyle=", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+=", re.I)


def test_pages_send_security_headers_and_carry_no_inline_code(client, rt):
    done = register_account(client, rt)
    anonymous = ["/", "/register", "/login", "/login?method=sms", "/agreements/privacy-policy"]
    pages_seen = [client.get(url) for url in anonymous]
    pages_seen.append(dev_client(rt).get("/dev/outbox"))  # dev only since issue 15
    login_form(client, done["phone"], STRONG_PASSWORD)
    pages_seen.append(client.get("/account"))
    client.cookies.clear()  # signed out: a signed-in browser is sent from /register to /account
    pages_seen.append(register_form(client, rt, new_phone()))  # the recovery key page

    for page in pages_seen:
        assert page.status_code == 200, page.url
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert '<meta name="viewport"' in page.text
        assert not INLINE_SCRIPT.search(page.text), page.url
        assert not INLINE_STYLE.search(page.text), page.url
        assert not INLINE_HANDLER.search(page.text), page.url
        [csrf_cookie] = set_cookie_headers(page, "passport_csrf")
        assert "HttpOnly" not in csrf_cookie  # the page script sends it as X-CSRF-Token


def test_form_inputs_have_labels_and_autocomplete(client):
    html = client.get("/register").text
    for name, autocomplete in (("phone", "tel"), ("code", "one-time-code"), ("password", "new-password")):
        assert re.search(rf'<label for="{name}">', html)
        assert re.search(rf'<input id="{name}" name="{name}"[^>]*autocomplete="{autocomplete}"', html)
    assert re.search(r'<input id="code"[^>]*inputmode="numeric"', html)
    assert re.search(r'<input id="accept" name="accept" type="checkbox" value="on">', html), "unticked"
    login = client.get("/login").text
    assert re.search(r'<input id="password" name="password"[^>]*autocomplete="current-password"', login)


# --- translations ----------------------------------------------------------------------------------

def template_msgids() -> set[tuple[str | None, str]]:
    """(context, msgid) of every message in the templates: a ``pgettext("account", "Status")`` needs
    its own entry (``msgctxt "account"``), the plain "Status" does not stand in for it."""
    found = extract_from_dir(str(SRC / "web" / "templates"),
                             method_map=[("**.html", "jinja2.ext:babel_extract")],
                             options_map={"**.html": {"extensions": "jinja2.ext.i18n"}})
    return {(context, message) for _file, _line, message, _comments, context in found}


def page_msgids() -> set[str]:
    from passport.accounts import pages as account_pages

    found = set(account_pages.DONE_NOTICES.values())
    for path in [*sorted(SRC.rglob("*pages.py")), SRC / "web" / "html.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node, "func", None) and getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name == "translate" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                found.add(node.args[1].value)
    return found


def domain_error_msgids() -> set[str]:
    """Literal titles and field messages of every DomainError, errors.invalid and FieldError."""
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            position = {"DomainError": 1, "invalid": 1, "FieldError": 2}.get(name)
            if position is None or len(node.args) <= position:
                continue
            argument = node.args[position]
            formatted = {id(c) for f in ast.walk(argument) if isinstance(f, ast.JoinedStr)
                         for c in ast.walk(f)}
            for sub in ast.walk(argument):
                # Codes (no space) and f-strings are not messages to translate.
                if (isinstance(sub, ast.Constant) and isinstance(sub.value, str) and " " in sub.value
                        and id(sub) not in formatted):
                    found.add(sub.value)
    return found


def test_every_message_has_a_chinese_translation():
    translated: set[tuple[str | None, str]] = set()
    files = sorted((LOCALE / "zh_CN" / "LC_MESSAGES").glob("*.po"))
    assert LOCALE / "zh_CN" / "LC_MESSAGES" / "messages.po" in files
    for path in files:
        with path.open("rb") as fh:
            catalog = read_po(fh)
        translated |= {(m.context, m.id) for m in catalog if m.id and m.string and not m.fuzzy}
        assert "Content-Type: text/plain; charset=UTF-8" in path.read_text(encoding="utf-8"), path.name
    wanted = template_msgids() | {(None, m) for m in page_msgids() | domain_error_msgids()}
    assert len(wanted) > 100
    assert sorted(wanted - translated) == []


def test_english_catalog_parses():
    with (LOCALE / "en" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        assert str(read_po(fh).locale) == "en"
