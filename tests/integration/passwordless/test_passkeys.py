"""Passkeys through the API (issue 21) with a software authenticator: registration (stepped up), list,
rename, removal (stepped up), sign-in usernameless and after the phone, and every refusal — spent
challenge, no user verification, wrong origin, unknown credential, a cloned authenticator whose
counter went backwards, frozen and suspended accounts — plus the enumeration view of the options."""

from __future__ import annotations

import json

import pyotp
from sqlalchemy import select

from passport.accounts import service as accounts
from passport.audit.models import AuditEvent
from passport.notify.models import InboxMessage
from passport.sessions.models import LoginSession
from passport_testing import bearer, new_phone, register_account, step_up
from webauthn_testing import SoftAuthenticator, b64url

OPTIONS = "/api/v1/sessions/passkey/options"
LOGIN = "/api/v1/sessions/passkey"


def enrolled(client, rt, name: str | None = "我的手机") -> tuple[dict, dict, SoftAuthenticator]:
    """A fresh account (its registration session is stepped up) with one passkey."""
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    authenticator = SoftAuthenticator()
    options = client.post("/api/v1/me/passkeys/options", headers=headers)
    assert options.status_code == 200, options.text
    added = client.post("/api/v1/me/passkeys", headers=headers,
                        json={"credential": authenticator.create(options.json()), "name": name})
    assert added.status_code == 201, added.text
    return done, headers, authenticator


def sign_in(client, authenticator: SoftAuthenticator, phone: str | None = None, **lie):
    options = client.post(OPTIONS, json={"phone": phone} if phone else {})
    assert options.status_code == 200, options.text
    return client.post(LOGIN, json={"credential": authenticator.get(options.json(), **lie)})


def audit_actions(rt, account_id: str, prefix: str) -> list[tuple[str, dict]]:
    with rt.db.read() as db:
        rows = db.execute(select(AuditEvent.action, AuditEvent.details)
                          .where(AuditEvent.subject_id == account_id, AuditEvent.action.startswith(prefix))
                          .order_by(AuditEvent.seq)).all()
    return [(r.action, json.loads(r.details)) for r in rows]


def test_register_then_sign_in_usernameless(client, rt):
    done, headers, authenticator = enrolled(client, rt)
    options = client.post("/api/v1/me/passkeys/options", headers=headers).json()["publicKey"]
    assert options["rp"]["id"] == "localhost"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["excludeCredentials"][0]["id"] == b64url(authenticator.credential_id)
    listed = client.get("/api/v1/me/passkeys", headers=headers).json()
    assert [(p["name"], p["last_used_at"], p["transports"]) for p in listed] == [("我的手机", None, ["internal"])]

    login_options = client.post(OPTIONS, json={}).json()["publicKey"]
    assert login_options["allowCredentials"] == [] and login_options["userVerification"] == "required"
    answer = client.post(LOGIN, json={"credential": authenticator.get({"publicKey": login_options})})
    assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    assert answer.json()["account"]["id"] == done["account"]["id"]
    with rt.db.read() as db:
        session = db.get(LoginSession, answer.json()["id"])
    assert session.method == "passkey" and session.stepped_up_at is not None  # two factors
    assert client.get("/api/v1/me/passkeys", headers=bearer(token)).json()[0]["last_used_at"]
    actions = audit_actions(rt, done["account"]["id"], "passkey.")
    assert actions[0][0] == "passkey.added"
    with rt.db.read() as db:
        assert db.scalar(select(InboxMessage.id).where(InboxMessage.account_id == done["account"]["id"],
                                                       InboxMessage.params.contains("passkey was added")))


def test_sign_in_after_the_phone_and_the_options_reveal_nothing(client, rt):
    done, _headers, authenticator = enrolled(client, rt)
    mine = client.post(OPTIONS, json={"phone": done["phone"]}).json()["publicKey"]["allowCredentials"]
    assert [c["id"] for c in mine] == [b64url(authenticator.credential_id)]
    answer = sign_in(client, authenticator, done["phone"])
    assert answer.status_code == 201, answer.text

    # A number without an account, and an account without passkeys: made-up ids, stable per number.
    nobody = new_phone()
    without = register_account(client, rt)["phone"]
    for phone in (nobody, without):
        first = client.post(OPTIONS, json={"phone": phone})
        second = client.post(OPTIONS, json={"phone": phone})
        assert first.status_code == second.status_code == 200
        ids = [c["id"] for c in first.json()["publicKey"]["allowCredentials"]]
        assert 1 <= len(ids) <= 2 and ids == [c["id"] for c in second.json()["publicKey"]["allowCredentials"]]
        assert set(first.json()["publicKey"]) == set(client.post(OPTIONS, json={"phone": done["phone"]})
                                                     .json()["publicKey"])
    assert client.post(OPTIONS, json={"phone": "12"}).json()["code"] == "invalid_phone"


def test_a_passkey_skips_the_totp_step(client, rt):
    done, headers, authenticator = enrolled(client, rt)
    secret = client.post("/api/v1/me/totp", headers=headers).json()["secret"]
    assert client.post("/api/v1/me/totp/confirm", json={"code": pyotp.TOTP(secret).at(rt.clock.now())},
                       headers=headers).status_code == 204
    assert client.post("/api/v1/sessions", json={"login": done["phone"], "password": done["password"]}
                       ).json()["code"] == "mfa_required"
    assert sign_in(client, authenticator).status_code == 201


def test_cloned_credential_with_a_lower_counter_is_refused_and_audited(client, rt):
    done, _headers, authenticator = enrolled(client, rt)
    assert sign_in(client, authenticator).status_code == 201  # counter 1
    assert sign_in(client, authenticator).status_code == 201  # counter 2
    cloned = sign_in(client, authenticator, sign_count=1)  # a copy of the key, still at 1
    assert cloned.status_code == 401 and cloned.json()["code"] == "invalid_credentials"
    assert sign_in(client, authenticator, sign_count=2).status_code == 401  # the same counter again
    account_id = done["account"]["id"]
    regressed = [d for a, d in audit_actions(rt, account_id, "passkey.") if a == "passkey.sign_count_regressed"]
    assert len(regressed) == 2 and regressed[0]["stored"] == 2
    failed = [d["reason"] for a, d in audit_actions(rt, account_id, "login.failed")]
    assert failed.count("sign_count_regressed") == 2
    with rt.db.read() as db:
        assert db.scalar(select(InboxMessage.id).where(InboxMessage.account_id == account_id,
                                                       InboxMessage.params.contains("may have been copied")))
    assert sign_in(client, authenticator).status_code == 201  # the real one, counter 3


def test_refusals_answer_like_a_wrong_password(client, rt):
    done, _headers, authenticator = enrolled(client, rt)
    stranger = SoftAuthenticator()
    stranger.user_handle = done["account"]["id"].encode()
    cases = {"unknown passkey": lambda: sign_in(client, stranger),
             "no user verification": lambda: sign_in(client, authenticator, user_verified=False),
             "another origin": lambda: sign_in(client, authenticator, origin="https://evil.example"),
             "another user handle": lambda: sign_in(client, authenticator, user_handle=b"someone-else")}
    for name, attempt in cases.items():
        answer = attempt()
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials", name
    # A replayed assertion: the challenge is spent.
    options = client.post(OPTIONS, json={}).json()
    assertion = authenticator.get(options)
    assert client.post(LOGIN, json={"credential": assertion}).status_code == 201
    assert client.post(LOGIN, json={"credential": assertion}).status_code == 401
    # Garbage.
    assert client.post(LOGIN, json={"credential": {"id": "x"}}).status_code == 401
    # Options for someone else's number cannot be used with this passkey.
    other = enrolled(client, rt)[0]
    other_options = client.post(OPTIONS, json={"phone": other["phone"]}).json()
    assert client.post(LOGIN, json={"credential": authenticator.get(other_options)}).status_code == 401
    reasons = [d["reason"] for _a, d in audit_actions(rt, done["account"]["id"], "login.failed")]
    assert {"invalid_assertion", "user_handle_mismatch", "other_account"} <= set(reasons)


def test_frozen_and_suspended_accounts_get_the_password_logins_answer(client, rt):
    for status, code in (("frozen", "account_frozen"), ("suspended", "account_suspended")):
        done, _headers, authenticator = enrolled(client, rt)
        account_id = done["account"]["id"]
        with rt.db.write() as db:
            accounts.set_status(db, account_id, status, expected="active", now=rt.clock.now(),
                                reason="测试" if status == "suspended" else None)
        answer = sign_in(client, authenticator)
        assert answer.status_code == 403 and answer.json()["code"] == code, answer.text
        password = client.post("/api/v1/sessions", json={"login": done["phone"], "password": done["password"]})
        assert password.status_code == 403 and password.json()["code"] == code
        assert answer.json().get("reason") == password.json().get("reason")
        refused = [d["status"] for a, d in audit_actions(rt, account_id, "login.refused") if d["method"] == "passkey"]
        assert refused == [status]


def test_registration_and_removal_need_a_step_up(client, rt):
    done, headers, authenticator = enrolled(client, rt)
    passkey_id = client.get("/api/v1/me/passkeys", headers=headers).json()[0]["id"]
    rt.clock.advance(minutes=11)
    assert client.post("/api/v1/me/passkeys/options", headers=headers).json()["code"] == "step_up_required"
    removed = client.delete(f"/api/v1/me/passkeys/{passkey_id}", headers=headers)
    assert removed.status_code == 403 and removed.json()["code"] == "step_up_required"
    renamed = client.patch(f"/api/v1/me/passkeys/{passkey_id}", json={"name": "办公室"}, headers=headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "办公室"  # a rename needs none
    assert client.patch(f"/api/v1/me/passkeys/{passkey_id}", json={"name": "   "},
                        headers=headers).status_code == 422
    headers = bearer(step_up(client, headers["Authorization"].split()[1]))
    assert client.delete("/api/v1/me/passkeys/nope", headers=headers).status_code == 404
    other = enrolled(client, rt)[1]
    other_id = client.get("/api/v1/me/passkeys", headers=other).json()[0]["id"]
    assert client.delete(f"/api/v1/me/passkeys/{other_id}", headers=headers).status_code == 404
    assert client.patch(f"/api/v1/me/passkeys/{other_id}", json={"name": "x"}, headers=headers).status_code == 404
    assert client.delete(f"/api/v1/me/passkeys/{passkey_id}", headers=headers).status_code == 204
    assert client.get("/api/v1/me/passkeys", headers=headers).json() == []
    assert sign_in(client, authenticator).status_code == 401
    assert [a for a, _d in audit_actions(rt, done["account"]["id"], "passkey.")][-2:] == ["passkey.renamed",
                                                                                          "passkey.removed"]


def test_registration_refusals(client, rt):
    done, headers, authenticator = enrolled(client, rt)
    options = client.post("/api/v1/me/passkeys/options", headers=headers).json()
    unverified = client.post("/api/v1/me/passkeys", headers=headers,
                             json={"credential": SoftAuthenticator().create(options, user_verified=False)})
    assert unverified.status_code == 422 and unverified.json()["code"] == "passkey_rejected"
    # The challenge was spent by that try.
    spent = client.post("/api/v1/me/passkeys", headers=headers,
                        json={"credential": SoftAuthenticator().create(options)})
    assert spent.status_code == 422
    again = client.post("/api/v1/me/passkeys/options", headers=headers).json()
    duplicate = client.post("/api/v1/me/passkeys", headers=headers, json={"credential": authenticator.create(again)})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "passkey_exists"
    # Another account's options cannot register a passkey here.
    other_headers = enrolled(client, rt)[1]
    theirs = client.post("/api/v1/me/passkeys/options", headers=other_headers).json()
    assert client.post("/api/v1/me/passkeys", headers=headers,
                       json={"credential": SoftAuthenticator().create(theirs)}).status_code == 422
    assert client.post("/api/v1/me/passkeys", json={"credential": {}}).status_code == 401


def test_step_up_with_a_passkey(client, rt):
    done, headers, authenticator = enrolled(client, rt)
    rt.clock.advance(minutes=11)  # the registration's step-up has lapsed
    assert client.post("/api/v1/me/passkeys/options", headers=headers).json()["code"] == "step_up_required"
    options = client.post("/api/v1/me/step-up/passkey/options", headers=headers)
    assert options.status_code == 200, options.text
    assert [c["id"] for c in options.json()["publicKey"]["allowCredentials"]] == [b64url(authenticator.credential_id)]
    # Wrong ones first: no user verification, then another account's passkey.
    refused = client.post("/api/v1/me/step-up/passkey", headers=headers,
                          json={"credential": authenticator.get(options.json(), user_verified=False)})
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_passkey"
    stranger = enrolled(client, rt)[2]
    again = client.post("/api/v1/me/step-up/passkey/options", headers=headers).json()
    assert client.post("/api/v1/me/step-up/passkey", headers=headers,
                       json={"credential": stranger.get(again)}).status_code == 400
    again = client.post("/api/v1/me/step-up/passkey/options", headers=headers).json()
    stepped = client.post("/api/v1/me/step-up/passkey", headers=headers, json={"credential": authenticator.get(again)})
    assert stepped.status_code == 200, stepped.text
    new_headers = bearer(stepped.json()["token"])
    assert client.get("/api/v1/me", headers=headers).status_code == 401  # the old token was replaced
    assert client.post("/api/v1/me/passkeys/options", headers=new_headers).status_code == 200
    failed = [d["reason"] for a, d in audit_actions(rt, done["account"]["id"], "session.step_up")]
    assert failed.count("invalid_passkey") == 2
    assert [d["by"] for a, d in audit_actions(rt, done["account"]["id"], "session.stepped_up")] == ["passkey"]
    # An account without passkeys has nothing to offer.
    other = register_account(client, rt)
    assert client.post("/api/v1/me/step-up/passkey/options",
                       headers=bearer(other["session"]["token"])).status_code == 404
