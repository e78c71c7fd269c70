"""The async engine and sessionmaker, configured per database kind."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty, Full

from app.settings import Settings


def make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": settings.db_connect_timeout + 3},
            json_deserializer=orjson.loads,
        )
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,
        "command_timeout": settings.db_statement_timeout,
        "server_settings": {"application_name": "dealcoach", "timezone": "UTC"},
    }
    return create_async_engine(
        settings.database_url,
        poolclass=FairPool,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # No pre-ping (it costs a round trip per request): a connection that died with
        # the server raises a disconnect error, which answers 503 and invalidates the
        # whole pool, so the next requests reconnect by themselves.
        pool_recycle=1800,
        connect_args=connect_args,
        # Hot reads return external references as a JSON aggregate: decode it with orjson.
        json_deserializer=orjson.loads,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Foreign keys on, WAL for concurrent readers, and BEGIN IMMEDIATE so a
    transaction that reads and then writes never deadlocks against another."""
    sync_engine = engine.sync_engine

    @sa.event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy issues BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if not connection.get_execution_options().get(_NO_BEGIN):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


# The driver already runs SQLite in autocommit (isolation_level None above); this option only
# tells the "begin" listener not to open a transaction.
_NO_BEGIN = "dealcoach_autocommit"


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, for reads of one statement: no BEGIN/ROLLBACK around them."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{_NO_BEGIN: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class FairQueue(AsyncAdaptedQueue[Any]):
    """The pool's queue of idle connections, first come first served.

    asyncio.Queue wakes the first waiter when a connection comes back, but a request that asks
    for one before the waiter runs takes it first, and the waiter goes to the back of the line.
    Under load (more requests in flight than connections) some requests lost that race again
    and again: an idempotent POST's p99 was ten times its p50. Here a returned connection goes
    straight to the longest waiter, and nobody takes an idle one while others wait."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._items: deque[Any] = deque()
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def _waiting(self) -> bool:
        while self._waiters and self._waiters[0].done():  # timed out or cancelled
            self._waiters.popleft()
        return bool(self._waiters)

    def put_nowait(self, item: Any) -> None:
        if self._waiting():
            self._waiters.popleft().set_result(item)
            return
        if self.full():
            raise Full()
        self._items.append(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if self._items and not self._waiting():
            return self._items.pop() if self.use_lifo else self._items.popleft()
        raise Empty()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not block or (self._items and not self._waiting()):
            return self.get_nowait()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await_(asyncio.wait_for(waiter, timeout) if timeout is not None else waiter)
        except TimeoutError as err:
            raise Empty() from err


class FairPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool with a first-come-first-served queue (``FairQueue``)."""

    _queue_class = FairQueue  # type: ignore[assignment]
