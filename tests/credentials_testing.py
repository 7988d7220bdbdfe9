"""Helpers shared by the credential tests (tests/integration/credentials, tests/browser)."""

from __future__ import annotations

import json

from sqlalchemy import select

from passport_testing import STRONG_PASSWORD, bearer, deliver_notices, last_code, login, outbox_messages

NEW_PASSWORD = "Nw9!harbour-Crane"
WRONG_PASSWORD = "Wrong!password-7x"
WRONG_KEY = "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"
CODES = "/api/v1/verification-codes"
RESETS = "/api/v1/password-resets"


def me(client, token: str):
    return client.get("/api/v1/me", headers=bearer(token))


def send_code(client, rt, phone: str, purpose: str) -> str:
    """Send a code (after the one-a-minute wait of any earlier one) and read it from the outbox."""
    rt.clock.advance(seconds=61)
    answer = client.post(CODES, json={"to": phone, "purpose": purpose})
    assert answer.status_code == 202, answer.text
    return last_code(rt, phone, purpose)


def reset_by_code(client, phone: str, code: str, password: str = NEW_PASSWORD):
    return client.post(RESETS, json={"phone": phone, "code": code, "new_password": password})


def reset_by_key(client, phone: str, key: str, password: str = NEW_PASSWORD):
    return client.post(RESETS, json={"phone": phone, "recovery_key": key, "new_password": password})


def notices(rt, phone: str, purpose: str) -> list[dict]:
    deliver_notices(rt)
    return [m for m in outbox_messages(rt) if m["to"] == "+86" + phone and m["purpose"] == purpose]


def events(rt, account_id: str | None, action: str) -> list[dict]:
    """The audit events of one action on one account, oldest first: result, actor and details."""
    from passport.audit.models import AuditEvent

    with rt.db.read() as db:
        rows = db.execute(select(AuditEvent.result, AuditEvent.details, AuditEvent.actor_id)
                          .where(AuditEvent.action == action, AuditEvent.subject_id == account_id)
                          .order_by(AuditEvent.seq)).all()
    return [{"result": r.result, "actor_id": r.actor_id} | json.loads(r.details) for r in rows]


def account_row(rt, account_id: str):
    from passport.accounts.models import Account

    with rt.db.read() as db:
        return db.get(Account, account_id)


def assert_password_is(client, phone: str, password: str, *, not_: tuple[str, ...] = ()) -> None:
    assert login(client, phone, password).status_code == 201, password
    for other in not_:
        assert login(client, phone, other).status_code == 401, other


def assert_password_unchanged(client, phone: str) -> None:
    assert_password_is(client, phone, STRONG_PASSWORD, not_=(NEW_PASSWORD,))
