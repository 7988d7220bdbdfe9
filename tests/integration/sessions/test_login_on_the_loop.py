"""The API's password login on PostgreSQL runs on the event loop (sessions.service.login_password_async):
its account read and its one-statement start go through the loop's own connections, the hash through
``Hasher.verify_async``, the per-IP limit through ``RateLimiter.hit_async`` — no request thread for a
plain success; anything else finishes on a thread, as the sync path does. An authenticated request
reads its session the same way (``sessions.lookup_async``); only the occasional last-seen touch
takes a thread."""

from __future__ import annotations

from datetime import timedelta

import anyio.to_thread
import pytest
from sqlalchemy import func, select

from passport.audit.models import AuditEvent
from passport.security.passwords import Hasher
from passport.sessions.models import LoginSession
from passport_testing import DATABASE_URL, STRONG_PASSWORD, bearer, register_account

pytestmark = pytest.mark.skipif(not (DATABASE_URL or "").startswith("postgresql"),
                                reason="the loop's path is PostgreSQL's (SQLite logins stay on a thread)")


@pytest.fixture(params=[1, 2], ids=["hash-on-the-loop", "hash-on-a-thread"])
def hasher(request, rt, monkeypatch):
    """The suite's Argon2 parameters with one hashing slot (the loop hashes) or two (a thread does)."""
    settings = rt.settings
    hasher = Hasher(settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism,
                    request.param)
    monkeypatch.setattr(rt, "hasher", hasher)
    yield hasher
    hasher.close()


@pytest.fixture()
def thread_hand_offs(monkeypatch):
    """What the request handed to AnyIO's worker threads (sync routes, run_in_threadpool, to_thread)."""
    handed = []
    run_sync = anyio.to_thread.run_sync

    async def recording(func, *args, **kwargs):
        handed.append(getattr(func, "__name__", None) or getattr(getattr(func, "func", None), "__name__", "?"))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", recording)
    return handed


# The per-process caches of maintenance windows and pending agreements refresh on a thread when a few
# seconds have passed, which a loaded machine may take between two requests: not the request's own.
CACHE_REFRESHES = ("active_maintenance", "pending_of")


def own(hand_offs: list[str]) -> list[str]:
    """What the request itself handed to a thread (the periodic cache refreshes left out)."""
    return [h for h in hand_offs if h not in CACHE_REFRESHES]


def counts(rt, account_id: str) -> tuple[int, int, int]:
    with rt.db.read() as db:
        sessions = db.scalar(select(func.count()).select_from(LoginSession)
                             .where(LoginSession.account_id == account_id))
        actions = list(db.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == account_id)))
    return sessions, actions.count("login.succeeded"), actions.count("login.failed")


def test_a_right_password_logs_in_without_a_thread(client, rt, hasher, thread_hand_offs):
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    before = counts(rt, account_id)
    thread_hand_offs.clear()
    answer = client.post("/api/v1/sessions", json={"login": done["phone"], "password": STRONG_PASSWORD})
    assert answer.status_code == 201, answer.text
    assert answer.json()["account"]["id"] == account_id
    assert own(thread_hand_offs) == []  # the per-IP limit too, in memory or in Redis (RateLimiter.hit_async)
    assert counts(rt, account_id) == (before[0] + 1, before[1] + 1, before[2])
    me = client.get("/api/v1/me", headers=bearer(answer.json()["token"]))
    assert me.status_code == 200 and me.json()["id"] == account_id


def test_a_wrong_password_is_counted_on_a_thread(client, rt, hasher, thread_hand_offs):
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    before = counts(rt, account_id)
    thread_hand_offs.clear()
    answer = client.post("/api/v1/sessions", json={"login": done["phone"], "password": STRONG_PASSWORD + "x"})
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials"
    assert own(thread_hand_offs) == ["_conclude_password"]
    assert counts(rt, account_id) == (before[0], before[1], before[2] + 1)


def test_an_authenticated_read_hands_nothing_to_a_thread_cached_or_not(client, rt, thread_hand_offs):
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    rt.sessions_cache.drop(lambda row: True)  # the first read comes from the database, the second from the cache
    thread_hand_offs.clear()
    for _ in range(2):
        answer = client.get("/api/v1/me", headers=headers)
        assert answer.status_code == 200 and answer.json()["id"] == done["account"]["id"]
    assert own(thread_hand_offs) == []


def test_a_session_idle_past_the_touch_interval_is_touched_on_a_thread(client, rt, thread_hand_offs):
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    rt.clock.advance(minutes=6)
    rt.sessions_cache.drop(lambda row: True)
    thread_hand_offs.clear()
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert own(thread_hand_offs) == ["touch"]
    with rt.db.read() as db:
        seen = db.scalar(select(LoginSession.last_seen_at).where(LoginSession.id == done["session"]["id"]))
    assert rt.clock.now() - seen < timedelta(seconds=30)  # moved forward from 6 minutes ago


def test_an_unknown_token_is_refused_on_the_loop(client, rt, thread_hand_offs):
    thread_hand_offs.clear()
    answer = client.get("/api/v1/me", headers={"Authorization": "Bearer " + "x" * 43})
    assert answer.status_code == 401 and answer.json()["code"] == "not_authenticated"
    assert own(thread_hand_offs) == []
