"""Migrations run up, down and up again, and match the models exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import app.db.models  # noqa: F401
from app.db.migrate import MIGRATION_ONLY_INDEXES, downgrade, upgrade
from tests.conftest import require_postgres
from tests.pg import fresh_pg_database


@pytest.fixture
def empty_pg() -> Iterator[str]:
    require_postgres()
    with fresh_pg_database("dealcoach_mig") as url:
        yield url


def _ours(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)


def _diff(url: str) -> list:
    async def run() -> list:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True, "include_object": _ours}),
                        SQLModel.metadata,
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_upgrade_downgrade_upgrade_on_postgres(empty_pg: str) -> None:
    upgrade(empty_pg)
    assert "member" in _tables(empty_pg)
    downgrade(empty_pg, "base")
    assert _tables(empty_pg) <= {"alembic_version"}
    upgrade(empty_pg)
    assert _diff(empty_pg) == []


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)
    assert _diff(url) == []
