"""Engine, sessions and the declarative base. Migrations live in ``migrations/`` beside this file."""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, exc
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from passport.loops import PerLoop

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MODEL_MODULES = (
    "passport.accounts.models",
    "passport.accounts.refusals",
    "passport.credentials.models",
    "passport.sessions.models",
    "passport.agreements.models",
    "passport.audit.models",
    "passport.admin.models",
    "passport.reviews.models",
    "passport.moderation.models",
    "passport.notify.models",
    "passport.realname.models",
    "passport.cancellation.models",
    "passport.passwordless.models",
    "passport.oidc.models",
    "passport.reports.models",
)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def import_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


@dataclass(frozen=True)
class Limits:
    """How long PostgreSQL work may take (0: no limit). Request work runs with statement and lock
    timeouts (PASSPORT_DATABASE_STATEMENT_TIMEOUT_MS, _LOCK_TIMEOUT_MS): a locked table or a stuck
    query fails the request (503) instead of holding its thread. Migrations, the CLI and the worker
    run without them."""

    statement_timeout_ms: int = 0
    lock_timeout_ms: int = 0
    connect_timeout_seconds: int = 10

    def connect_args(self) -> dict:
        args: dict = {"connect_timeout": self.connect_timeout_seconds}
        options = [f"-c {name}={value}" for name, value in (("statement_timeout", self.statement_timeout_ms),
                                                             ("lock_timeout", self.lock_timeout_ms)) if value]
        if options:
            args["options"] = " ".join(options)
        return args


# A dependency that is down or too slow: the answer is 503 service_unavailable, not 500 (API.md).
_UNAVAILABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError, psycopg.OperationalError,
                psycopg.InterfaceError)


def unavailable(error: BaseException) -> bool:
    """The database cannot be reached, dropped the connection, or cancelled a statement that ran or
    waited for a lock too long (PostgreSQL's QueryCanceled and LockNotAvailable are OperationalErrors;
    so is SQLite's "database is locked")."""
    return isinstance(error, _UNAVAILABLE) or (isinstance(error, exc.DBAPIError) and error.connection_invalidated)


def disconnected(error: BaseException) -> bool:
    """The connection was lost (a database restart, a network cut): the same work on a new
    connection may well succeed. SQLAlchemy has then already replaced its pooled connections."""
    if isinstance(error, exc.DBAPIError):
        return bool(error.connection_invalidated)
    return isinstance(error, psycopg.OperationalError) and _broken(error)


def _broken(error: psycopg.Error) -> bool:
    # A lost server shows as an OperationalError with no SQLSTATE, a connection exception (class 08)
    # or the server's own word that it is shutting down (57P01-57P03); a cancelled or refused
    # statement (a timeout, a lock) has another SQLSTATE and left the connection usable.
    state = getattr(error, "sqlstate", None)
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def make_engine(url: str, pool_size: int = 10, limits: Limits | None = None) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=pool_size, max_overflow=20)
        _sqlite_transactions(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_size=pool_size, max_overflow=20,
                           connect_args=(limits or Limits()).connect_args())
    _ping_when_idle(engine)
    return engine


# A connection that sat in the pool longer than this is pinged before use. A busy pool is not:
# pool_pre_ping would cost a round trip on every checkout (two per login). A connection that breaks
# while busy fails its statement, and SQLAlchemy then drops every pooled connection.
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, _proxy) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True  # the ping must not leave a transaction open
            try:
                dbapi_connection.execute("SELECT 1")
            finally:
                dbapi_connection.autocommit = autocommit
        except Exception as error:  # noqa: BLE001 - any failure means: use another connection
            raise exc.DisconnectionError() from error


def _sqlite_transactions(engine: Engine) -> None:
    # pysqlite's implicit BEGIN is deferred: two writers that both read first deadlock on upgrade.
    # Write units of work start with BEGIN IMMEDIATE so SQLite serialises them up front.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode != "NONE":  # a lone SELECT is atomic without BEGIN/ROLLBACK around it
            conn.exec_driver_sql(f"BEGIN {mode}")


class HotStatement:
    """A Core statement that a hot path runs on PostgreSQL with less than SQLAlchemy's per-execution
    work: compiled once, executed straight on a pooled psycopg connection in autocommit (one
    statement, atomic by itself, no BEGIN/COMMIT round trips), prepared on the server, and its row
    read into a named tuple built from the statement's own columns. ``Database.hot`` runs it on a
    connection of the engine's pool (from a thread); ``Database.hot_async`` on one of the running
    event loop's ``AsyncPool`` (no thread at all: the API's password login).

    For a password login this halves the client CPU of its two statements (0.47 → 0.19 ms in a
    loop, bench/README.md). What the bypass skips, and why that is safe here: bind processing —
    the only custom type, ``UTCDateTime``, turns aware datetimes into UTC, and callers pass aware
    UTC datetimes; result processing — ``UTCDateTime`` columns are converted to UTC here; expanding
    ``IN`` parameters — refused at compile time, so constants must be ``literal()``s."""

    def __init__(self, statement: Executable, *, retry: bool = False) -> None:
        self.statement = statement
        # A read: run once more on a new connection when the first one turns out to be dead (the
        # database restarted since it was pooled). Never for a write, which may have committed.
        self.retry = retry
        self._compiled: tuple[str, dict, type, tuple[int, ...]] | None = None

    def compiled(self, dialect) -> tuple[str, dict, type, tuple[int, ...]]:
        if self._compiled is None:
            compiled = self.statement.compile(dialect=dialect)
            if "POSTCOMPILE" in compiled.string:
                raise ValueError("HotStatement: expanding parameters are not supported; bind constants "
                                 "as literal() values")
            columns = list(self.statement.exported_columns)  # a SELECT's columns, or what DML RETURNs
            row = namedtuple("HotRow", [column.key for column in columns])  # noqa: PYI024 - built at run time
            utc = tuple(i for i, column in enumerate(columns) if isinstance(column.type, UTCDateTime))
            self._compiled = (compiled.string, dict(compiled.params), row, utc)
        return self._compiled


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _hot_row(row: type, utc: tuple[int, ...], values: tuple | None):
    if values is None:
        return None
    if utc:
        values = list(values)
        for i in utc:
            values[i] = _as_utc(values[i])
    return row._make(values)


class AsyncPool:
    """At most ``size`` autocommit psycopg ``AsyncConnection``s for one event loop, opened when
    needed and kept for reuse. A connection idle longer than ``PING_AFTER_IDLE_SECONDS`` is pinged
    first (as the engine's pool does); one whose statement failed, or was cancelled, is closed, never
    reused: its state is unknown."""

    def __init__(self, conninfo: str, size: int, connect_args: dict | None = None) -> None:
        self._conninfo = conninfo
        self._connect_args = connect_args or {}
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[psycopg.AsyncConnection, float]] = []
        self._closed = False

    async def fetchone(self, sql: str, params: dict, retry: bool = False) -> tuple | None:
        async with self._slots:
            conn = await self._checkout()
            try:
                cursor = await conn.execute(sql, params, prepare=True)
                values = await cursor.fetchone()
            except psycopg.OperationalError as error:
                await _close_quietly(conn)
                if not _broken(error):
                    raise
                # The server went away: the idle connections are as dead as this one.
                await self._drop_idle()
                if not retry:
                    raise
                conn = await self._connect()
                try:
                    cursor = await conn.execute(sql, params, prepare=True)
                    values = await cursor.fetchone()
                except BaseException:
                    await _close_quietly(conn)
                    raise
            except BaseException:
                await _close_quietly(conn)
                raise
            if self._closed:
                await _close_quietly(conn)
            else:
                self._idle.append((conn, time.monotonic()))
            return values

    async def _checkout(self) -> psycopg.AsyncConnection:
        while self._idle:
            conn, since = self._idle.pop()
            if time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
                return conn
            try:
                await conn.execute("SELECT 1")
                return conn
            except BaseException as error:
                await _close_quietly(conn)
                if not isinstance(error, Exception):
                    raise  # cancelled: stop here; any other failure: try the next connection
        return await self._connect()

    async def _connect(self) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, **self._connect_args)

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn, _since in idle:
            await _close_quietly(conn)

    async def close(self) -> None:
        self._closed = True
        await self._drop_idle()


async def _close_quietly(conn: psycopg.AsyncConnection) -> None:
    try:
        await conn.close()
    except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail; it is gone either way
        pass


class Database:
    def __init__(self, url: str, pool_size: int = 10, limits: Limits | None = None,
                 session_info: dict | None = None) -> None:
        self.url = url
        self.limits = limits or Limits()
        self.engine = make_engine(url, pool_size, self.limits)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        # session_info: what every session carries in ``Session.info`` (the audit chain's keys, which
        # ``audit.record`` finds there: it is called with the session alone).
        self._write = sessionmaker(bind=writer, expire_on_commit=False, info=session_info)
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False, info=session_info)
        # A lone read needs no transaction: no BEGIN/ROLLBACK around it on SQLite, and on PostgreSQL
        # autocommit saves the two round trips psycopg would spend on them.
        self._single = (self.engine.execution_options(sqlite_begin="NONE") if self.is_sqlite
                        else self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        # hot_async's connections: a quarter of the engine's pool, for a few short statements.
        self._async_pools = PerLoop(lambda: AsyncPool(
            self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
            max(2, pool_size // 4), self.limits.connect_args()))

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on any exception."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A bare connection for a single read statement on a hot path: no ORM session and, on
        SQLite, no BEGIN/ROLLBACK around it."""
        with self._single.connect() as conn:
            yield conn

    def hot(self, statement: HotStatement, params: dict):
        """Run a ``HotStatement`` (PostgreSQL only) in autocommit; its first row or None."""
        sql, defaults, row, utc = statement.compiled(self.engine.dialect)
        try:
            values = self._hot_once(sql, defaults | params)
        except psycopg.OperationalError as error:
            if not (statement.retry and _broken(error)):
                raise
            values = self._hot_once(sql, defaults | params)  # the pool was renewed: a new connection
        return _hot_row(row, utc, values)

    def _hot_once(self, sql: str, params: dict) -> tuple | None:
        pooled = self.engine.raw_connection()  # a pool checkout; the idle-ping listener applies
        try:
            conn = pooled.driver_connection
            conn.autocommit = True
            try:
                cursor = conn.execute(sql, params, prepare=True)
                return cursor.fetchone()
            finally:
                if not conn.closed:
                    conn.autocommit = False
        except Exception as error:
            if pooled.driver_connection is None or pooled.driver_connection.closed:
                # A broken connection must not go back to the pool, nor the others opened before it
                # (SQLAlchemy's own handling of a disconnect, which this bypass would otherwise skip).
                self.engine.pool._invalidate(pooled, error)  # noqa: SLF001
            raise
        finally:
            pooled.close()

    async def hot_async(self, statement: HotStatement, params: dict):
        """``hot`` for an event loop: the same statement on this loop's own psycopg
        ``AsyncConnection`` pool (see ``AsyncPool``), without a thread hand-off."""
        sql, defaults, row, utc = statement.compiled(self.engine.dialect)
        return _hot_row(row, utc, await self._async_pools.get().fetchone(sql, defaults | params, statement.retry))

    async def close_async(self) -> None:
        """Close the connections of the running loop's async pool (the app's lifespan, at shutdown)."""
        pool = self._async_pools.pop()
        if pool is not None:
            await pool.close()

    def dispose(self) -> None:
        self.engine.dispose()


def migrate(url: str, revision: str = "head") -> None:
    # Loaded here on purpose: only `passport migrate` needs Alembic, not every serving process.
    from alembic import command
    from alembic.config import Config  # as above

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)
