from __future__ import annotations

from passport_testing import AGREEMENT_VERSIONS, STRONG_PASSWORD, bearer, last_code, new_phone, register_account


def test_register_returns_masked_account_recovery_key_and_session(client, rt):
    done = register_account(client, rt)
    account = done["account"]
    national = done["phone"]
    assert account["phone"] == f"{national[:3]}****{national[7:]}"
    assert account["status"] == "active" and account["kind"] == "person"
    assert len(done["recovery_key"].replace("-", "")) == 25
    me = client.get("/api/v1/me", headers=bearer(done["session"]["token"]))
    assert me.status_code == 200
    assert me.json()["id"] == account["id"]


def test_phone_taken_only_after_the_code_proves_ownership(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    body = {"phone": phone, "code": "000000", "password": STRONG_PASSWORD, "nickname": "x",
            "agreements": AGREEMENT_VERSIONS}
    wrong = client.post("/api/v1/accounts", json=body)
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_code"

    rt.clock.advance(seconds=61)
    assert client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"}).status_code == 202
    taken = client.post("/api/v1/accounts", json=body | {"code": last_code(rt, phone, "register")})
    assert taken.status_code == 409 and taken.json()["code"] == "phone_taken"


def test_registration_requires_the_current_agreement_versions(client, rt):
    phone = new_phone()
    client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"})
    answer = client.post("/api/v1/accounts", json={
        "phone": phone, "code": last_code(rt, phone, "register"), "password": STRONG_PASSWORD,
        "nickname": "x", "agreements": {"user-agreement": "0.9", "privacy-policy": "1.0"}})
    assert answer.status_code == 422
    assert answer.json()["code"] == "agreements_required"
    assert answer.json()["errors"][0]["field"] == "agreements.user-agreement"
