"""Passwordless sign-in in Chromium (issue 21): QR-code login with two browser contexts (one signed in
approves, the other gets its own session), rejected, expired and reused codes, a frozen account that
cannot approve; passkeys with Chromium's virtual authenticator (CDP WebAuthn): register, sign in
usernameless, sign in after entering the phone, remove.

The service runs with PASSPORT_BASE_URL at http://localhost:<port>: a passkey's relying party must be
a host name, and localhost is one browsers accept without TLS."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from passport.accounts import service as accounts
from passport.audit.models import AuditEvent
from passport_testing import register_account

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("PASSPORT_SHOTS_DIR")


@pytest.fixture()
def site(live_server, rt, monkeypatch) -> str:
    base = live_server.replace("127.0.0.1", "localhost")
    monkeypatch.setattr(rt.settings, "base_url", base)
    return base


def shot(page, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def signed_in(browser, site: str, account: dict, **context):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", **context)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{site}/login")
    page.fill("#form-password input[name=login]", account["phone"])
    page.fill("#form-password input[name=password]", account["password"])
    page.click("#form-password #submit")
    page.wait_for_url(re.compile(r".*/account$"))
    return ctx, page


def new_code(page, site: str) -> str:
    """Open the QR tab and return the path the QR code holds (/qr/<code>)."""
    page.goto(f"{site}/login?method=qr")
    page.wait_for_selector("#qr-image:not([hidden])")
    assert page.eval_on_selector("#qr-image", "img => img.complete && img.naturalWidth > 0")
    payload = page.get_attribute("#qr-image", "data-payload")
    assert payload.startswith(f"{site}/qr/")
    return urlsplit(payload).path


def test_qr_login_with_two_browsers(browser, site, rt):
    with httpx.Client(base_url=site) as http:
        owner = register_account(http, rt, nickname="扫码用户")
    phone_ctx, phone = signed_in(browser, site, owner)
    pc_ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    pc = pc_ctx.new_page()
    pc.set_default_timeout(20_000)
    try:
        # Password and SMS login stay on the page beside the QR tab.
        pc.goto(f"{site}/login")
        assert pc.is_visible("#form-password") and pc.is_visible("#tab-sms") and pc.is_visible("#tab-qr")
        pc.click("#tab-qr")
        pc.wait_for_selector("#qr-image:not([hidden])")
        assert pc.inner_text("#qr-status") == "等待扫码…"
        shot(pc, "login-qr-1280-zh")
        path = urlsplit(pc.get_attribute("#qr-image", "data-payload")).path

        phone.goto(f"{site}{path}")
        assert "Chrome on Linux" in phone.inner_text("#qr-device")
        shot(phone, "qr-approve-390-zh")
        pc.wait_for_selector("#qr-status[data-state=scanned]")
        phone.click("#qr-approve")
        phone.wait_for_selector("#qr-outcome")
        pc.wait_for_url(re.compile(r".*/account$"))
        assert pc.inner_text("#account-nickname") == "扫码用户"
        pc.goto(f"{site}/account/devices")
        assert "扫码登录" in pc.inner_text("#devices")

        # Reused: the code that logged the computer in cannot be approved again.
        phone.goto(f"{site}{path}")
        assert "已被使用" in phone.inner_text(".alert-error")
        assert not phone.is_visible("#qr-approve")

        # Rejected: the waiting browser is told, and offered a new code.
        waiting_ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        waiting = waiting_ctx.new_page()
        waiting.set_default_timeout(20_000)
        path = new_code(waiting, site)
        phone.goto(f"{site}{path}")
        phone.click("#qr-reject")
        phone.wait_for_selector("#qr-outcome")
        waiting.wait_for_selector("#qr-status[data-state=rejected]")
        assert waiting.is_visible("#qr-renew") and "qr-dead" in waiting.get_attribute("#qr-image", "class")
        shot(waiting, "login-qr-rejected-390-zh")

        # Expired: after two minutes the page says so; a new code replaces it.
        waiting.click("#qr-renew")
        waiting.wait_for_selector("#qr-status[data-state=waiting]")
        expired_path = urlsplit(waiting.get_attribute("#qr-image", "data-payload")).path
        assert expired_path != path
        rt.clock.advance(seconds=125)
        waiting.wait_for_selector("#qr-status[data-state=expired]")
        assert "已过期" in waiting.inner_text("#qr-status") and waiting.is_visible("#qr-renew")
        phone.goto(f"{site}{expired_path}")
        assert "已过期" in phone.inner_text(".alert-error")

        # A frozen account cannot approve: its session ends, the waiting browser stays signed out.
        waiting.click("#qr-renew")
        waiting.wait_for_selector("#qr-status[data-state=waiting]")
        path = urlsplit(waiting.get_attribute("#qr-image", "data-payload")).path
        with rt.db.write() as db:
            accounts.set_status(db, owner["account"]["id"], "frozen", expected="active", now=rt.clock.now())
        rt.sessions_cache.drop(lambda row: True)
        phone.goto(f"{site}{path}")
        phone.wait_for_url(re.compile(r".*/login(\?.*)?$"))  # with ?next= (issue 20)
        waiting.wait_for_timeout(1500)
        assert waiting.get_attribute("#qr-status", "data-state") == "waiting"
        waiting_ctx.close()
    finally:
        phone_ctx.close()
        pc_ctx.close()


def virtual_authenticator(ctx, page):
    cdp = ctx.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, found["authenticatorId"]


def test_passkeys_register_sign_in_and_remove(browser, site, rt):
    with httpx.Client(base_url=site) as http:
        owner = register_account(http, rt, nickname="通行密钥用户")
    ctx, page = signed_in(browser, site, owner)
    try:
        cdp, authenticator = virtual_authenticator(ctx, page)
        page.goto(f"{site}/account")
        page.click("#link-passkeys")
        page.wait_for_url(re.compile(r".*/account/passkeys$"))
        assert page.is_visible("#passkeys-empty")
        page.fill("#passkey-name", "测试手机")
        page.click("#passkey-add")
        page.wait_for_url(re.compile(r".*/account/passkeys\?done=added$"))
        assert page.inner_text("#passkeys .passkey-name") == "测试手机"
        assert "从未使用" in page.inner_text("#passkeys")
        shot(page, "passkeys-390-zh")
        stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
        assert len(stored) == 1 and stored[0]["isResidentCredential"]

        # Usernameless: the browser's picker (the virtual authenticator answers at once).
        page.click(".account-menu summary")  # log out sits in the account menu (issue 20)
        page.click("#logout")
        page.wait_for_url(re.compile(r".*/login.*"))
        page.click("#passkey-login")
        page.wait_for_url(re.compile(r".*/account$"))
        assert page.inner_text("#account-nickname") == "通行密钥用户"
        page.goto(f"{site}/account/devices")
        assert "通行密钥" in page.inner_text("#devices")

        # After the phone is entered: allowCredentials names this account's passkey.
        page.click(".account-menu summary")  # log out sits in the account menu (issue 20)
        page.click("#logout")
        page.wait_for_url(re.compile(r".*/login.*"))
        page.fill("#form-password input[name=login]", owner["phone"])
        page.click("#passkey-login-phone")
        page.wait_for_url(re.compile(r".*/account$"))

        # A cloned authenticator: the same key with a counter behind the service's (2): refused.
        page.click(".account-menu summary")  # log out sits in the account menu (issue 20)
        page.click("#logout")
        page.wait_for_url(re.compile(r".*/login.*"))
        original = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"][0]
        assert original["signCount"] >= 2

        def with_count(count: int) -> None:
            cdp.send("WebAuthn.removeCredential", {"authenticatorId": authenticator,
                                                   "credentialId": original["credentialId"]})
            cdp.send("WebAuthn.addCredential", {"authenticatorId": authenticator,
                                                "credential": original | {"signCount": count}})

        with_count(0)
        page.click("#passkey-login")
        page.wait_for_selector("#passkey-status.field-error")
        assert page.url.rstrip("/").endswith("/login")
        with rt.db.read() as db:
            regressed = db.scalars(select(AuditEvent.seq).where(
                AuditEvent.action == "passkey.sign_count_regressed",
                AuditEvent.subject_id == owner["account"]["id"])).all()
        assert len(regressed) == 1
        with_count(original["signCount"] + 5)  # the real authenticator, further on
        page.reload()
        page.click("#passkey-login")
        page.wait_for_url(re.compile(r".*/account$"))

        # Remove: it needs a step-up; the passkey session had one at login, now lapsed: confirm it is
        # you with the passkey itself on the step-up page, then remove.
        rt.clock.advance(minutes=11)
        page.goto(f"{site}/account/passkeys")
        assert "上次使用" in page.inner_text("#passkeys")
        page.click(".passkey-remove")
        page.wait_for_url(re.compile(r".*/account/step-up\?next=/account/passkeys$"))
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        shot(page, "step-up-passkey-390-zh-CN")
        page.click("#step-up-passkey")
        page.wait_for_url(re.compile(r".*/account/passkeys$"))
        page.click(".passkey-remove")
        page.wait_for_url(re.compile(r".*/account/passkeys\?done=removed$"))
        assert page.is_visible("#passkeys-empty")

        # The authenticator still holds the key, but the service no longer knows it.
        page.click(".account-menu summary")  # log out sits in the account menu (issue 20)
        page.click("#logout")
        page.wait_for_url(re.compile(r".*/login.*"))
        page.click("#passkey-login")
        page.wait_for_selector("#passkey-status.field-error")
        assert page.url.rstrip("/").endswith("/login")
    finally:
        ctx.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_pages_fit_phones_and_desktops(browser, site, rt, lang):
    """The QR tab, the approval page and the passkeys page in both languages at 390 and 1280 px: no
    horizontal overflow (screenshots when PASSPORT_SHOTS_DIR is set)."""
    with httpx.Client(base_url=site) as http:
        owner = register_account(http, rt, nickname="布局")
    for width, height in ((390, 844), (1280, 800)):
        ctx, page = signed_in(browser, site, owner)
        waiting_ctx = browser.new_context(viewport={"width": width, "height": height}, locale=lang)
        waiting = waiting_ctx.new_page()
        try:
            page.set_viewport_size({"width": width, "height": height})
            virtual_authenticator(ctx, page)
            page.goto(f"{site}/account/passkeys?lang={lang}")
            page.click("#passkey-add")
            page.wait_for_url(re.compile(r".*/account/passkeys\?done=added$"))
            waiting.goto(f"{site}/login?method=qr&lang={lang}")
            waiting.wait_for_selector("#qr-image:not([hidden])")
            path = urlsplit(waiting.get_attribute("#qr-image", "data-payload")).path
            page.goto(f"{site}{path}?lang={lang}")
            pages = {"login-qr": waiting, "qr-approve": page}
            for name, tab in pages.items():
                shot(tab, f"{name}-{width}-{lang}")
                assert tab.evaluate("() => document.documentElement.scrollWidth") <= width, name
            for target in ("/account/passkeys", "/account/devices", "/login"):
                tab = page if target != "/login" else waiting
                tab.goto(f"{site}{target}?lang={lang}")
                assert tab.evaluate("() => document.documentElement.scrollWidth") <= width, target
                shot(tab, f"{target.strip('/').replace('/', '-')}-{width}-{lang}")
        finally:
            ctx.close()
            waiting_ctx.close()


def test_staff_log_in_with_a_passkey_instead_of_the_code(browser, site, rt):
    import pyotp

    from passport_testing import make_staff

    staff = make_staff(rt, "auditor")
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    try:
        virtual_authenticator(ctx, page)
        page.goto(f"{site}/admin/login")
        page.fill("#admin-login", staff["login"])
        page.fill("#admin-password", staff["password"])
        page.fill("#admin-totp", pyotp.TOTP(staff["totp_secret"]).at(rt.clock.now()))
        page.click("#form-admin-login #submit")
        page.wait_for_url(re.compile(r".*/admin$"))
        page.click("#admin-passkeys-link")
        page.wait_for_url(re.compile(r".*/admin/passkeys$"))
        page.fill("#passkey-name", "安全密钥")
        page.click("#passkey-add")
        page.wait_for_url(re.compile(r".*/admin/passkeys\?done=added$"))
        assert page.inner_text("#passkeys .passkey-name") == "安全密钥"
        shot(page, "admin-passkeys-1280-zh-CN")

        page.click("#admin-logout")
        page.wait_for_url(re.compile(r".*/admin/login.*"))
        page.fill("#admin-login", staff["login"])
        page.fill("#admin-password", staff["password"])
        page.click("#admin-passkey-login")  # no code typed
        page.wait_for_url(re.compile(r".*/admin$"))
        assert staff["login"] in page.inner_text(".admin-who")

        # A wrong password with the right passkey opens nothing.
        page.click("#admin-logout")
        page.wait_for_url(re.compile(r".*/admin/login.*"))
        page.fill("#admin-login", staff["login"])
        page.fill("#admin-password", "Wrong!password-7x")
        page.click("#admin-passkey-login")
        page.wait_for_selector("#admin-passkey-status.field-error")
        assert "/admin/login" in page.url
    finally:
        ctx.close()
