"""Passkeys and QR logins in the personal-data export, and gone at finalisation (issue 21)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from passport.passwordless.models import Passkey, PasskeyChallenge, QrLogin
from passport.worker import run_once
from webauthn_testing import SoftAuthenticator


def with_passkey_and_qr_login(client, app, member) -> SoftAuthenticator:
    authenticator = SoftAuthenticator()
    options = client.post("/api/v1/me/passkeys/options", headers=member.headers).json()
    added = client.post("/api/v1/me/passkeys", headers=member.headers,
                        json={"credential": authenticator.create(options), "name": "旧手机"})
    assert added.status_code == 201, added.text
    client.post("/api/v1/me/passkeys/options", headers=member.headers)  # an open challenge too
    with TestClient(app) as browser:
        code = browser.post("/api/v1/qr-logins").json()["id"]
        assert client.post(f"/api/v1/qr-logins/{code}/approve", headers=member.headers).status_code == 200
        assert browser.get(f"/api/v1/qr-logins/{code}").json()["token"]
    return authenticator


def test_the_export_lists_passkeys_and_qr_logins(client, app, rt, member):
    with_passkey_and_qr_login(client, app, member)
    archive = client.post("/api/v1/me/export", json={"code": member.own_code("export")}, headers=member.headers)
    assert archive.status_code == 200, archive.text
    body = archive.json()
    assert [(p["name"], p["sign_count"]) for p in body["passkeys"]] == [("旧手机", 0)]
    assert "public_key" not in body["passkeys"][0] and "credential_id" not in body["passkeys"][0]
    assert [q["status"] for q in body["qr_logins"]] == ["used"]
    assert {"qr", "password", "register"} >= {s["method"] for s in body["sessions"]} and \
        "qr" in {s["method"] for s in body["sessions"]}
    for lang in ("zh-CN", "en"):
        assert "passkeys" in body["README"][lang] and "qr_logins" in body["README"][lang]


def test_finalisation_removes_passkeys_and_qr_logins(client, app, rt, member, zero_day):
    authenticator = with_passkey_and_qr_login(client, app, member)
    assert member.request().status_code == 202
    run_once(rt)
    with rt.db.read() as db:
        for model in (Passkey, QrLogin, PasskeyChallenge):
            assert db.scalars(select(model).where(model.account_id == member.id)).all() == [], model.__name__
    options = client.post("/api/v1/sessions/passkey/options", json={}).json()
    assert client.post("/api/v1/sessions/passkey", json={"credential": authenticator.get(options)}
                       ).status_code == 401
