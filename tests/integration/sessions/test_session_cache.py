"""The per-process sessions cache: this node sees its own changes at once, other nodes' changes
within ``session_cache_seconds``."""

from __future__ import annotations

import time

from sqlalchemy import update

from passport.sessions.models import LoginSession
from passport_testing import bearer, register_account


def test_logout_on_this_node_takes_effect_at_once_even_when_cached(client, rt):
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    assert client.get("/api/v1/me", headers=headers).status_code == 200  # now cached
    assert client.delete("/api/v1/sessions/current", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_profile_change_shows_at_once_in_me(client, rt):
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    assert client.get("/api/v1/me", headers=headers).json()["nickname"] == "测试用户"
    assert client.patch("/api/v1/me", json={"nickname": "新名字"}, headers=headers).status_code == 200
    assert client.get("/api/v1/me", headers=headers).json()["nickname"] == "新名字"


def test_revocation_by_another_node_reaches_this_one_within_the_cache_lifetime(client, rt, monkeypatch):
    monkeypatch.setattr(rt.sessions_cache, "ttl", 0.3)
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    # Another node revokes: the database changes, this process's cache does not hear of it.
    with rt.db.write() as db:
        db.execute(update(LoginSession).where(LoginSession.id == done["session"]["id"])
                   .values(revoked_at=rt.clock.now()))
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    time.sleep(0.35)
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_expiry_is_checked_on_every_use_of_a_cached_session(client, rt):
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    rt.clock.advance(days=rt.settings.session_absolute_days, seconds=1)
    assert client.get("/api/v1/me", headers=headers).status_code == 401
