"""Step-up (issue 15): sensitive changes need a recent password (or authenticator) proof in the
session, not just a session; POST /me/step-up gives one and rotates the token."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select

from credentials_testing import WRONG_PASSWORD, account_row, send_code
from passport.audit.models import AuditEvent
from passport.sessions import service as sessions
from passport_testing import STRONG_PASSWORD, bearer, login, login_with_code, register_account, step_up

STEP_UP = "/api/v1/me/step-up"
TOTP = "/api/v1/me/totp"
# Every change that needs a step-up, with a body that would pass validation.
GUARDED = [
    ("POST", TOTP, None),
    ("POST", f"{TOTP}/confirm", {"code": "123456"}),
    ("DELETE", TOTP, {"code": "123456"}),
    ("POST", "/api/v1/me/email", {"email": "someone@example.com"}),
    ("POST", "/api/v1/me/export", {"code": "123456"}),
    ("GET", "/api/v1/me/export", None),
]


def code_session(client, rt, done: dict) -> str:
    """A session opened by an SMS login code alone: it proves the phone, not the password."""
    answer = login_with_code(client, done["phone"], send_code(client, rt, done["phone"], "login"))
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def events(rt, account_id: str, action: str) -> list[tuple[str, dict]]:
    with rt.db.read() as db:
        rows = db.execute(select(AuditEvent.result, AuditEvent.details)
                          .where(AuditEvent.subject_id == account_id, AuditEvent.action == action)
                          .order_by(AuditEvent.seq)).all()
    return [(r.result, {k: v for k, v in json.loads(r.details).items() if k != "channel"}) for r in rows]


def totp_code(rt, secret: str, **shift: float) -> str:
    return pyotp.TOTP(secret).at(rt.clock.now() + timedelta(**shift))


def mid_step(rt) -> None:
    rt.clock.advance(seconds=(45 - rt.clock.now().timestamp() % 30) % 30)


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=[f"{m} {p}" for m, p, _ in GUARDED])
def test_each_sensitive_change_needs_a_step_up(client, rt, method, path, body):
    done = register_account(client, rt)
    token = code_session(client, rt, done)
    headers = bearer(token, **{"X-Verification-Code": "123456"})
    refused = client.request(method, path, json=body, headers=headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "step_up_required"
    assert refused.json()["methods"] == ["password"]
    headers["Authorization"] = f"Bearer {step_up(client, token)}"
    passed = client.request(method, path, json=body, headers=headers)
    assert passed.status_code != 403, passed.text  # on to the change's own checks


def test_totp_cannot_be_turned_on_with_a_session_alone(client, rt):
    done = register_account(client, rt)
    token = code_session(client, rt, done)
    assert client.post(TOTP, headers=bearer(token)).json()["code"] == "step_up_required"
    assert account_row(rt, done["account"]["id"]).totp_secret_enc is None
    # The calls that carry the password themselves need no step-up: that check is one.
    assert client.post("/api/v1/me/recovery-key", json={"password": STRONG_PASSWORD},
                       headers=bearer(token)).status_code == 201

    answer = client.post(STEP_UP, json={"password": STRONG_PASSWORD}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    new = answer.json()
    assert new["token"] != token and new["expires_at"]
    until = datetime.fromisoformat(new["stepped_up_until"].replace("Z", "+00:00"))
    assert timedelta(0) <= rt.clock.now() + timedelta(minutes=10) - until < timedelta(seconds=5)
    secret = client.post(TOTP, headers=bearer(new["token"])).json()["secret"]
    confirmed = client.post(f"{TOTP}/confirm", json={"code": totp_code(rt, secret)}, headers=bearer(new["token"]))
    assert confirmed.status_code == 204, confirmed.text
    assert events(rt, done["account"]["id"], "session.stepped_up") == [
        ("ok", {"by": "password", "session_rotated": True})]


def test_step_up_rotates_the_token(client, rt):
    done = register_account(client, rt)
    old = code_session(client, rt, done)
    new = step_up(client, old)
    assert client.get("/api/v1/me", headers=bearer(old)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(new)).status_code == 200
    assert sessions.lookup(rt, old)[0] is None
    principal = sessions.lookup(rt, new)[0]
    assert principal.method == "sms_code"  # the same client's session, carried on
    assert timedelta(0) <= rt.clock.now() - principal.stepped_up_at < timedelta(seconds=5)


def test_step_up_with_the_cookie_sets_the_new_cookie(client, rt):
    done = register_account(client, rt)
    old = code_session(client, rt, done)
    client.cookies.set("passport_session", old)
    client.cookies.set("passport_csrf", "csrf-value")
    answer = client.post(STEP_UP, json={"password": STRONG_PASSWORD}, headers={"X-CSRF-Token": "csrf-value"})
    assert answer.status_code == 200, answer.text
    assert answer.cookies.get("passport_session") == answer.json()["token"] != old
    # The test's jar keeps the hand-set cookie beside the answer's: keep only the new one, as a browser would.
    client.cookies.clear()
    client.cookies.set("passport_session", answer.json()["token"])
    client.cookies.set("passport_csrf", "csrf-value")
    assert client.post(TOTP, headers={"X-CSRF-Token": "csrf-value"}).status_code == 200


def test_sms_code_login_is_no_step_up_and_a_password_login_is(client, rt):
    done = register_account(client, rt)
    assert client.post(TOTP, headers=bearer(code_session(client, rt, done))).status_code == 403
    by_password = login(client, done["phone"], status=201).json()["token"]
    assert client.post(TOTP, headers=bearer(by_password)).status_code == 200


def test_the_step_up_lapses_after_the_window(client, rt, monkeypatch):
    done = register_account(client, rt)
    token = login(client, done["phone"], status=201).json()["token"]
    rt.clock.advance(minutes=10, seconds=-5)
    assert client.post(TOTP, headers=bearer(token)).status_code == 200
    rt.clock.advance(seconds=5)
    assert client.post(TOTP, headers=bearer(token)).json()["code"] == "step_up_required"
    monkeypatch.setattr(rt.settings, "step_up_minutes", 30)  # PASSPORT_STEP_UP_MINUTES
    assert client.post(TOTP, headers=bearer(token)).status_code == 200


def test_a_wrong_password_answers_like_the_other_password_checks_and_changes_nothing(client, rt):
    done = register_account(client, rt)
    token = code_session(client, rt, done)
    wrong = client.post(STEP_UP, json={"password": WRONG_PASSWORD}, headers=bearer(token))
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_password"
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200  # not rotated
    assert client.post(TOTP, headers=bearer(token)).status_code == 403
    assert events(rt, done["account"]["id"], "session.step_up") == [
        ("failed", {"reason": "wrong_password", "failures": 1})]


def test_wrong_step_ups_count_toward_the_login_lock(client, rt):
    done = register_account(client, rt)
    token = code_session(client, rt, done)
    for _ in range(rt.settings.login_max_failures):
        assert client.post(STEP_UP, json={"password": WRONG_PASSWORD}, headers=bearer(token)).status_code == 400
    assert account_row(rt, done["account"]["id"]).locked_until is not None
    assert login(client, done["phone"]).status_code == 401  # the right password: locked
    # While locked, the right password answers like a wrong one and counts nothing.
    right = client.post(STEP_UP, json={"password": STRONG_PASSWORD}, headers=bearer(token))
    assert right.status_code == 400 and right.json()["code"] == "invalid_password"
    recorded = events(rt, done["account"]["id"], "session.step_up")
    assert [r["failures"] for _result, r in recorded[:-1]] == [1, 2, 3, 4, 5]
    assert recorded[-1] == ("denied", {"reason": "locked"})
    assert len(events(rt, done["account"]["id"], "login.locked")) == 1


def test_a_right_step_up_clears_the_failure_count(client, rt):
    done = register_account(client, rt)
    token = code_session(client, rt, done)
    for _ in range(rt.settings.login_max_failures - 1):
        client.post(STEP_UP, json={"password": WRONG_PASSWORD}, headers=bearer(token))
    token = step_up(client, token)
    assert account_row(rt, done["account"]["id"]).failed_logins == 0


def test_step_up_checks_share_the_hourly_password_check_budget(client, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "password_check_per_hour", 2)
    monkeypatch.setattr(rt.settings, "login_max_failures", 100)
    done = register_account(client, rt)
    token = code_session(client, rt, done)
    for _ in range(2):
        assert client.post(STEP_UP, json={"password": WRONG_PASSWORD}, headers=bearer(token)).status_code == 400
    limited = client.post(STEP_UP, json={"password": STRONG_PASSWORD}, headers=bearer(token))
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"


def test_step_up_by_authenticator_code(client, rt):
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])  # a registration session: the password was just chosen
    secret = client.post(TOTP, headers=headers).json()["secret"]
    mid_step(rt)
    assert client.post(f"{TOTP}/confirm", json={"code": totp_code(rt, secret)}, headers=headers).status_code == 204
    rt.clock.advance(minutes=11)
    token = done["session"]["token"]
    sessions.forget_sessions(rt, account_id=done["account"]["id"])  # the row cached before TOTP was on
    refused = client.request("DELETE", TOTP, json={"code": totp_code(rt, secret)}, headers=bearer(token))
    assert refused.status_code == 403 and refused.json()["methods"] == ["password", "totp"]
    code = totp_code(rt, secret)
    answer = client.post(STEP_UP, json={"code": code}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    replayed = client.post(STEP_UP, json={"code": code}, headers=bearer(token))
    assert replayed.status_code == 400 and replayed.json()["code"] == "invalid_totp"
    off = client.request("DELETE", TOTP, json={"code": totp_code(rt, secret, seconds=30)}, headers=bearer(token))
    assert off.status_code == 204, off.text
    assert [d["by"] for r, d in events(rt, done["account"]["id"], "session.stepped_up") if r == "ok"] == ["totp"]


def test_login_with_an_authenticator_code_is_a_step_up_and_the_recovery_key_after_an_sms_code_is_not(client, rt):
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    secret = client.post(TOTP, headers=headers).json()["secret"]
    mid_step(rt)
    client.post(f"{TOTP}/confirm", json={"code": totp_code(rt, secret)}, headers=headers)

    def sms_then(**second) -> str:
        first = login_with_code(client, done["phone"], send_code(client, rt, done["phone"], "login"))
        assert first.json()["code"] == "mfa_required"
        second = {name: value() if callable(value) else value for name, value in second.items()}
        answer = client.post("/api/v1/sessions/mfa", json={"mfa_token": first.json()["mfa_token"]} | second)
        assert answer.status_code == 201, answer.text
        return answer.json()["token"]

    by_code = sms_then(code=lambda: totp_code(rt, secret))
    assert client.post("/api/v1/me/email", json={"email": "a@example.com"}, headers=bearer(by_code)).status_code == 202
    by_key = sms_then(recovery_key=done["recovery_key"])
    assert client.post("/api/v1/me/email", json={"email": "a@example.com"}, headers=bearer(by_key)).status_code == 403


def test_a_step_up_needs_exactly_one_proof(client, rt):
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    assert client.post(STEP_UP, json={}, headers=headers).status_code == 422
    both = {"password": STRONG_PASSWORD, "code": "123456"}
    assert client.post(STEP_UP, json=both, headers=headers).status_code == 422
    no_totp = client.post(STEP_UP, json={"code": "123456"}, headers=headers)
    assert no_totp.status_code == 409 and no_totp.json()["code"] == "totp_not_enabled"
    assert client.post(STEP_UP, json={"password": STRONG_PASSWORD}).status_code == 401
