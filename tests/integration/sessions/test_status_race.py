"""A login that races a status change (a cancellation finalised, a suspension) starts no session: the
account is read before the slow checks, so the session-starting write checks the status again."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import func, select, update

from passport.accounts import service as accounts
from passport.accounts.models import Account
from passport.audit.models import AuditEvent
from passport.credentials import totp
from passport.sessions import service as sessions
from passport.sessions.models import LoginSession
from passport_testing import bearer, last_code, register_account

SESSIONS = "/api/v1/sessions"
MFA = "/api/v1/sessions/mfa"


def set_status(rt, account_id: str, status: str) -> None:
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id).values(status=status))


def session_count(rt, account_id: str) -> int:
    with rt.db.read() as db:
        return db.scalar(select(func.count()).select_from(LoginSession).where(LoginSession.account_id == account_id))


def refusals(rt, account_id: str) -> list[str]:
    with rt.db.read() as db:
        return list(db.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == account_id,
                                                               AuditEvent.action == "login.refused")))


@pytest.mark.parametrize(("status", "http", "code"), [("cancelled", 401, "invalid_credentials"),
                                                      ("suspended", 403, "account_suspended")])
def test_password_login_racing_a_status_change_starts_no_session(client, rt, monkeypatch, status, http, code):
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    before = session_count(rt, account_id)
    verify, verify_async = rt.hasher.verify, rt.hasher.verify_async

    def verify_while_the_status_changes(hashed, password):
        set_status(rt, account_id, status)  # e.g. the worker finalises the cancellation meanwhile
        return verify(hashed, password)

    async def verify_async_while_the_status_changes(hashed, password):  # the API's path on PostgreSQL
        set_status(rt, account_id, status)
        return await verify_async(hashed, password)

    monkeypatch.setattr(rt.hasher, "verify", verify_while_the_status_changes)
    monkeypatch.setattr(rt.hasher, "verify_async", verify_async_while_the_status_changes)
    answer = client.post(SESSIONS, json={"login": done["phone"], "password": done["password"]})
    assert answer.status_code == http, answer.text
    assert answer.json()["code"] == code
    assert session_count(rt, account_id) == before
    assert refusals(rt, account_id) == ["login.refused"]


@pytest.mark.parametrize(("status", "http", "code"), [("cancelled", 401, "invalid_credentials"),
                                                      ("terminated", 403, "account_terminated")])
def test_code_login_racing_a_status_change_starts_no_session(client, rt, monkeypatch, status, http, code):
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    before = session_count(rt, account_id)
    rt.clock.advance(seconds=61)
    assert client.post("/api/v1/verification-codes", json={"to": done["phone"], "purpose": "login"}
                       ).status_code == 202
    find = accounts.find

    def find_then_change(db, target):
        row = find(db, target)  # read as it was; the status changes before the session starts
        if row is not None:
            db.execute(update(Account).where(Account.id == row.id).values(status=status))
        return row

    monkeypatch.setattr(sessions.accounts, "find", find_then_change)
    answer = client.post(SESSIONS, json={"phone": done["phone"], "code": last_code(rt, done["phone"], "login")})
    assert answer.status_code == http, answer.text
    assert answer.json()["code"] == code
    assert session_count(rt, account_id) == before


@pytest.mark.parametrize(("status", "http", "code"), [("cancelled", 401, "invalid_credentials"),
                                                      ("frozen", 403, "account_frozen")])
def test_second_step_racing_a_status_change_starts_no_session(client, rt, monkeypatch, status, http, code):
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    headers = bearer(done["session"]["token"])
    secret = client.post("/api/v1/me/totp", headers=headers).json()["secret"]
    assert client.post("/api/v1/me/totp/confirm", json={"code": pyotp.TOTP(secret).at(rt.clock.now())},
                       headers=headers).status_code == 204
    rt.clock.advance(seconds=30)
    first = client.post(SESSIONS, json={"login": done["phone"], "password": done["password"]})
    assert first.status_code == 401 and first.json()["code"] == "mfa_required", first.text
    before = session_count(rt, account_id)
    check_code = totp.check_code

    def check_while_the_status_changes(*args, **kwargs):
        set_status(rt, account_id, status)
        return check_code(*args, **kwargs)

    monkeypatch.setattr(sessions.totp, "check_code", check_while_the_status_changes)
    answer = client.post(MFA, json={"mfa_token": first.json()["mfa_token"],
                                    "code": pyotp.TOTP(secret).at(rt.clock.now())})
    assert answer.status_code == http, answer.text
    assert answer.json()["code"] == code
    assert session_count(rt, account_id) == before
    assert refusals(rt, account_id) == ["login.refused"]
