"""The async engine and sessionmaker, configured per database kind."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

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
