"""Stolen-account freeze and unfreeze: COMPLIANCE C4 (freeze without logging in, every session revoked,
login blocked until recovery), API.md "Credentials"."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from credentials_testing import (
    CODES,
    NEW_PASSWORD,
    WRONG_KEY,
    account_row,
    assert_password_is,
    assert_password_unchanged,
    bearer,
    events,
    login,
    me,
    notices,
    reset_by_code,
    reset_by_key,
    send_code,
)
from passport.accounts.models import Account
from passport_testing import STRONG_PASSWORD, new_phone, register_account

FREEZES = "/api/v1/account-freezes"
UNFREEZES = "/api/v1/account-unfreezes"
FROZEN_TITLE = "该账号已冻结，请使用手机号和恢复密钥解冻。"


def freeze(client, phone: str, code: str):
    return client.post(FREEZES, json={"phone": phone, "code": code})


def unfreeze(client, phone: str, code: str, key: str, password: str = NEW_PASSWORD):
    return client.post(UNFREEZES, json={"phone": phone, "code": code, "recovery_key": key,
                                        "new_password": password})


def frozen_account(client, rt) -> dict:
    done = register_account(client, rt)
    assert freeze(client, done["phone"], send_code(client, rt, done["phone"], "freeze")).status_code == 204
    return done


def assert_frozen_login(client, rt, phone: str, password: str = STRONG_PASSWORD) -> None:
    by_password = login(client, phone, password)
    assert by_password.status_code == 403, by_password.text
    assert by_password.json()["code"] == "account_frozen"
    assert by_password.json()["title"] == FROZEN_TITLE
    by_code = client.post("/api/v1/sessions", json={"phone": phone, "code": send_code(client, rt, phone, "login")})
    assert by_code.status_code == 403 and by_code.json()["code"] == "account_frozen"


def assert_wrong_proof(answer) -> bytes:
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_code"
    return answer.content


# --- freeze ----------------------------------------------------------------------------------------

def test_freeze_by_sms_code_needs_no_login_and_ends_every_session(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    other = login(client, phone, STRONG_PASSWORD).json()["token"]
    code = send_code(client, rt, phone, "freeze")

    answer = freeze(client, phone, code)

    assert answer.status_code == 204, answer.text
    for token in (done["session"]["token"], other):
        assert me(client, token).status_code == 401
    assert account_row(rt, done["account"]["id"]).status == "frozen"
    assert_frozen_login(client, rt, phone)
    [event] = events(rt, done["account"]["id"], "account.frozen")
    assert event["method"] == "sms_code" and event["sessions_revoked"] == 2
    [notice] = notices(rt, phone, "account_frozen")
    assert "已于" in notice["text"] and "冻结" in notice["text"] and "/unfreeze" in notice["text"]


def test_the_signed_in_owner_can_freeze_the_account(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    other = login(client, phone, STRONG_PASSWORD).json()["token"]

    answer = client.post("/api/v1/me/freeze", headers=bearer(done["session"]["token"]))

    assert answer.status_code == 204, answer.text
    assert me(client, done["session"]["token"]).status_code == 401
    assert me(client, other).status_code == 401
    assert_frozen_login(client, rt, phone)
    [event] = events(rt, done["account"]["id"], "account.frozen")
    assert event["method"] == "session" and event["sessions_revoked"] == 2
    assert len(notices(rt, phone, "account_frozen")) == 1


def test_freeze_me_needs_a_session(client):
    assert client.post("/api/v1/me/freeze").status_code == 401


def test_freezing_twice_is_harmless(client, rt):
    done = frozen_account(client, rt)
    again = freeze(client, done["phone"], send_code(client, rt, done["phone"], "freeze"))
    assert again.status_code == 204
    assert account_row(rt, done["account"]["id"]).status == "frozen"


def test_a_wrong_code_and_an_unknown_number_get_the_same_answer(client, rt):
    done = register_account(client, rt)
    code = send_code(client, rt, done["phone"], "freeze")
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    known = assert_wrong_proof(freeze(client, done["phone"], wrong))
    unknown = assert_wrong_proof(freeze(client, new_phone(), wrong))

    assert known == unknown
    assert account_row(rt, done["account"]["id"]).status == "active"
    assert me(client, done["session"]["token"]).status_code == 200
    [failure] = events(rt, done["account"]["id"], "account.freeze")
    assert failure["result"] == "failed" and failure["reason"] == "invalid_code"
    # The wrong try was counted against the code, which still works.
    assert freeze(client, done["phone"], code).status_code == 204


@pytest.mark.parametrize("purpose", ["login", "reset_password", "unfreeze"])
def test_a_code_of_another_purpose_does_not_freeze(client, rt, purpose):
    done = register_account(client, rt)
    assert_wrong_proof(freeze(client, done["phone"], send_code(client, rt, done["phone"], purpose)))
    assert account_row(rt, done["account"]["id"]).status == "active"


def test_codes_for_freezing_are_only_delivered_to_numbers_with_an_account(client, rt):
    unknown = new_phone()
    for purpose in ("freeze", "unfreeze"):
        rt.clock.advance(seconds=61)
        answer = client.post(CODES, json={"to": unknown, "purpose": purpose})
        assert answer.status_code == 202 and answer.json() == {"expires_in": 300, "resend_after": 60}
        assert not notices(rt, unknown, purpose)


@pytest.mark.parametrize("status", ["suspended", "restricted"])
def test_an_account_the_platform_restricted_is_not_frozen_but_its_sessions_end(client, rt, status):
    done = register_account(client, rt)
    code = send_code(client, rt, done["phone"], "freeze")
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == done["account"]["id"])
                   .values(status=status, status_reason="违反用户协议"))

    answer = freeze(client, done["phone"], code)

    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "account_not_freezable"
    row = account_row(rt, done["account"]["id"])
    assert row.status == status and row.status_reason == "违反用户协议"
    assert me(client, done["session"]["token"]).status_code == 401
    [event] = events(rt, done["account"]["id"], "account.freeze")
    assert event["result"] == "denied" and event["status"] == status


# --- unfreeze --------------------------------------------------------------------------------------

def test_unfreeze_with_code_and_recovery_key_sets_the_new_password(client, rt):
    done = frozen_account(client, rt)
    phone = done["phone"]
    code = send_code(client, rt, phone, "unfreeze")

    answer = unfreeze(client, phone, code, done["recovery_key"])

    assert answer.status_code == 204, answer.text
    row = account_row(rt, done["account"]["id"])
    assert row.status == "active" and row.status_reason is None
    assert_password_is(client, phone, NEW_PASSWORD, not_=(STRONG_PASSWORD,))
    [event] = events(rt, done["account"]["id"], "account.unfrozen")
    assert event["result"] == "ok"
    [notice] = notices(rt, phone, "account_unfrozen")
    assert "解冻" in notice["text"]
    assert NEW_PASSWORD not in json.dumps(notice, ensure_ascii=False)
    assert done["recovery_key"] not in json.dumps(notice)
    # Nothing else rotates: the recovery key still works.
    assert reset_by_key(client, phone, done["recovery_key"], "Xq4!second-Osprey").status_code == 204


def test_unfreeze_lifts_a_password_lock(client, rt):
    done = register_account(client, rt)
    for _ in range(rt.settings.login_max_failures):
        login(client, done["phone"], "Wrong!password-7x")
    assert freeze(client, done["phone"], send_code(client, rt, done["phone"], "freeze")).status_code == 204
    code = send_code(client, rt, done["phone"], "unfreeze")
    assert unfreeze(client, done["phone"], code, done["recovery_key"]).status_code == 204
    assert login(client, done["phone"], NEW_PASSWORD).status_code == 201


def test_every_wrong_unfreeze_gets_one_answer_and_changes_nothing(client, rt):
    done = frozen_account(client, rt)
    phone, key = done["phone"], done["recovery_key"]
    code = send_code(client, rt, phone, "unfreeze")
    wrong_code = f"{(int(code) + 1) % 10**6:06d}"
    active = register_account(client, rt)
    active_code = send_code(client, rt, active["phone"], "unfreeze")

    bodies = {
        "wrong key": assert_wrong_proof(unfreeze(client, phone, code, WRONG_KEY)),
        "wrong code": assert_wrong_proof(unfreeze(client, phone, wrong_code, key)),
        "unknown number": assert_wrong_proof(unfreeze(client, new_phone(), code, key)),
        "not frozen": assert_wrong_proof(unfreeze(client, active["phone"], active_code, active["recovery_key"])),
    }

    assert len(set(bodies.values())) == 1, bodies
    assert account_row(rt, done["account"]["id"]).status == "frozen"
    assert account_row(rt, active["account"]["id"]).status == "active"
    assert_password_unchanged(client, active["phone"])
    reasons = [e["reason"] for e in events(rt, done["account"]["id"], "account.unfreeze")]
    assert reasons == ["invalid_recovery_key", "invalid_code"]
    assert [e["reason"] for e in events(rt, active["account"]["id"], "account.unfreeze")] == ["not_frozen"]
    # The wrong key did not touch the code; the wrong code was one counted try: the code still works.
    assert unfreeze(client, phone, code, key).status_code == 204


def test_a_weak_new_password_leaves_the_account_frozen_and_the_code_usable(client, rt):
    done = frozen_account(client, rt)
    code = send_code(client, rt, done["phone"], "unfreeze")
    weak = unfreeze(client, done["phone"], code, done["recovery_key"], "password1")
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    assert account_row(rt, done["account"]["id"]).status == "frozen"
    assert unfreeze(client, done["phone"], code, done["recovery_key"]).status_code == 204


def test_unfreeze_recovery_key_tries_share_the_per_number_limit(client, rt):
    done = frozen_account(client, rt)
    code = send_code(client, rt, done["phone"], "unfreeze")
    for _ in range(rt.settings.recovery_key_per_phone_hour):
        assert_wrong_proof(unfreeze(client, done["phone"], code, WRONG_KEY))
    over = unfreeze(client, done["phone"], code, done["recovery_key"])
    assert over.status_code == 429 and over.json()["code"] == "rate_limited"
    assert account_row(rt, done["account"]["id"]).status == "frozen"


def test_a_password_reset_does_not_unfreeze(client, rt):
    done = frozen_account(client, rt)
    by_code = reset_by_code(client, done["phone"], send_code(client, rt, done["phone"], "reset_password"))
    by_key = reset_by_key(client, done["phone"], done["recovery_key"])
    for answer in (by_code, by_key):
        assert answer.status_code == 403 and answer.json()["code"] == "account_frozen"
    assert account_row(rt, done["account"]["id"]).status == "frozen"
    assert_frozen_login(client, rt, done["phone"])
    assert [e["reason"] for e in events(rt, done["account"]["id"], "password.reset")] == ["frozen", "frozen"]


def test_exhausted_login_codes_never_keep_the_owner_from_freezing(client, rt):
    """Issue 15: the freeze code has its own allowance per number, apart from login and registration
    codes (which anyone can burn for a number on purpose); it is capped all the same."""
    done = register_account(client, rt)
    phone = done["phone"]
    for _ in range(rt.settings.code_per_hour - 1):  # the registration code was the first
        send_code(client, rt, phone, "login")
    rt.clock.advance(seconds=61)
    refused = client.post(CODES, json={"to": phone, "purpose": "login"})
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert freeze(client, phone, send_code(client, rt, phone, "freeze")).status_code == 204
    # The freeze allowance is a cap of its own: it runs out too, and does not touch the login one.
    for _ in range(rt.settings.code_freeze_per_hour - 1):
        send_code(client, rt, phone, "freeze")
    rt.clock.advance(seconds=61)
    assert client.post(CODES, json={"to": phone, "purpose": "freeze"}).status_code == 429
    assert client.post(CODES, json={"to": new_phone(), "purpose": "freeze"}).status_code == 202
