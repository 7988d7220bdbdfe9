"""Changed terms in a browser: announced in the banner, then in force; every page leads to the
interstitial, which shows the new text and what changed; accepting leads back (COMPLIANCE A3)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete

from passport.agreements import service
from passport.agreements.models import AgreementVersion, Consent
from passport.audit.service import Origin
from passport_testing import bearer, register_account

pytestmark = pytest.mark.browser

OLD = "# 用户服务协议\n\n第一条 欢迎使用奥集能。\n\n第二条 我们保存您的登录记录六个月。\n\n第三条 争议由杭州仲裁。\n"
NEW = "# 用户服务协议\n\n第一条 欢迎使用奥集能。\n\n第二条 我们保存您的登录记录一年。\n\n第三条 争议由杭州仲裁。\n"


@pytest.fixture()
def terms_2(rt):
    """browser-terms 1.0 now; the returned call publishes 2.0, effective in a minute and asking for
    re-consent. Both are removed afterwards, so the rest of the suite is not gated."""
    rt.clock.advance(seconds=1)
    service.publish(rt, Origin(channel="cli"), kind="browser-terms", version="1.0", title="浏览器条款", body=OLD)
    yield lambda: service.publish(rt, Origin(channel="cli"), kind="browser-terms", version="2.0", title="浏览器条款",
                                  body=NEW, effective_at=rt.clock.now() + timedelta(minutes=1), requires_reconsent=True)
    with rt.db.write() as db:
        db.execute(delete(Consent).where(Consent.kind == "browser-terms"))
        db.execute(delete(AgreementVersion).where(AgreementVersion.kind == "browser-terms"))
    service._versions_cache.clear()


def test_reconsent_interstitial_shows_the_diff_and_accepting_leads_back(page, live_server, rt, terms_2):
    with httpx.Client(base_url=live_server) as http:
        done = register_account(http, rt, nickname="再次同意")
        accepted = http.post("/api/v1/me/consents", json={"kind": "browser-terms", "version": "1.0"},
                             headers=bearer(done["session"]["token"]))
        assert accepted.status_code == 201, accepted.text
    terms_2()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{live_server}/login")
    page.fill("#form-password input[name=login]", done["phone"])
    page.fill("#form-password input[name=password]", done["password"])
    page.click("#form-password #submit")
    page.wait_for_url(re.compile(r".*/account$"))  # announced, not yet in force
    assert "浏览器条款" in page.inner_text(".agreement-banner")

    rt.clock.advance(minutes=2)
    page.goto(f"{live_server}/account/password")
    page.wait_for_url(re.compile(r".*/consent\?next=/account/password$"))
    assert page.inner_text("#consent-title") == "我们更新了协议"
    assert page.inner_text("#diff-browser-terms del").strip() == "第二条 我们保存您的登录记录六个月。"
    assert page.inner_text("#diff-browser-terms ins").strip() == "第二条 我们保存您的登录记录一年。"
    assert "##" not in page.inner_text("#diff-browser-terms")  # rendered text, not Markdown source
    # Deleted text is struck through by the stylesheet, so the change reads without colour too.
    style = page.eval_on_selector("#diff-browser-terms del", "e => getComputedStyle(e).textDecorationLine")
    assert "line-through" in style
    assert page.get_attribute("#consent-cancel", "href") == "/account/cancellation"
    assert "第二条 我们保存您的登录记录一年。" in page.inner_text("#consent-browser-terms .prose")

    page.click("#consent-accept button")
    page.wait_for_url(re.compile(r".*/account/password$"))
    page.goto(f"{live_server}/account/consents")
    assert page.locator('#ledger [data-kind="browser-terms"][data-version="2.0"]').count() == 1
    assert page.locator('#ledger [data-kind="browser-terms"][data-version="1.0"]').count() == 1

    # One click withdraws marketing consent and the account stays usable.
    page.click("#purpose-marketing")
    page.wait_for_url(re.compile(r".*done=granted$"))
    page.click("#purpose-marketing")
    page.wait_for_url(re.compile(r".*done=withdrawn$"))
    page.goto(f"{live_server}/account")
    assert page.inner_text("#account-nickname") == "再次同意"
    assert not [e for e in errors if "Content Security Policy" in e], errors
