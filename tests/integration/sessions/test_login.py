"""Login, lockout, sessions and logout: API.md "Sessions", COMPLIANCE C5."""

from __future__ import annotations

import pytest

from passport_testing import STRONG_PASSWORD, bearer, last_code, login, login_with_code, new_phone, register_account

SESSIONS = "/api/v1/sessions"
WRONG_PASSWORD = "Wrong!password-7x"


def send_and_login_with_code(client, rt, phone: str):
    sent = client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "login"})
    assert sent.status_code == 202
    return login_with_code(client, phone, last_code(rt, phone, "login"))


def me(client, token: str):
    return client.get("/api/v1/me", headers=bearer(token))


def spaced(phone: str) -> str:
    return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"


@pytest.mark.parametrize("form", [
    pytest.param(lambda p: p, id="plain"),
    pytest.param(lambda p: "+86" + p, id="plus86"),
    pytest.param(lambda p: "86" + p, id="86"),
    pytest.param(spaced, id="spaces"),
    pytest.param(lambda p: f" {p} ", id="padded"),
])
def test_password_login_accepts_every_documented_phone_form(client, rt, form):
    done = register_account(client, rt)
    answer = login(client, form(done["phone"]))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["account"]["id"] == done["account"]["id"]
    assert body["account"]["phone"] == done["account"]["phone"]
    assert set(body) >= {"id", "token", "expires_at", "account"}
    assert body["token"] != done["session"]["token"]
    assert me(client, body["token"]).json()["id"] == done["account"]["id"]


def test_sms_code_login(client, rt):
    done = register_account(client, rt)
    rt.clock.advance(seconds=61)
    answer = send_and_login_with_code(client, rt, done["phone"])
    assert answer.status_code == 201, answer.text
    assert answer.json()["account"]["id"] == done["account"]["id"]
    assert me(client, answer.json()["token"]).status_code == 200


def test_wrong_password_unknown_phone_and_locked_account_answer_alike(client, rt):
    done = register_account(client, rt)
    locked = register_account(client, rt)
    for _ in range(5):
        login(client, locked["phone"], WRONG_PASSWORD)

    answers = [
        login(client, done["phone"], WRONG_PASSWORD),
        login(client, new_phone(), STRONG_PASSWORD),
        login(client, locked["phone"], STRONG_PASSWORD),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_credentials"
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert answers[0].content == answers[1].content == answers[2].content
    assert "retry-after" not in answers[2].headers


def test_five_failures_lock_the_password_for_fifteen_minutes(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    for _ in range(4):
        assert login(client, phone, WRONG_PASSWORD).status_code == 401
    # Four failures: not locked yet.
    assert login(client, phone).status_code == 201
    for _ in range(5):
        assert login(client, phone, WRONG_PASSWORD).status_code == 401
    refused = login(client, phone)
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_credentials"
    rt.clock.advance(minutes=14, seconds=50)
    assert login(client, phone).status_code == 401
    rt.clock.advance(seconds=11)
    assert login(client, phone).status_code == 201


def test_a_successful_login_resets_the_failure_count(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    for _ in range(4):
        login(client, phone, WRONG_PASSWORD)
    assert login(client, phone).status_code == 201
    for _ in range(4):
        login(client, phone, WRONG_PASSWORD)
    assert login(client, phone).status_code == 201


def test_sms_code_login_works_during_a_password_lock_and_lifts_it(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    for _ in range(5):
        login(client, phone, WRONG_PASSWORD)
    assert login(client, phone).status_code == 401
    rt.clock.advance(seconds=61)
    by_code = send_and_login_with_code(client, rt, phone)
    assert by_code.status_code == 201, by_code.text
    assert login(client, phone).status_code == 201


def test_per_ip_login_limit(client, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "login_per_ip_minute", 3)
    done = register_account(client, rt)
    for _ in range(3):
        assert login(client, done["phone"]).status_code == 201
    over = login(client, done["phone"])
    assert over.status_code == 429
    assert over.json()["code"] == "rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    # Code logins count against the same budget.
    over_by_code = client.post(SESSIONS, json={"phone": done["phone"], "code": "123456"})
    assert over_by_code.status_code == 429


def test_session_list_marks_the_current_session(client, rt):
    done = register_account(client, rt)
    second = login(client, done["phone"]).json()
    listed = client.get(SESSIONS, headers=bearer(second["token"]))
    assert listed.status_code == 200
    sessions = {s["id"]: s for s in listed.json()}
    assert set(sessions) == {done["session"]["id"], second["id"]}
    assert sessions[second["id"]]["current"] is True
    assert sessions[done["session"]["id"]]["current"] is False
    for s in sessions.values():
        assert set(s) >= {"id", "created_at", "last_seen_at", "ip", "ip_region", "user_agent", "current"}
        assert "token" not in s


def test_revoking_another_session_ends_it(client, rt):
    done = register_account(client, rt)
    other = login(client, done["phone"]).json()
    answer = client.delete(f"{SESSIONS}/{other['id']}", headers=bearer(done["session"]["token"]))
    assert answer.status_code == 204
    assert me(client, other["token"]).status_code == 401
    assert me(client, done["session"]["token"]).status_code == 200
    listed = client.get(SESSIONS, headers=bearer(done["session"]["token"])).json()
    assert [s["id"] for s in listed] == [done["session"]["id"]]


def test_a_session_of_another_account_cannot_be_revoked(client, rt):
    mine = register_account(client, rt)
    theirs = register_account(client, rt)
    answer = client.delete(f"{SESSIONS}/{theirs['session']['id']}", headers=bearer(mine["session"]["token"]))
    assert answer.status_code == 404
    assert me(client, theirs["session"]["token"]).status_code == 200


def test_logout_ends_the_current_session(client, rt):
    done = register_account(client, rt)
    token = done["session"]["token"]
    assert client.delete(f"{SESSIONS}/current", headers=bearer(token)).status_code == 204
    after = me(client, token)
    assert after.status_code == 401 and after.json()["code"] == "not_authenticated"
    assert client.delete(f"{SESSIONS}/current", headers=bearer(token)).status_code == 401


def test_unknown_session_id_is_not_found(client, rt):
    done = register_account(client, rt)
    answer = client.delete(f"{SESSIONS}/{'0' * 32}", headers=bearer(done["session"]["token"]))
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_idle_session_expires(client, rt):
    done = register_account(client, rt)
    token = done["session"]["token"]
    rt.clock.advance(days=rt.settings.session_idle_days - 1)
    assert me(client, token).status_code == 200
    # Use just now resets the idle timer.
    rt.clock.advance(days=rt.settings.session_idle_days - 1)
    assert me(client, token).status_code == 200
    rt.clock.advance(days=rt.settings.session_idle_days + 1)
    assert me(client, token).status_code == 401
    assert client.get(SESSIONS, headers=bearer(token)).status_code == 401


def test_session_ends_at_its_absolute_lifetime_even_when_used(client, rt):
    done = register_account(client, rt)
    token = done["session"]["token"]
    absolute, step = rt.settings.session_absolute_days, rt.settings.session_idle_days - 1
    elapsed = 0
    while elapsed + step < absolute:
        rt.clock.advance(days=step)
        elapsed += step
        assert me(client, token).status_code == 200, elapsed
    rt.clock.advance(days=absolute - elapsed, seconds=1)
    assert me(client, token).status_code == 401


def test_cookie_authenticated_unsafe_request_needs_the_csrf_header(client, rt):
    done = register_account(client, rt)
    client.cookies.set("passport_session", done["session"]["token"])
    client.cookies.set("passport_csrf", "csrf-token-value")
    # Safe requests need no CSRF token.
    assert client.get("/api/v1/me").status_code == 200

    missing = client.patch("/api/v1/me", json={"nickname": "改名"})
    assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
    wrong = client.patch("/api/v1/me", json={"nickname": "改名"}, headers={"X-CSRF-Token": "other-value"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "csrf_failed"
    assert client.get("/api/v1/me").json()["nickname"] == "测试用户"
    ok = client.patch("/api/v1/me", json={"nickname": "改名"}, headers={"X-CSRF-Token": "csrf-token-value"})
    assert ok.status_code == 200 and ok.json()["nickname"] == "改名"

    logout = client.delete(f"{SESSIONS}/current")
    assert logout.status_code == 403 and logout.json()["code"] == "csrf_failed"


def test_header_without_csrf_cookie_is_refused(client, rt):
    done = register_account(client, rt)
    client.cookies.set("passport_session", done["session"]["token"])
    answer = client.patch("/api/v1/me", json={"nickname": "x"}, headers={"X-CSRF-Token": "anything"})
    assert answer.status_code == 403 and answer.json()["code"] == "csrf_failed"


def test_bearer_requests_need_no_csrf(client, rt):
    done = register_account(client, rt)
    client.cookies.clear()
    answer = client.patch("/api/v1/me", json={"nickname": "持令牌"}, headers=bearer(done["session"]["token"]))
    assert answer.status_code == 200 and answer.json()["nickname"] == "持令牌"
    assert client.delete(f"{SESSIONS}/current", headers=bearer(done["session"]["token"])).status_code == 204


@pytest.mark.parametrize(("status", "code"), [("suspended", "account_suspended"), ("frozen", "account_frozen"),
                                              ("terminated", "account_terminated")])
def test_refused_status_answers_403_with_reason_and_is_audited(client, rt, status, code):
    from datetime import timedelta

    from sqlalchemy import select, update

    from passport.accounts.models import Account
    from passport.audit.models import AuditEvent

    done = register_account(client, rt)
    until = rt.clock.now() + timedelta(days=3)
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == done["account"]["id"])
                   .values(status=status, status_reason="违反用户协议第五条", status_until=until))
    by_password = login(client, done["phone"])
    rt.clock.advance(seconds=61)  # the registration code was sent less than a minute ago
    for answer in (by_password, send_and_login_with_code(client, rt, done["phone"])):
        assert answer.status_code == 403
        assert answer.json()["code"] == code
        assert answer.json()["reason"] == "违反用户协议第五条"
        assert answer.json()["until"].startswith(until.strftime("%Y-%m-%dT%H:%M"))
    assert me(client, done["session"]["token"]).status_code == 401
    with rt.db.read() as db:
        refusals = db.scalars(select(AuditEvent.details).where(AuditEvent.action == "login.refused",
                                                               AuditEvent.subject_id == done["account"]["id"])).all()
    assert len(refusals) == 2


def test_a_login_that_raced_a_lockout_starts_no_session(client, rt):
    """The password was right when checked, but the account locked before the session was written:
    nothing is cleared and no session starts (on PostgreSQL both happen in one statement)."""
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from passport.accounts.models import Account
    from passport.audit.service import Origin
    from passport.sessions import service as sessions
    from passport.sessions.models import LoginSession

    account_id = register_account(client, rt)["account"]["id"]
    now = rt.clock.now()
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id)
                   .values(failed_logins=3, locked_until=now + timedelta(minutes=15)))
    origin = Origin(ip="127.0.0.1", channel="api")

    def sessions_of() -> int:
        with rt.db.read() as db:
            return db.scalar(select(func.count()).select_from(LoginSession)
                             .where(LoginSession.account_id == account_id))

    before = sessions_of()
    with rt.db.write() as db:
        assert sessions.start_session_if_unlocked(rt, db, account_id, "t" * 43, "password", origin, now) is None
    with rt.db.read() as db:
        assert db.get(Account, account_id).failed_logins == 3
    assert sessions_of() == before

    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id).values(locked_until=now - timedelta(seconds=1)))
    with rt.db.write() as db:
        issued = sessions.start_session_if_unlocked(rt, db, account_id, "u" * 43, "password", origin, now)
    assert issued is not None
    with rt.db.read() as db:
        account = db.get(Account, account_id)
        assert (account.failed_logins, account.locked_until) == (0, None)
        assert db.get(LoginSession, issued.id).account_id == account_id
    assert sessions_of() == before + 1
