"""Issue 16: Redis and PostgreSQL that go down, freeze or restart under a running passport. The test
starts its own servers on their own ports (outage_testing.py) and stops them; the shared ones are
never touched. While a dependency is down: 503 ``service_unavailable`` with Retry-After, nothing gets
through unchecked, no request is held past the configured timeouts; after a restart: normal answers
without restarting passport."""

from __future__ import annotations

import time

import psycopg
import pytest
from fastapi.testclient import TestClient

from outage_testing import OwnPostgres, OwnRedis, have_postgres, have_redis
from passport_testing import (
    STRONG_PASSWORD,
    bearer,
    login,
    make_settings,
    new_phone,
    outbox_messages,
    publish_agreements,
    register_account,
)

pytestmark = pytest.mark.skipif(not (have_redis() and have_postgres()),
                                reason="needs redis-server and PostgreSQL's initdb/pg_ctl/postgres")

REDIS_TIMEOUT = 0.5
LOCK_TIMEOUT_MS = 500
STATEMENT_TIMEOUT_MS = 1500


@pytest.fixture(scope="module")
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_pg():
    server = OwnPostgres()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def outage_rt(own_redis, own_pg, tmp_path_factory):
    from passport.db import migrate
    from passport.runtime import build_runtime

    settings = make_settings(tmp_path_factory.mktemp("outage"), database_url=own_pg.url, redis_url=own_redis.url,
                             redis_timeout_seconds=REDIS_TIMEOUT, database_lock_timeout_ms=LOCK_TIMEOUT_MS,
                             database_statement_timeout_ms=STATEMENT_TIMEOUT_MS, database_connect_timeout_seconds=2,
                             session_cache_seconds=0, login_per_ip_minute=1000)
    migrate(settings.resolved_database_url)
    runtime = build_runtime(settings, pool_size=4, serving=True)
    publish_agreements(runtime)
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def outage_client(outage_rt):
    from passport.app import create_app

    with TestClient(create_app(runtime=outage_rt)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def account(outage_client, outage_rt):
    return register_account(outage_client, outage_rt)


def timed(call, *args, **kwargs):
    started = time.monotonic()
    answer = call(*args, **kwargs)
    return answer, time.monotonic() - started


def assert_unavailable(answer) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "service_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    assert "Traceback" not in answer.text and "psycopg" not in answer.text and "redis" not in answer.text.lower()


def sent_codes(rt, phone: str) -> int:
    return sum(1 for message in outbox_messages(rt) if message["to"].endswith(phone[-8:]))


def test_redis_down_fails_closed_for_codes_and_registration_then_recovers(own_redis, outage_client, outage_rt,
                                                                           account):
    phone = new_phone()
    own_redis.stop()
    try:
        code, took = timed(outage_client.post, "/api/v1/verification-codes", json={"to": phone, "purpose": "register"})
        assert_unavailable(code)
        assert took < 2
        assert sent_codes(outage_rt, phone) == 0  # nothing went out unchecked
        registered = outage_client.post("/api/v1/accounts", json={
            "phone": phone, "code": "123456", "password": STRONG_PASSWORD, "nickname": "x",
            "agreements": {"user-agreement": "1.0", "privacy-policy": "1.0"}})
        assert_unavailable(registered)
        page = outage_client.post("/send-code", data={"purpose": "register", "phone": phone},
                                  headers={"Accept": "text/html"})
        assert page.status_code in (403, 503)  # a page: the CSRF check, or the same refusal as a page
    finally:
        own_redis.start()
    assert outage_client.post("/api/v1/verification-codes",
                              json={"to": phone, "purpose": "register"}).status_code == 202
    assert sent_codes(outage_rt, phone) == 1


def test_redis_down_password_login_counts_in_the_process(own_redis, outage_client, outage_rt, account,
                                                         monkeypatch):
    monkeypatch.setattr(outage_rt.settings, "login_per_ip_minute", 3)
    own_redis.stop()
    try:
        answers = [login(outage_client, account["phone"], "wrong-Password-1") for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 401]
        refused = login(outage_client, account["phone"])
        assert refused.status_code == 429, refused.text  # still counted while Redis is away
    finally:
        own_redis.start()
    outage_rt.limiter.reset()
    assert login(outage_client, account["phone"]).status_code == 201


def test_frozen_redis_holds_no_request_past_its_timeout(own_redis, outage_client, outage_rt, account):
    own_redis.freeze()
    try:
        code, took = timed(outage_client.post, "/api/v1/verification-codes",
                           json={"to": new_phone(), "purpose": "register"})
        assert_unavailable(code)
        assert took < REDIS_TIMEOUT * 4
        logged_in, took = timed(login, outage_client, account["phone"])
        assert logged_in.status_code == 201, logged_in.text
        assert took < REDIS_TIMEOUT * 4 + 1
    finally:
        own_redis.thaw()
    outage_rt.limiter.reset()


def test_database_down_answers_503_then_recovers_without_a_restart(own_pg, outage_client, account):
    token = account["session"]["token"]
    assert outage_client.get("/api/v1/sessions", headers=bearer(token)).status_code == 200
    own_pg.stop()
    try:
        for call in (lambda: outage_client.get("/api/v1/sessions", headers=bearer(token)),
                     lambda: login(outage_client, account["phone"]),
                     lambda: outage_client.get(f"/api/v1/organizations/{'0' * 32}", headers=bearer(token))):
            answer, took = timed(call)
            assert_unavailable(answer)
            assert took < 3
            assert answer.headers.get("connection") != "close"
        page = outage_client.get("/account", headers={"Accept": "text/html"}, cookies={"passport_session": token})
        assert page.status_code == 503
        assert "Retry-After" in page.headers and "<html" in page.text
    finally:
        own_pg.start()
    assert outage_client.get("/api/v1/sessions", headers=bearer(token)).status_code == 200
    assert login(outage_client, account["phone"]).status_code == 201


def test_a_quick_database_restart_fails_no_request(own_pg, outage_client, account):
    token = account["session"]["token"]
    for _ in range(3):  # connections in every pool: the engine's and the event loop's
        assert outage_client.get("/api/v1/sessions", headers=bearer(token)).status_code == 200
        assert login(outage_client, account["phone"]).status_code == 201
    own_pg.stop()
    own_pg.start()
    for _ in range(3):
        listed = outage_client.get("/api/v1/sessions", headers=bearer(token))
        assert listed.status_code == 200, listed.text
        assert login(outage_client, account["phone"]).status_code == 201


def test_a_locked_table_fails_the_request_within_the_lock_timeout(own_pg, outage_client, account):
    token = account["session"]["token"]
    with psycopg.connect(own_pg.url) as holder:
        holder.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        answer, took = timed(outage_client.get, "/api/v1/sessions", headers=bearer(token))
        assert_unavailable(answer)
        assert took < LOCK_TIMEOUT_MS / 1000 * 2 + 1
        holder.rollback()
    assert outage_client.get("/api/v1/sessions", headers=bearer(token)).status_code == 200


def test_a_slow_statement_is_cancelled(outage_rt):
    from sqlalchemy import text

    from passport.db import unavailable

    with pytest.raises(Exception) as raised, outage_rt.db.read() as db:
        db.execute(text("SELECT pg_sleep(5)"))
    assert unavailable(raised.value)


def test_passwordless_sign_in_fails_closed_while_redis_or_the_database_is_down(own_redis, own_pg, outage_client):
    """Issue 21: QR requests and passkey options are rate limited (Redis down: 503, nothing created);
    a QR status poll needs the database (down: 503)."""
    own_redis.stop()
    try:
        assert_unavailable(outage_client.post("/api/v1/qr-logins"))
        assert_unavailable(outage_client.post("/api/v1/sessions/passkey/options", json={}))
    finally:
        own_redis.start()
    created = outage_client.post("/api/v1/qr-logins")
    assert created.status_code == 201, created.text
    own_pg.stop()
    try:
        assert_unavailable(outage_client.get(f"/api/v1/qr-logins/{created.json()['id']}"))
    finally:
        own_pg.start()
    assert outage_client.get(f"/api/v1/qr-logins/{created.json()['id']}").json()["status"] == "pending"
