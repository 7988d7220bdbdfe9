"""Staff may use a passkey as their second factor instead of the TOTP code (issue 21): enrol while
signed in, log in with password + passkey, the same single answer for every failure, and a staff
reset removes the passkeys."""

from __future__ import annotations

import json

from sqlalchemy import select

from passport.audit.models import AuditEvent
from passport_testing import make_staff
from webauthn_testing import SoftAuthenticator

ADMIN = "/api/v1/admin"


def enrolled_staff(client, rt) -> tuple[dict, SoftAuthenticator]:
    staff = make_staff(rt, "auditor")
    authenticator = SoftAuthenticator()
    options = client.post(f"{ADMIN}/me/passkeys/options", headers=staff["headers"])
    assert options.status_code == 200, options.text
    assert options.json()["publicKey"]["authenticatorSelection"]["userVerification"] == "required"
    added = client.post(f"{ADMIN}/me/passkeys", headers=staff["headers"],
                        json={"credential": authenticator.create(options.json()), "name": "YubiKey"})
    assert added.status_code == 201, added.text
    return staff, authenticator


def passkey_login(client, staff: dict, authenticator: SoftAuthenticator, password: str | None = None, **lie):
    options = client.post(f"{ADMIN}/sessions/passkey/options", json={"login": staff["login"]})
    assert options.status_code == 200, options.text
    return client.post(f"{ADMIN}/sessions/passkey", json={
        "login": staff["login"], "password": password or staff["password"],
        "credential": authenticator.get(options.json(), **lie)})


def test_staff_logs_in_with_password_and_passkey(client, rt):
    staff, authenticator = enrolled_staff(client, rt)
    assert [p["name"] for p in client.get(f"{ADMIN}/me/passkeys", headers=staff["headers"]).json()] == ["YubiKey"]
    answer = passkey_login(client, staff, authenticator)
    assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    assert client.get(f"{ADMIN}/dashboard", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with rt.db.read() as db:
        details = db.scalars(select(AuditEvent.details).where(AuditEvent.action == "staff.login",
                                                              AuditEvent.subject_id == staff["id"])).all()
    assert "passkey" in [json.loads(d).get("second_factor") for d in details]
    # A user's passkey sign-in does not accept a staff passkey.
    options = client.post("/api/v1/sessions/passkey/options", json={}).json()
    assert client.post("/api/v1/sessions/passkey", json={"credential": authenticator.get(options)}).status_code == 401


def test_every_failure_is_one_answer(client, rt):
    staff, authenticator = enrolled_staff(client, rt)
    other, other_key = enrolled_staff(client, rt)
    assert passkey_login(client, staff, authenticator).status_code == 201  # its counter is 1 now
    cases = {
        "wrong password": passkey_login(client, staff, authenticator, password="Wrong!password-7x"),
        "no user verification": passkey_login(client, staff, authenticator, user_verified=False),
        "another member's passkey": passkey_login(client, staff, other_key),
        "cloned (counter back)": passkey_login(client, staff, authenticator, sign_count=1),
    }
    for name, answer in cases.items():
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials", name
    unknown = client.post(f"{ADMIN}/sessions/passkey/options", json={"login": "nobody-here"}).json()["publicKey"]
    again = client.post(f"{ADMIN}/sessions/passkey/options", json={"login": "nobody-here"}).json()["publicKey"]
    assert 1 <= len(unknown["allowCredentials"]) <= 2 and unknown["allowCredentials"] == again["allowCredentials"]
    with rt.db.read() as db:
        reasons = [json.loads(d)["reason"] for d in db.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "staff.login_failed",
                                             AuditEvent.subject_id == staff["id"]))]
        cloned = db.scalars(select(AuditEvent.seq).where(AuditEvent.action == "staff.passkey_sign_count_regressed",
                                                        AuditEvent.subject_id == staff["id"])).all()
    assert reasons.count("wrong_passkey") == 3 and "wrong_password" in reasons and len(cloned) == 1


def test_removal_and_reset_end_the_passkey(client, rt):
    staff, authenticator = enrolled_staff(client, rt)
    passkey_id = client.get(f"{ADMIN}/me/passkeys", headers=staff["headers"]).json()[0]["id"]
    assert client.delete(f"{ADMIN}/me/passkeys/nope", headers=staff["headers"]).status_code == 404
    assert client.delete(f"{ADMIN}/me/passkeys/{passkey_id}", headers=staff["headers"]).status_code == 204
    assert passkey_login(client, staff, authenticator).status_code == 401

    staff, authenticator = enrolled_staff(client, rt)
    boss = make_staff(rt, "superadmin")
    assert client.post(f"{ADMIN}/staff/{staff['id']}/reset", headers=boss["headers"]).status_code == 200
    assert passkey_login(client, staff, authenticator).status_code == 401
    assert client.post(f"{ADMIN}/me/passkeys/options").status_code == 401
