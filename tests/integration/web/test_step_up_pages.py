"""The pages of a sensitive change lead a session that has not proved the password lately to
"confirm it is you" (/account/step-up), which returns to where the user was (issue 15)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from credentials_testing import WRONG_PASSWORD, send_code
from passport.accounts.models import TOTP_SECRET, Account
from passport.sessions import service as sessions
from passport_testing import STRONG_PASSWORD, csrf, login_form, register_account

STEP_UP = "/account/step-up"


def code_signed_in(client, rt) -> dict:
    """A browser signed in by an SMS code alone."""
    done = register_account(client, rt)
    client.cookies.clear()
    client.get("/login?method=sms")
    code = send_code(client, rt, done["phone"], "login")
    answer = client.post("/login", data={"csrf_token": csrf(client), "method": "sms", "phone": done["phone"],
                                         "code": code}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return done


def next_of(answer) -> str:
    location = urlsplit(answer.headers["location"])
    assert location.path == STEP_UP, answer.headers["location"]
    return parse_qs(location.query)["next"][0]


def post(client, url: str, **data):
    return client.post(url, data={"csrf_token": csrf(client)} | data, follow_redirects=False)


@pytest.mark.parametrize("page", ["/account/totp", "/account/email", "/account/export", "/account/totp?done=enabled"])
def test_a_sensitive_page_leads_to_the_confirm_page_and_back(client, rt, page):
    code_signed_in(client, rt)
    answer = client.get(page, follow_redirects=False)
    assert answer.status_code == 303
    assert next_of(answer) == page


@pytest.mark.parametrize(("form", "page"), [
    ("/account/totp/enroll", "/account/totp"), ("/account/totp/confirm", "/account/totp"),
    ("/account/totp/disable", "/account/totp"), ("/account/email", "/account/email"),
    ("/account/export/code", "/account/export"), ("/account/export", "/account/export"),
])
def test_a_sensitive_form_posted_without_a_step_up_returns_to_its_page(client, rt, form, page):
    done = code_signed_in(client, rt)
    client.get("/account")  # the CSRF cookie
    answer = post(client, form, code="123456", email="someone@example.com")
    assert answer.status_code == 303 and next_of(answer) == page
    assert client.get("/api/v1/me/totp", headers={"Authorization": f"Bearer {done['session']['token']}"}
                      ).json()["pending"] is False


def test_confirming_the_password_rotates_the_cookie_and_goes_back(client, rt):
    code_signed_in(client, rt)
    assert next_of(client.get("/account/totp", follow_redirects=False)) == "/account/totp"
    # The forms that carry the password themselves need no confirm page: that check is one.
    for page in ("/account/recovery-key", "/account/phone", "/account/cancellation", "/account/password"):
        assert client.get(page, follow_redirects=False).status_code == 200, page
    old = client.cookies.get("passport_session")
    page = client.get(f"{STEP_UP}?next=/account/totp")
    assert page.status_code == 200 and 'id="form-step-up"' in page.text
    assert 'name="next" value="/account/totp"' in page.text
    assert "验证是你本人" in page.text
    wrong = post(client, STEP_UP, password=WRONG_PASSWORD, next="/account/totp")
    assert wrong.status_code == 400 and "密码错误。" in wrong.text
    assert client.cookies.get("passport_session") == old
    answer = post(client, STEP_UP, password=STRONG_PASSWORD, next="/account/totp")
    assert answer.status_code == 303 and answer.headers["location"] == "/account/totp"
    new = client.cookies.get("passport_session")
    assert new != old
    assert sessions.lookup(rt, old)[0] is None and sessions.lookup(rt, new)[0] is not None
    settings = client.get("/account/totp", follow_redirects=False)
    assert settings.status_code == 200 and 'action="/account/totp/enroll"' in settings.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "", "account"])
def test_the_confirm_page_returns_only_to_this_site(client, rt, target):
    code_signed_in(client, rt)
    client.get(f"{STEP_UP}?next={target}")
    answer = post(client, STEP_UP, password=STRONG_PASSWORD, next=target)
    assert answer.status_code == 303 and answer.headers["location"] == "/account"


def test_a_password_login_needs_no_confirm_page_until_the_window_ends(client, rt):
    done = register_account(client, rt)
    assert login_form(client, done["phone"], done["password"]).status_code == 303
    assert client.get("/account/email", follow_redirects=False).status_code == 200
    rt.clock.advance(minutes=rt.settings.step_up_minutes, seconds=1)
    assert next_of(client.get("/account/email", follow_redirects=False)) == "/account/email"


def test_the_confirm_page_offers_the_authenticator_when_it_is_on(client, rt):
    done = register_account(client, rt)
    assert login_form(client, done["phone"], done["password"]).status_code == 303
    with rt.db.write() as db:  # two-step verification on (its own flow has its own tests)
        account = db.get(Account, done["account"]["id"])
        account.totp_secret_enc = rt.keys.cipher.encrypt(pyotp.random_base32(), TOTP_SECRET, account.id)
        account.totp_enabled_at = rt.clock.now()
    sessions.forget_sessions(rt, account_id=done["account"]["id"])
    page = client.get(f"{STEP_UP}?next=/account/totp", headers={"Accept-Language": "en"})
    assert 'id="form-step-up-totp"' in page.text and "Use a code from your authenticator app instead" in page.text
    wrong = post(client, STEP_UP, totp="000000", next="/account/totp")
    assert wrong.status_code == 400 and 'id="step-up-totp-error"' in wrong.text
