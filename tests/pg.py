"""PostgreSQL for the tests: where it is, whether it answers, and throwaway databases.

DEALCOACH_TEST_PG_URL points at a superuser connection on the maintenance database
(default postgres@127.0.0.1:5432). When PostgreSQL is unreachable its tests are skipped,
unless REQUIRE_POSTGRES=1 makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
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


async def connect(dsn: str, attempts: int = 3) -> asyncpg.Connection:
    """A connection for the suite's own housekeeping: on a machine busy enough that a connection
    takes over 10 s, tried again (twice) rather than failing the test that needed it."""
    for _ in range(attempts - 1):
        try:
            return await asyncpg.connect(dsn, timeout=10)
        except (TimeoutError, OSError):
            continue
    return await asyncpg.connect(dsn, timeout=10)


async def _exec(dsn: str, statements: tuple[str, ...]) -> None:
    conn = await connect(dsn)
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
    conn = await connect(_driver_dsn(database_url))
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


# What a test could change in a database's schema: its relations (but the organisations' event
# sequences, which are data), triggers, functions, constraints and per-database settings.
_SCHEMA_FINGERPRINT = r"""
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
    SELECT 'c:' || relname || ':' || relkind::text || ':' || relnatts FROM pg_class
     WHERE relnamespace = 'public'::regnamespace AND NOT (relkind = 'S' AND relname LIKE 'event\_seq\_%')
    UNION ALL SELECT 't:' || tgname || ':' || tgenabled::text FROM pg_trigger
    UNION ALL SELECT 'p:' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'k:' || conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'r:' || array_to_string(setconfig, ';') FROM pg_db_role_setting
     WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS schema (x)
"""

# Every row a test wrote, and the organisations' event sequences: back to the template's state.
_RESET = r"""
DO $$
DECLARE name text;
BEGIN
    SET LOCAL session_replication_role = replica;
    FOR name IN SELECT relname FROM pg_class
                 WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> 'alembic_version'
    LOOP
        EXECUTE format('DELETE FROM %I', name);
    END LOOP;
    FOR name IN SELECT relname FROM pg_class
                 WHERE relnamespace = 'public'::regnamespace AND relkind = 'S' AND relname LIKE 'event\_seq\_%'
    LOOP
        EXECUTE format('DROP SEQUENCE %I', name);
    END LOOP;
END $$
"""


class ClonePool:
    """Test databases cloned from a template, recycled between tests, off the tests' path.

    ``CREATE DATABASE … TEMPLATE`` and ``DROP DATABASE`` cost a few hundred milliseconds each,
    mostly waiting for the disk. A background thread per test process keeps clones ready; a
    clone a test is done with is emptied (its rows deleted, its event sequences dropped) and used
    again, unless the test changed its schema (a trigger, a function, a column: anything
    ``_SCHEMA_FINGERPRINT`` sees), in which case it is dropped and a new clone takes its place.
    Each test still starts on a database nobody else is using, holding what the template holds.
    """

    def __init__(self, template: str, ready: int = 2) -> None:
        self.template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._work: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="pg-clone-pool", daemon=True)
        self._clean_fingerprint: str | None = None
        self._worker.start()
        for _ in range(ready):
            self._work.put(("create", ""))

    def take(self) -> str:
        """The SQLAlchemy URL of a database in the template's state that no one else uses."""
        if self._ready.empty():
            self._work.put(("create", ""))
        name = self._ready.get(timeout=120)
        if isinstance(name, BaseException):
            raise name
        return sqlalchemy_url(pg_dsn(name))

    def give_back(self, url: str) -> None:
        self._work.put(("recycle", url.rpartition("/")[2]))

    def close(self) -> None:
        """Drop every clone, once the pending work is done."""
        self._work.put(None)
        self._worker.join(timeout=300)

    def _run(self) -> None:
        owned: set[str] = set()
        while (job := self._work.get()) is not None:
            kind, name = job
            try:
                if kind == "recycle" and asyncio.run(self._recycled(name)):
                    self._ready.put(name)
                    continue
                if kind == "recycle":
                    owned.discard(name)
                    asyncio.run(pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                name = f"dealcoach_t_{uuid.uuid4().hex[:16]}"
                asyncio.run(pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
                owned.add(name)
                self._ready.put(name)
            except BaseException as exc:  # handed to the test that waits, not lost in the thread
                self._ready.put(exc)
        for name in owned:
            asyncio.run(pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    async def _recycled(self, name: str) -> bool:
        """Empty a used clone; False when its schema is no longer the template's."""
        await pg_exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        conn = await connect(pg_dsn(name))
        try:
            if self._clean_fingerprint is None:
                template = await connect(pg_dsn(self.template))
                try:
                    self._clean_fingerprint = await template.fetchval(_SCHEMA_FINGERPRINT)
                finally:
                    await template.close()
            if await conn.fetchval(_SCHEMA_FINGERPRINT) != self._clean_fingerprint:
                return False
            async with conn.transaction():
                await conn.execute(_RESET)
            return True
        finally:
            await conn.close()
