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


# --- HotStatement: a Core statement run straight on a pooled psycopg connection ------------------

def _hot_fixture():
    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table

    metadata = MetaData()
    table = Table("hot_statement_probe", metadata, Column("id", Integer, primary_key=True),
                  Column("name", String(20)), Column("at", database.UTCDateTime),
                  Column("plain_at", DateTime(timezone=True)))
    db = database.Database(DATABASE_URL, pool_size=1)
    metadata.drop_all(db.engine)
    metadata.create_all(db.engine)
    return db, metadata, table


def test_a_hot_statement_commits_by_itself_and_reads_utc_rows():
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy import bindparam, insert, literal, select

    db, metadata, table = _hot_fixture()
    try:
        shanghai = timezone(timedelta(hours=8))
        at = datetime(2026, 11, 29, 18, 30, tzinfo=shanghai)
        put = database.HotStatement(insert(table).values(id=bindparam("id"), name=literal("fixed"),
                                                          at=bindparam("at", type_=database.UTCDateTime))
                                    .returning(table.c.id, table.c.name, table.c.at))
        with db.engine.connect() as conn:  # the one pooled connection now reads times in +08:00
            conn.exec_driver_sql("SET timezone = 'Asia/Shanghai'")
            conn.commit()
        row = db.hot(put, {"id": 1, "at": at})
        assert (row.id, row.name) == (1, "fixed")
        assert row.at == at and row.at.tzinfo is UTC
        # Committed without a transaction around it: another connection sees it at once.
        with db.engine.connect() as conn:
            assert conn.execute(select(table.c.name).where(table.c.id == 1)).scalar_one() == "fixed"
        # The pooled connection went back in its normal mode: a Session transaction still rolls back.
        with pytest.raises(RuntimeError), db.write() as session:
            session.execute(insert(table).values(id=2, name="rolled back"))
            raise RuntimeError("roll back")
        assert db.hot(database.HotStatement(select(table.c.id).where(table.c.id == bindparam("id"))),
                      {"id": 2}) is None
    finally:
        metadata.drop_all(db.engine)
        db.dispose()


def test_a_hot_statement_refuses_expanding_parameters():
    from sqlalchemy import select

    db, metadata, table = _hot_fixture()
    try:
        with pytest.raises(ValueError, match="expanding"):
            db.hot(database.HotStatement(select(table.c.id).where(table.c.name.in_(["a", "b"]))), {})
    finally:
        metadata.drop_all(db.engine)
        db.dispose()


def test_a_hot_statement_on_a_connection_that_died_is_not_pooled_again():
    from sqlalchemy import select

    db, metadata, table = _hot_fixture()
    try:
        with db.engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        killer = database.make_engine(DATABASE_URL, pool_size=1)
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            conn.commit()
        killer.dispose()
        probe = database.HotStatement(select(table.c.id))
        with pytest.raises(Exception):  # noqa: B017 - psycopg's error for a terminated backend
            db.hot(probe, {})
        assert db.hot(probe, {}) is None  # a new connection, not the dead one
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    finally:
        metadata.drop_all(db.engine)
        db.dispose()
