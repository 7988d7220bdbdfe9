"""The audit log: every state change writes its event in the same transaction (ARCHITECTURE,
COMPLIANCE C3, L1); details are masked; the hash chain verifies."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from passport.accounts.models import Account
from passport.audit.models import AuditEvent
from passport.audit.service import canonical, verify_chain
from passport.sessions import service as sessions_service
from passport.sessions.models import LoginSession
from passport_testing import AGREEMENT_VERSIONS, STRONG_PASSWORD, bearer, last_code, login, new_phone, register_account

WRONG_PASSWORD = "Wrong!password-7x"


def last_seq(rt) -> int:
    with rt.db.read() as db:
        return db.scalar(select(func.max(AuditEvent.seq))) or 0


def events_since(rt, seq: int) -> list[AuditEvent]:
    with rt.db.read() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)))


def details(event: AuditEvent) -> dict:
    return json.loads(event.details)


def send_code(client, phone: str, purpose: str):
    return client.post("/api/v1/verification-codes", json={"to": phone, "purpose": purpose})


def test_registration_writes_registered_and_one_consent_event_per_document(client, rt):
    start = last_seq(rt)
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    events = events_since(rt, start)
    assert [e.action for e in events] == ["verification_code.sent", "account.registered", "consent.given",
                                          "consent.given"]
    registered = events[1]
    assert (registered.actor_type, registered.actor_id) == ("user", account_id)
    assert (registered.subject_type, registered.subject_id) == ("account", account_id)
    assert registered.result == "ok" and registered.ip == "testclient"
    assert details(registered)["channel"] == "api"
    consents = events[2:]
    assert {e.subject_id for e in consents} == {f"{k}/{v}" for k, v in AGREEMENT_VERSIONS.items()}
    assert all(e.actor_id == account_id and len(details(e)["digest"]) == 64 for e in consents)
    assert len({e.at for e in events[1:]}) == 1


def test_code_send_and_throttle_are_recorded(client, rt):
    phone = new_phone()
    start = last_seq(rt)
    assert send_code(client, phone, "register").status_code == 202
    assert send_code(client, phone, "register").status_code == 429
    sent, throttled = events_since(rt, start)
    assert sent.action == "verification_code.sent" and sent.result == "ok"
    assert details(sent) == {"purpose": "register", "by": "sms", "delivered": True, "channel": "api"}
    assert throttled.action == "verification_code.throttled" and throttled.result == "denied"
    assert details(throttled) == {"purpose": "register", "by": "sms", "channel": "api"}


def test_login_code_for_an_unknown_number_is_recorded_as_not_delivered(client, rt):
    start = last_seq(rt)
    assert send_code(client, new_phone(), "login").status_code == 202
    [sent] = events_since(rt, start)
    assert (sent.action, details(sent)["delivered"]) == ("verification_code.sent", False)


def test_failed_registration_is_recorded(client, rt):
    phone = new_phone()
    send_code(client, phone, "register")
    start = last_seq(rt)
    answer = client.post("/api/v1/accounts", json={
        "phone": phone, "code": "000000" if last_code(rt, phone, "register") != "000000" else "111111",
        "password": STRONG_PASSWORD, "nickname": "x", "agreements": AGREEMENT_VERSIONS})
    assert answer.status_code == 422
    [event] = events_since(rt, start)
    assert (event.action, event.result) == ("account.register", "failed")
    assert details(event)["reason"] == "invalid_code"


def test_login_success_failure_lock_and_logout_are_recorded(client, rt):
    done = register_account(client, rt)
    account_id, phone = done["account"]["id"], done["phone"]
    start = last_seq(rt)

    token = login(client, phone).json()["token"]
    for _ in range(5):
        login(client, phone, WRONG_PASSWORD)
    login(client, phone)  # refused: locked
    login(client, new_phone())  # no such account
    assert client.delete("/api/v1/sessions/current", headers=bearer(token)).status_code == 204
    assert client.delete(f"/api/v1/sessions/{done['session']['id']}",
                         headers=bearer(login_after_lock(client, rt, phone))).status_code == 204

    events = events_since(rt, start)
    actions = [e.action for e in events]
    assert actions[:8] == ["login.succeeded"] + ["login.failed"] * 5 + ["login.locked", "login.failed"]
    succeeded, failures, locked, refused = events[0], events[1:6], events[6], events[7]
    assert (succeeded.actor_id, succeeded.subject_id) == (account_id, account_id)
    assert details(succeeded)["method"] == "password"
    assert [details(e)["failures"] for e in failures] == [1, 2, 3, 4, 5]
    assert all(e.result == "failed" and e.subject_id == account_id for e in failures)
    assert locked.result == "denied" and locked.actor_type == "system" and "until" in details(locked)
    assert (refused.result, details(refused)["reason"]) == ("denied", "locked")
    unknown = events[8]
    assert (unknown.action, unknown.subject_id, details(unknown)["reason"]) == ("login.failed", None,
                                                                                "unknown_account")
    assert "logout" in actions and "session.revoked" in actions
    logout = next(e for e in events if e.action == "logout")
    assert (logout.actor_id, logout.subject_type) == (account_id, "session")
    revoked = next(e for e in events if e.action == "session.revoked")
    assert revoked.subject_id == done["session"]["id"]


def login_after_lock(client, rt, phone: str) -> str:
    rt.clock.advance(minutes=15, seconds=1)
    answer = login(client, phone)
    assert answer.status_code == 201
    return answer.json()["token"]


def test_sms_code_login_and_profile_change_are_recorded(client, rt):
    done = register_account(client, rt)
    rt.clock.advance(seconds=61)
    send_code(client, done["phone"], "login")
    start = last_seq(rt)
    answer = client.post("/api/v1/sessions", json={"phone": done["phone"],
                                                  "code": last_code(rt, done["phone"], "login")})
    assert answer.status_code == 201
    client.patch("/api/v1/me", json={"nickname": "审计", "bio": "b"}, headers=bearer(answer.json()["token"]))
    login_event, profile = events_since(rt, start)
    assert (login_event.action, details(login_event)["method"]) == ("login.succeeded", "sms_code")
    assert (profile.action, details(profile)["fields"]) == ("account.profile_updated", ["bio", "nickname"])


def test_an_audit_event_is_not_written_when_its_change_is_rolled_back(app, rt, monkeypatch):
    """Registration fails after the account row and its events were added: neither survives, and
    the code is not spent."""
    phone = new_phone()

    def broken_start_session(*args, **kwargs):
        raise RuntimeError("simulated failure after the audit events were written")

    with TestClient(app, raise_server_exceptions=False) as client:
        send_code(client, phone, "register")
        body = {"phone": phone, "code": last_code(rt, phone, "register"), "password": STRONG_PASSWORD,
                "nickname": "回滚", "agreements": AGREEMENT_VERSIONS}
        start = last_seq(rt)
        with monkeypatch.context() as patch:
            patch.setattr(sessions_service, "start_session", broken_start_session)
            answer = client.post("/api/v1/accounts", json=body)
        assert answer.status_code == 500 and answer.json()["code"] == "internal_error"
        assert events_since(rt, start) == []
        with rt.db.read() as db:
            bidx = rt.keys.blind_index("phone", "+86" + phone)
            assert db.scalar(select(func.count()).select_from(Account).where(Account.phone_bidx == bidx)) == 0
        assert client.post("/api/v1/accounts", json=body).status_code == 201


# The database itself refuses the login.succeeded record, whichever way the login writes it (a
# transaction with audit.record, or PostgreSQL's one-statement start_session_recorded).
_REFUSE_LOGIN_RECORD = {
    "sqlite": ["CREATE TRIGGER refuse_login_record BEFORE INSERT ON audit_events "
               "WHEN NEW.action = 'login.succeeded' BEGIN SELECT RAISE(ABORT, 'simulated audit failure'); END"],
    "postgresql": ["CREATE FUNCTION refuse_login_record() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'simulated audit failure'; END $$",
                   "CREATE TRIGGER refuse_login_record BEFORE INSERT ON audit_events FOR EACH ROW "
                   "WHEN (NEW.action = 'login.succeeded') EXECUTE FUNCTION refuse_login_record()"],
}
_ALLOW_LOGIN_RECORD = {
    "sqlite": ["DROP TRIGGER refuse_login_record"],
    "postgresql": ["DROP TRIGGER refuse_login_record ON audit_events", "DROP FUNCTION refuse_login_record()"],
}


def test_a_session_is_not_kept_when_its_login_event_cannot_be_written(app, rt):
    done = register_account_via(app, rt)
    dialect = rt.db.engine.dialect.name

    def sessions_now() -> int:
        with rt.db.read() as db:
            return db.scalar(select(func.count()).select_from(LoginSession)
                             .where(LoginSession.account_id == done["account"]["id"]))

    def execute(statements: list[str]) -> None:
        with rt.db.engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    with TestClient(app, raise_server_exceptions=False) as client:
        before, seq = sessions_now(), last_seq(rt)
        execute(_REFUSE_LOGIN_RECORD[dialect])
        try:
            assert login(client, done["phone"]).status_code == 500
        finally:
            execute(_ALLOW_LOGIN_RECORD[dialect])
        assert sessions_now() == before
        assert [e.action for e in events_since(rt, seq)] == []
        # And with the database accepting it again, the same login works and is recorded.
        assert login(client, done["phone"]).status_code == 201
    assert sessions_now() == before + 1
    # (a TestClient of its own: a new device to the account, told after the login committed)
    assert [e.action for e in events_since(rt, seq)] == ["login.succeeded", "login.new_device"]
    assert verify_chain_ok(rt)


def verify_chain_ok(rt) -> bool:
    with rt.db.read() as db:
        return verify_chain(db)[0]


def register_account_via(app, rt) -> dict:
    with TestClient(app) as client:
        return register_account(client, rt)


def _token(value: str) -> re.Pattern:
    # A code is six digits: look for it as a value of its own, not inside a hash or a timestamp.
    return re.compile(rf"(?<![0-9A-Za-z.]){re.escape(value)}(?![0-9A-Za-z])")


def test_audit_rows_never_hold_phone_code_or_password(client, rt):
    start = last_seq(rt)
    done = register_account(client, rt)
    phone = done["phone"]
    codes = [last_code(rt, phone, "register")]
    login(client, phone, WRONG_PASSWORD)
    login(client, "+86 " + phone, STRONG_PASSWORD)
    rt.clock.advance(seconds=61)
    send_code(client, phone, "login")
    codes.append(last_code(rt, phone, "login"))
    client.post("/api/v1/sessions", json={"phone": phone, "code": codes[-1]})
    stranger = new_phone()
    send_code(client, stranger, "login")
    login(client, stranger, WRONG_PASSWORD)
    client.patch("/api/v1/me", json={"bio": "新简介"}, headers=bearer(done["session"]["token"]))

    events = events_since(rt, start)
    assert len(events) >= 8
    for event in events:
        for column in AuditEvent.__table__.columns:
            value = getattr(event, column.key)
            if value is None:
                continue
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            for number in (phone, stranger):
                assert number not in text, (event.action, column.key)
                assert number[3:] not in text, (event.action, column.key)
            for secret in (STRONG_PASSWORD, WRONG_PASSWORD):
                assert secret not in text, (event.action, column.key)
            for code in codes:
                assert not _token(code).search(text), (event.action, column.key)


def test_hash_chain_verifies_after_mixed_actions(client, rt):
    done = register_account(client, rt)
    login(client, done["phone"], WRONG_PASSWORD)
    token = login(client, done["phone"]).json()["token"]
    client.patch("/api/v1/me", json={"nickname": "链"}, headers=bearer(token))
    send_code(client, new_phone(), "login")
    client.delete("/api/v1/sessions/current", headers=bearer(token))
    with rt.db.read() as db:
        ok, checked, first_bad = verify_chain(db)
        total = db.scalar(select(func.count()).select_from(AuditEvent))
    assert (ok, first_bad) == (True, None)
    assert checked == total > 0


class _Rollback(Exception):
    pass


@pytest.mark.parametrize("tamper", ["edit", "delete"])
def test_hash_chain_detects_a_changed_or_removed_event(client, rt, tamper):
    register_account(client, rt)
    with rt.db.read() as db:
        seqs = list(db.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(3)))
    victim, successor = seqs[1], seqs[0]
    with pytest.raises(_Rollback), rt.db.write() as db:
        if tamper == "edit":
            db.execute(update(AuditEvent).where(AuditEvent.seq == victim).values(result="denied"))
            expected_bad = victim
        else:
            db.execute(delete(AuditEvent).where(AuditEvent.seq == victim))
            expected_bad = successor
        ok, _, first_bad = verify_chain(db)
        assert (ok, first_bad) == (False, expected_bad)
        raise _Rollback
    with rt.db.read() as db:
        assert verify_chain(db)[0] is True


def test_a_login_record_hashes_the_same_bytes_the_verifier_reads(client, rt):
    # On PostgreSQL the login's record is hashed by the database (audit.appending_after): quotes,
    # backslashes, control characters and non-ASCII in the user agent must give the hash that
    # verify recomputes from the stored row.
    done = register_account(client, rt)
    seq = last_seq(rt)
    agent = 'Mozilla/5.0 "quoted" \\back\\slash\ttab (Ünïcödé) 浏览器'.encode()
    answer = client.post("/api/v1/sessions", json={"login": done["phone"], "password": STRONG_PASSWORD},
                         headers={"User-Agent": agent})
    assert answer.status_code == 201
    [event] = events_since(rt, seq)
    assert event.action == "login.succeeded" and event.seq == seq + 1
    assert event.user_agent == agent.decode("latin-1")  # as the server received the header
    assert event.hash == hashlib.sha256(canonical(event)).hexdigest()
    assert verify_chain_ok(rt)
