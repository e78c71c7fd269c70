"""What the benchmarks share: the PostgreSQL server they run on (BENCH_PG_DSN, a superuser DSN on
the maintenance database) and a database of their own on it, dropped and recreated on each run."""

from __future__ import annotations

import os

import asyncpg

PG_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def dsn(database: str) -> str:
    """PG_DSN pointed at `database` instead of the maintenance database (for asyncpg)."""
    return PG_DSN.rpartition("/")[0] + "/" + database


def sa_url(database: str) -> str:
    """The SQLAlchemy URL of `database` (DEALCOACH_DATABASE_URL, Settings.database_url)."""
    return dsn(database).replace("postgresql://", "postgresql+asyncpg://", 1)


async def recreate_database(database: str) -> None:
    """Drop `database` (closing its connections) and create it empty."""
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
