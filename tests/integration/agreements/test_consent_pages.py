"""Pages: the re-consent interstitial with its diff, the user's ledger and purposes, the banner."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passport.agreements.models import PurposeConsent
from passport.web.http import CSRF_COOKIE, SESSION_COOKIE
from passport_testing import bearer, register_account

OLD = "# 用户服务协议\n\n第一条 欢迎使用。\n\n第二条 旧的条款。\n\n第三条 不变的条款。\n"
NEW = "# 用户服务协议\n\n第一条 欢迎使用。\n\n第二条 新的条款 <b>加粗</b>。\n\n第三条 不变的条款。\n"


@pytest.fixture()
def browser(app):
    with TestClient(app) as client:
        yield client


def signed_in(browser, rt) -> dict:
    done = register_account(browser, rt)
    browser.cookies.set(SESSION_COOKIE, done["session"]["token"])
    return done


def test_pages_redirect_to_the_interstitial_which_shows_the_diff_and_accepts(browser, rt, publish):
    publish("diff-terms", "1.0", body=OLD)
    done = signed_in(browser, rt)
    browser.post("/api/v1/me/consents", json={"kind": "diff-terms", "version": "1.0"},
                 headers=bearer(done["session"]["token"]))
    publish("diff-terms", "2.0", body=NEW, requires_reconsent=True, immediate=True)

    account = browser.get("/account", follow_redirects=False)
    assert account.status_code == 303
    assert account.headers["location"] == "/consent?next=/account"

    page = browser.get("/consent?next=/account&lang=en")
    assert page.status_code == 200
    assert 'id="consent-diff-terms"' in page.text
    diff = re.search(r'<div class="diff diff-rendered prose" id="diff-diff-terms">(.*?)\n  </div>', page.text,
                     re.S).group(1)
    # Rendered, not Markdown source: the heading is a heading, the changed paragraph is marked as such
    # with the old one struck through beside it, the unchanged ones are plain text.
    assert "<h1>用户服务协议</h1>" in diff and "# 用户服务协议" not in diff
    assert re.search(r'<ins class="diff-block diff-changed" data-label="Changed">'
                     r'<p>第二条 新的条款 &lt;b&gt;加粗&lt;/b&gt;。</p>', diff)
    assert re.search(r'<del class="diff-block diff-del" data-label="Removed"><p>第二条 旧的条款。</p>', diff)
    assert re.search(r'<div class="diff-block"><p>第三条 不变的条款。</p>', diff)
    assert "<b>加粗</b>" not in page.text  # raw HTML is text, in the diff and in the rendered document
    assert "What changed since version 1.0" in page.text
    assert 'href="/account/cancellation"' in page.text
    assert 'name="accept" value="diff-terms/2.0"' in page.text

    # Readable without accepting: the document pages and the ledger stay open.
    assert browser.get("/agreements/diff-terms", follow_redirects=False).status_code == 200
    assert browser.get("/account/consents", follow_redirects=False).status_code == 200

    expired = browser.post("/consent", data={"csrf_token": "wrong", "accept": "diff-terms/2.0", "next": "/account"})
    assert expired.status_code == 403
    accepted = browser.post("/consent", data={"csrf_token": browser.cookies.get(CSRF_COOKIE),
                                              "accept": "diff-terms/2.0", "next": "/account"},
                            follow_redirects=False)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/account"
    assert browser.get("/account", follow_redirects=False).status_code == 200
    ledger = browser.get("/account/consents").text
    assert 'data-kind="diff-terms" data-version="2.0"' in ledger
    assert 'data-kind="diff-terms" data-version="1.0"' in ledger
    # Nothing pending: the interstitial sends the user on.
    assert browser.get("/consent?next=/account", follow_redirects=False).headers["location"] == "/account"


def test_a_version_never_accepted_before_is_shown_in_full(browser, rt, publish):
    signed_in(browser, rt)
    publish("new-terms", "1.0", body="# New terms\n\nHello **world**.\n", requires_reconsent=True, immediate=True)
    page = browser.get("/consent")
    assert page.status_code == 200
    assert "<strong>world</strong>" in page.text and 'class="diff"' not in page.text


def test_the_interstitial_only_sends_users_back_to_this_site(browser, rt, publish):
    signed_in(browser, rt)
    publish("new-terms", "1.0", requires_reconsent=True, immediate=True)
    browser.get("/consent")
    answer = browser.post("/consent", data={"csrf_token": browser.cookies.get(CSRF_COOKIE),
                                            "accept": "new-terms/1.0", "next": "//evil.example/"},
                          follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/account"


def test_accepting_a_version_that_is_no_longer_current_shows_the_new_one(browser, rt, publish):
    signed_in(browser, rt)
    publish("new-terms", "1.0", requires_reconsent=True, immediate=True)
    browser.get("/consent")
    publish("new-terms", "1.1", requires_reconsent=True, immediate=True)
    answer = browser.post("/consent", data={"csrf_token": browser.cookies.get(CSRF_COOKIE),
                                            "accept": "new-terms/1.0", "next": "/account"})
    assert answer.status_code == 409
    assert 'name="accept" value="new-terms/1.1"' in answer.text


def test_the_ledger_page_withdraws_marketing_in_one_click(browser, rt):
    done = signed_in(browser, rt)
    page = browser.get("/account/consents?lang=en")
    assert page.status_code == 200
    assert "Agreements you accepted" in page.text and 'data-kind="user-agreement"' in page.text
    assert 'id="purpose-marketing"' in page.text and "Allow" in page.text
    csrf = browser.cookies.get(CSRF_COOKIE)

    allowed = browser.post("/account/consents/purposes/marketing", data={"csrf_token": csrf, "granted": "true"},
                           follow_redirects=False)
    assert allowed.headers["location"] == "/account/consents?done=granted"
    assert "Withdraw" in browser.get("/account/consents?lang=en").text
    withdrawn = browser.post("/account/consents/purposes/marketing", data={"csrf_token": csrf, "granted": "false"},
                             follow_redirects=False)
    assert withdrawn.headers["location"] == "/account/consents?done=withdrawn"
    assert "The core service is not affected." in browser.get("/account/consents?done=withdrawn&lang=en").text
    with rt.db.read() as db:
        states = db.scalars(select(PurposeConsent.granted).where(PurposeConsent.account_id == done["account"]["id"])
                            .order_by(PurposeConsent.id)).all()
    assert states == [True, False]
    assert browser.post("/account/consents/purposes/marketing",
                        data={"csrf_token": "bad", "granted": "true"}).status_code == 403
    assert browser.post("/account/consents/purposes/profiling",
                        data={"csrf_token": csrf, "granted": "true"}).status_code == 404


def test_the_account_page_links_the_ledger(browser, rt):
    signed_in(browser, rt)
    assert 'href="/account/consents"' in browser.get("/account").text


def test_signed_out_visitors_go_to_the_login_page(browser):
    for path in ("/consent", "/account/consents"):
        answer = browser.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].split("?")[0] == "/login", path


def test_a_coming_change_is_announced_in_the_banner(browser, rt, publish):
    publish("privacy-policy", "1.1", in_minutes=24 * 60)
    page = browser.get("/login?lang=en")
    banner = re.search(r'<div class="agreement-banner" role="status">(.*?)</div>', page.text, re.S).group(1)
    assert "The Privacy Policy changes on" in banner
    assert 'href="/agreements/privacy-policy/1.1"' in banner

    rt.clock.advance(days=2)
    page = browser.get("/login?lang=en")
    assert "The Privacy Policy was updated on" in page.text
    rt.clock.advance(days=40)
    assert "agreement-banner" not in browser.get("/login").text


def test_error_pages_render_while_a_reconsent_is_pending(browser, rt, publish):
    """Review finding 2: the gate's redirect raised while rendering an error page gave a 500."""
    signed_in(browser, rt)
    publish("new-terms", "1.0", requires_reconsent=True, immediate=True)
    missing = browser.get("/no-such-page", headers={"Accept": "text/html"}, follow_redirects=False)
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    too_big = browser.post("/account/profile", content=b"x" * (rt.settings.max_body_bytes + 1),
                           headers={"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"},
                           follow_redirects=False)
    assert too_big.status_code == 413 and "text/html" in too_big.headers["content-type"]
    # The gate still holds the pages themselves.
    assert browser.get("/account", follow_redirects=False).headers["location"] == "/consent?next=/account"


def test_a_pending_reconsent_never_stops_a_user_ending_a_session(browser, client, rt, publish):
    """Review finding 6: the page equivalents of DELETE /sessions/… are open, like the API."""
    done = signed_in(browser, rt)
    other = client.post("/api/v1/sessions", json={"login": done["phone"], "password": done["password"]})
    assert other.status_code == 201, other.text
    other_id, other_token = other.json()["id"], other.json()["token"]
    publish("new-terms", "1.0", requires_reconsent=True, immediate=True)

    browser.get("/consent")  # the CSRF cookie
    revoked = browser.post(f"/account/devices/{other_id}/revoke",
                           data={"csrf_token": browser.cookies.get(CSRF_COOKIE)}, follow_redirects=False)
    assert revoked.status_code == 303 and not revoked.headers["location"].startswith("/consent")
    assert client.get("/api/v1/me", headers=bearer(other_token)).status_code == 401
    assert browser.get("/account", follow_redirects=False).headers["location"] == "/consent?next=/account"
