"""Issue 15, "email probing and others' code history": a stolen session that asks for a bind_email
code to someone else's address must not read, in the export, whether an account holds the address
or any code the other person asked for. The export lists only codes the account itself asked for
and codes delivered to its own bound phone and email."""

from __future__ import annotations

import uuid

from passport_testing import last_email_code

VOLATILE = ("created_at", "expires_at", "consumed_at")


def bind_email(member, address: str) -> None:
    client = member.client
    assert client.post("/api/v1/me/email", json={"email": address}, headers=member.headers).status_code == 202
    code = last_email_code(member.rt, address, "bind_email")
    assert client.post("/api/v1/me/email/verify", json={"code": code}, headers=member.headers).status_code == 204


def probe(attacker, address: str) -> list[dict]:
    """What the attacker reads about codes after asking for a bind code to ``address``."""
    answer = attacker.client.post("/api/v1/me/email", json={"email": address}, headers=attacker.headers)
    assert answer.status_code == 202, answer.text
    archive = attacker.client.post("/api/v1/me/export", json={"code": attacker.own_code("export")},
                                   headers=attacker.headers)
    assert archive.status_code == 200, archive.text
    return [{k: v for k, v in c.items() if k not in VOLATILE} for c in archive.json()["verification_codes"]]


def test_the_export_tells_nothing_about_an_address_someone_else_holds(client, make_member):
    victim = make_member()
    address = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    bind_email(victim, address)
    # The victim asks for login codes to its address: its own history.
    for _ in range(2):
        assert client.post("/api/v1/verification-codes",
                           json={"channel": "email", "to": address, "purpose": "login"}).status_code == 202
    held = probe(make_member(), address)
    unheld = probe(make_member(), f"nobody-{uuid.uuid4().hex[:8]}@example.com")
    assert held == unheld
    assert "login" not in {c["purpose"] for c in held}
    assert all("delivered" not in c for c in held)


def test_the_codes_the_account_asked_for_and_those_to_its_own_number_stay(member):
    member.own_code("cancel_account")
    address = f"own-{uuid.uuid4().hex[:8]}@example.com"
    bind_email(member, address)
    archive = member.client.post("/api/v1/me/export", json={"code": member.own_code("export")},
                                 headers=member.headers).json()
    assert {c["purpose"] for c in archive["verification_codes"]} >= {"register", "cancel_account", "export",
                                                                     "bind_email"}
