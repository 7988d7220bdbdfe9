"""Pooled PostgreSQL connections (the engine's and the event loop's): an idle connection that died is
replaced before use; HotStatement on both."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
)

from passport import db as database
from passport_testing import DATABASE_URL, run_coroutine

pytestmark = pytest.mark.skipif(not (DATABASE_URL or "").startswith("postgresql"),
                                reason="pool pinging applies to PostgreSQL only")


def pooled_pid(engine) -> int:
    """The backend of the engine's (one) pooled connection."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def terminate(pid: int) -> None:
    """End a backend from a connection of its own, as a server restart or a cut network would."""
    killer = database.make_engine(DATABASE_URL, pool_size=1)
    try:
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()
    finally:
        killer.dispose()


def test_a_connection_killed_while_idle_is_replaced(monkeypatch):
    engine = database.make_engine(DATABASE_URL, pool_size=1)
    try:
        first = pooled_pid(engine)
        terminate(first)
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

@pytest.fixture()
def databases():
    """``databases(pool_size)``: a Database on the suite's PostgreSQL, disposed after the test."""
    made = []

    def make(pool_size: int) -> database.Database:
        made.append(database.Database(DATABASE_URL, pool_size=pool_size))
        return made[-1]

    yield make
    for db in made:
        db.dispose()


@pytest.fixture()
def probe_table(databases):
    """(db, table): a one-connection Database and a fresh probe table, dropped after the test."""
    metadata = MetaData()
    table = Table("hot_statement_probe", metadata, Column("id", Integer, primary_key=True),
                  Column("name", String(20)), Column("at", database.UTCDateTime),
                  Column("plain_at", DateTime(timezone=True)))
    db = databases(1)
    metadata.drop_all(db.engine)
    metadata.create_all(db.engine)
    yield db, table
    metadata.drop_all(db.engine)


SHANGHAI_EVENING = datetime(2026, 11, 29, 18, 30, tzinfo=timezone(timedelta(hours=8)))


def _put(table) -> database.HotStatement:
    return database.HotStatement(insert(table).values(id=bindparam("id"), name=literal("fixed"),
                                                      at=bindparam("at", type_=database.UTCDateTime))
                                 .returning(table.c.id, table.c.name, table.c.at))


def _by_id(table) -> database.HotStatement:
    return database.HotStatement(select(table.c.id).where(table.c.id == bindparam("id")))


def _name_of(db, table, row_id: int) -> str:
    with db.engine.connect() as conn:  # another connection: what was committed
        return conn.execute(select(table.c.name).where(table.c.id == row_id)).scalar_one()


def test_a_hot_statement_commits_by_itself_and_reads_utc_rows(probe_table):
    db, table = probe_table
    with db.engine.connect() as conn:  # the one pooled connection now reads times in +08:00
        conn.exec_driver_sql("SET timezone = 'Asia/Shanghai'")
        conn.commit()
    row = db.hot(_put(table), {"id": 1, "at": SHANGHAI_EVENING})
    assert (row.id, row.name) == (1, "fixed")
    assert row.at == SHANGHAI_EVENING and row.at.tzinfo is UTC
    # Committed without a transaction around it: another connection sees it at once.
    assert _name_of(db, table, 1) == "fixed"
    # The pooled connection went back in its normal mode: a Session transaction still rolls back.
    with pytest.raises(RuntimeError), db.write() as session:
        session.execute(insert(table).values(id=2, name="rolled back"))
        raise RuntimeError("roll back")
    assert db.hot(_by_id(table), {"id": 2}) is None


def test_a_hot_statement_refuses_expanding_parameters(probe_table):
    db, table = probe_table
    with pytest.raises(ValueError, match="expanding"):
        db.hot(database.HotStatement(select(table.c.id).where(table.c.name.in_(["a", "b"]))), {})


def test_a_hot_statement_on_a_connection_that_died_is_not_pooled_again(probe_table):
    db, table = probe_table
    first = pooled_pid(db.engine)
    terminate(first)
    probe = database.HotStatement(select(table.c.id))
    with pytest.raises(Exception):  # noqa: B017 - psycopg's error for a terminated backend
        db.hot(probe, {})
    assert db.hot(probe, {}) is None  # a new connection, not the dead one
    assert pooled_pid(db.engine) != first


# --- hot_async: the same statements on an event loop's own AsyncConnection pool -------------------

# The backend's pid, after sleeping s seconds.
PID_AFTER = database.HotStatement(select(func.pg_backend_pid().label("pid"),
                                         func.pg_sleep(bindparam("s")).label("slept")))


def on_a_loop(db, work):
    """Run ``await work()`` on a fresh event loop, then close that loop's connections."""
    async def main():
        try:
            return await work()
        finally:
            await db.close_async()

    return run_coroutine(main())


def test_a_hot_statement_on_the_loop_commits_by_itself_and_reads_utc_rows(probe_table):
    db, table = probe_table

    async def work():
        row = await db.hot_async(_put(table), {"id": 1, "at": SHANGHAI_EVENING})
        assert (row.id, row.name) == (1, "fixed")
        assert row.at == SHANGHAI_EVENING and row.at.tzinfo is UTC
        assert await db.hot_async(_by_id(table), {"id": 2}) is None

    on_a_loop(db, work)
    assert _name_of(db, table, 1) == "fixed"  # committed by itself


def test_the_loop_pool_holds_at_most_its_size_and_reuses_its_connections(databases):
    db = databases(8)  # a quarter: 2 connections for the loop

    async def work():
        first = await asyncio.gather(*(db.hot_async(PID_AFTER, {"s": 0.05}) for _ in range(6)))
        again = await asyncio.gather(*(db.hot_async(PID_AFTER, {"s": 0}) for _ in range(6)))
        return {row.pid for row in first}, {row.pid for row in again}

    first, again = on_a_loop(db, work)
    assert len(first) == 2
    assert again <= first


def test_a_failed_or_cancelled_statement_on_the_loop_drops_its_connection(databases):
    db = databases(4)
    broken = database.HotStatement(select(literal_column("1").label("one"))
                                   .where(literal_column("1") / bindparam("zero") == 1))

    async def work():
        used = (await db.hot_async(PID_AFTER, {"s": 0})).pid
        with pytest.raises(psycopg.errors.DivisionByZero):
            await db.hot_async(broken, {"zero": 0})
        after_error = (await db.hot_async(PID_AFTER, {"s": 0})).pid
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(db.hot_async(PID_AFTER, {"s": 5}), 0.2)
        started = time.monotonic()
        after_cancel = (await db.hot_async(PID_AFTER, {"s": 0})).pid
        return used, after_error, after_cancel, time.monotonic() - started

    used, after_error, after_cancel, took = on_a_loop(db, work)
    assert after_error != used  # the failed statement's connection was closed, not pooled again
    assert after_cancel != after_error
    assert took < 2  # not stuck behind the cancelled pg_sleep(5)
    with db.engine.connect() as conn:  # and no backend of theirs lingers
        alive = set(conn.execute(text("SELECT pid FROM pg_stat_activity")).scalars())
    assert not alive & {used, after_error, after_cancel}


def test_a_loop_connection_killed_while_idle_is_replaced(databases, monkeypatch):
    db = databases(4)

    async def work():
        first = (await db.hot_async(PID_AFTER, {"s": 0})).pid
        terminate(first)
        monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
        return first, (await db.hot_async(PID_AFTER, {"s": 0})).pid

    first, second = on_a_loop(db, work)
    assert second != first
