"""Pooled PostgreSQL connections: an idle connection that died is replaced before use."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from passport import db as database
from passport_testing import DATABASE_URL

pytestmark = pytest.mark.skipif(not (DATABASE_URL or "").startswith("postgresql"),
                                reason="pool pinging applies to PostgreSQL only")


def test_a_connection_killed_while_idle_is_replaced(monkeypatch):
    engine = database.make_engine(DATABASE_URL, pool_size=1)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        killer = database.make_engine(DATABASE_URL, pool_size=1)
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            conn.commit()
        killer.dispose()
        monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
        with engine.connect() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert second != first
    finally:
        engine.dispose()


def test_a_busy_pool_does_not_ping(monkeypatch):
    engine = database.make_engine(DATABASE_URL, pool_size=1)
    statements = []
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        with engine.connect() as conn:
            conn.execute(text("SELECT 2"))
        assert statements == ["SELECT 2"]
    finally:
        engine.dispose()
