"""Pooled PostgreSQL connections (the engine's and the event loop's): an idle connection that died is
replaced before use; HotStatement on both."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from sqlalchemy import text

from passport import db as database
from passport_testing import DATABASE_URL, run_coroutine

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


# --- hot_async: the same statements on an event loop's own AsyncConnection pool -------------------

def _pid_after(seconds_param: str = "s"):
    from sqlalchemy import bindparam, func, literal_column, select

    return database.HotStatement(select(func.pg_backend_pid().label("pid"),
                                        func.pg_sleep(bindparam(seconds_param)).label("slept"),
                                        literal_column("1").label("one")))


def test_a_hot_statement_on_the_loop_commits_by_itself_and_reads_utc_rows():
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy import bindparam, insert, literal, select

    db, metadata, table = _hot_fixture()
    shanghai = timezone(timedelta(hours=8))
    at = datetime(2026, 11, 29, 18, 30, tzinfo=shanghai)
    put = database.HotStatement(insert(table).values(id=bindparam("id"), name=literal("fixed"),
                                                      at=bindparam("at", type_=database.UTCDateTime))
                                .returning(table.c.id, table.c.name, table.c.at))
    get = database.HotStatement(select(table.c.id).where(table.c.id == bindparam("id")))

    async def main():
        try:
            row = await db.hot_async(put, {"id": 1, "at": at})
            assert (row.id, row.name) == (1, "fixed")
            assert row.at == at and row.at.tzinfo is UTC
            assert await db.hot_async(get, {"id": 2}) is None
        finally:
            await db.close_async()

    try:
        run_coroutine(main())
        with db.engine.connect() as conn:  # committed by itself: another connection sees it
            assert conn.execute(select(table.c.name).where(table.c.id == 1)).scalar_one() == "fixed"
    finally:
        metadata.drop_all(db.engine)
        db.dispose()


def test_the_loop_pool_holds_at_most_its_size_and_reuses_its_connections():
    db = database.Database(DATABASE_URL, pool_size=8)  # a quarter: 2 connections for the loop
    probe = _pid_after()

    async def main():
        try:
            first = await asyncio.gather(*(db.hot_async(probe, {"s": 0.05}) for _ in range(6)))
            again = await asyncio.gather(*(db.hot_async(probe, {"s": 0}) for _ in range(6)))
            return {row.pid for row in first}, {row.pid for row in again}
        finally:
            await db.close_async()

    try:
        first, again = run_coroutine(main())
        assert len(first) == 2
        assert again <= first
    finally:
        db.dispose()


def test_a_failed_or_cancelled_statement_on_the_loop_drops_its_connection():
    from sqlalchemy import bindparam, literal_column, select

    db = database.Database(DATABASE_URL, pool_size=4)
    probe = _pid_after()
    broken = database.HotStatement(select(literal_column("1").label("one"))
                                   .where(literal_column("1") / bindparam("zero") == 1))

    async def main():
        try:
            used = (await db.hot_async(probe, {"s": 0})).pid
            with pytest.raises(psycopg.errors.DivisionByZero):
                await db.hot_async(broken, {"zero": 0})
            after_error = (await db.hot_async(probe, {"s": 0})).pid
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(db.hot_async(probe, {"s": 5}), 0.2)
            started = time.monotonic()
            after_cancel = (await db.hot_async(probe, {"s": 0})).pid
            return used, after_error, after_cancel, time.monotonic() - started
        finally:
            await db.close_async()

    try:
        used, after_error, after_cancel, took = run_coroutine(main())
        assert after_error != used  # the failed statement's connection was closed, not pooled again
        assert after_cancel != after_error
        assert took < 2  # not stuck behind the cancelled pg_sleep(5)
        with db.engine.connect() as conn:  # and no backend of theirs lingers
            alive = set(conn.execute(text("SELECT pid FROM pg_stat_activity")).scalars())
        assert not alive & {used, after_error, after_cancel}
    finally:
        db.dispose()


def test_a_loop_connection_killed_while_idle_is_replaced(monkeypatch):
    db = database.Database(DATABASE_URL, pool_size=4)
    probe = _pid_after()

    async def main():
        try:
            first = (await db.hot_async(probe, {"s": 0})).pid
            with db.engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
                conn.commit()
            monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
            return first, (await db.hot_async(probe, {"s": 0})).pid
        finally:
            await db.close_async()

    try:
        first, second = run_coroutine(main())
        assert second != first
    finally:
        db.dispose()
