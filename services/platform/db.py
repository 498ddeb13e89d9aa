"""Engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from services.platform import public_reads


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:// URLs and pick the async driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


def is_sqlite(url: str) -> bool:
    return make_url(normalise_url(url)).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control from the driver so that write transactions can BEGIN IMMEDIATE (below).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; busy_timeout makes writers queue instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # A write transaction takes SQLite's write lock up front: a deferred one that read first could
    # not upgrade once another writer committed, and would fail instead of waiting its turn.
    mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


WRITE_OPTION = "chain_write"


def create_engine(
    url: str, *, lock_timeout_ms: int = 5_000, statement_timeout_ms: int = 30_000, **kwargs: Any
) -> AsyncEngine:
    """Create the async engine for `url`; SQLite files get WAL and foreign keys."""
    url = normalise_url(url)
    # A statement's parameters hold personal data (a member's name, a birthday): never in errors or logs.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # JSON columns (specs, images) on every catalog read. PostgreSQL only: SQLite hands a stored 5 back as an int,
    # and SQLAlchemy passes it through when json.loads raises TypeError, which orjson does not raise.
    kwargs.setdefault("json_deserializer", orjson.loads)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # A request never waits on a lock or runs a statement longer than this; it fails retryable instead.
    settings = {"lock_timeout": str(lock_timeout_ms), "statement_timeout": str(statement_timeout_ms)}
    kwargs.setdefault("connect_args", {}).setdefault("server_settings", {}).update(settings)
    engine = create_async_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine.sync_engine.pool, "checkin", _mark_idle)
        event.listen(engine.sync_engine.pool, "checkout", partial(_ping_if_idle, engine.dialect))
    return engine


# A pooled connection idle longer than this is pinged before it is handed out; one used more recently is not.
# (pool_pre_ping pings every checkout: on asyncpg that is three round trips - BEGIN, a query, ROLLBACK - on each.)
IDLE_PING_S = 5.0


def _mark_idle(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dialect: Dialect, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """A connection the server dropped while it sat in the pool is replaced, not handed out.

    A connection that fails while in use is invalidated by SQLAlchemy together with every connection pooled
    before it, so the request after a database restart gets fresh connections either way.
    """
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_S:
        return
    try:
        alive = dialect.do_ping(dbapi_conn)
    except Exception as error:
        raise exc.DisconnectionError("pooled connection is gone") from error
    if not alive:
        raise exc.DisconnectionError("pooled connection is gone")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    public_reads.watch_writes()  # every session's writes name what public reads they change
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads outside a mutation: loaders, query resolvers, the bearer-token check.

    On PostgreSQL they run in autocommit: each statement of a READ COMMITTED transaction takes its own snapshot
    anyway, so BEGIN and ROLLBACK around reads cost two round trips and buy nothing. SQLite keeps its
    (in-process, free) deferred transactions.
    """
    if engine.dialect.name == "postgresql":
        return create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
    return create_sessionmaker(engine)


def insert_new(session: AsyncSession, model: type[Any], rows: Any, *, unique: list[str]) -> Any:
    """INSERT that skips rows whose `unique` columns exist already (ON CONFLICT DO NOTHING, both dialects).

    Under concurrency the insert waits for a transaction holding the same key, so exactly one writer wins.
    """
    return dialect_insert(session, model).values(rows).on_conflict_do_nothing(index_elements=unique)


def dialect_name(session: AsyncSession) -> str:
    """ "postgresql" or "sqlite": the database the session talks to."""
    return session.bind.dialect.name if session.bind else "sqlite"


def dialect_insert(session: AsyncSession, model: type[Any]) -> Any:
    """The dialect's own INSERT (it knows ON CONFLICT) for the session's database."""
    return (pg_insert if dialect_name(session) == "postgresql" else sqlite_insert)(model)


async def begin_write(session: AsyncSession) -> None:
    """Start the session's transaction as a writer (BEGIN IMMEDIATE on SQLite; a no-op elsewhere)."""
    await session.connection(execution_options={WRITE_OPTION: True})


@asynccontextmanager
async def write_transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session, one write transaction: committed when the block ends, rolled back if it raises."""
    async with sessionmaker() as session, session.begin():
        await begin_write(session)
        yield session


def rowcount(result: Any) -> int:
    """How many rows a conditional UPDATE (a guarded claim) changed: 1 means the claim held."""
    count: int = result.rowcount
    return count
