"""PostgreSQL for the tests: where it is, whether it answers, and throwaway databases.

DEALCOACH_TEST_PG_URL points at a superuser connection on the maintenance database
(default postgres@127.0.0.1:5432). When PostgreSQL is unreachable its tests are skipped,
unless REQUIRE_POSTGRES=1 makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg

PG_URL = os.environ.get("DEALCOACH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


def pg_dsn(database: str) -> str:
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{database}"


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def pg_exec(*statements: str) -> None:
    await _exec(PG_URL, statements)


async def _exec(dsn: str, statements: tuple[str, ...]) -> None:
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def pg_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        asyncio.run(pg_exec("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "dealcoach_t", template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (its SQLAlchemy URL), empty or cloned from ``template``, dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(pg_exec(f'CREATE DATABASE "{name}"{clause}'))
    try:
        yield sqlalchemy_url(pg_dsn(name))
    finally:
        asyncio.run(pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _driver_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_exec_on(database_url: str, *statements: str) -> None:
    """Run statements on the test database a SQLAlchemy URL names."""
    await _exec(_driver_dsn(database_url), statements)


async def pg_scalar_on(database_url: str, query: str) -> Any:
    conn = await asyncpg.connect(_driver_dsn(database_url), timeout=3)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()
