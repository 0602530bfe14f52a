"""The database: engine set-up, the UTC timestamp column type and sessions.

Core services receive an ``AsyncSession`` and never commit on their own; the
caller owns the transaction (``Database.transaction``), so a failed operation
writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import as_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back aware datetimes, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 driver opens a transaction by itself only before an INSERT,
    # UPDATE or DELETE: reads before it ran outside any transaction, and a SAVEPOINT
    # as the first statement started (and its RELEASE committed!) a transaction of its
    # own, so `begin_nested()` committed half of a unit of work. Take over: the driver
    # emits nothing, and _sqlite_begin below opens every transaction explicitly.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; busy_timeout makes writers queue
    # instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


WRITE_OPTION = "koomsg_write"


def _sqlite_begin(connection: Any) -> None:
    # A unit of work that writes takes SQLite's one write lock when it begins
    # (IMMEDIATE): it then reads what it will write against, and can never fail half
    # way with "database is locked" because another writer committed after its first
    # read. Read sessions take a consistent snapshot (DEFERRED) and never block.
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=True
        )
        # The same pool; on SQLite its transactions begin IMMEDIATE (see _sqlite_begin).
        self._write_sessions = async_sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}),
            class_=AsyncSession,
            expire_on_commit=False,
            autoflush=True,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A read session: whatever it did is rolled back at the end."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Commits when the block ends cleanly, rolls back when it raises."""
        async with self._write_sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
