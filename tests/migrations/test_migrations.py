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
from app.db.models import PENDING_ID, PENDING_SEQ
from tests.conftest import require_postgres
from tests.pg import fresh_pg_database


@pytest.fixture
def empty_pg() -> Iterator[str]:
    require_postgres()
    with fresh_pg_database("dealcoach_mig") as url:
        yield url


# Indexes on an expression: alembic cannot match a reflected one to the model's (it reports it as
# removed and added), so their definitions are compared as the database prints them instead.
EXPRESSION_INDEXES = {
    "ix_webhook_delivery_endpoint_id_deal_id_pending_seq": PENDING_SEQ,
    "ix_inbound_event_object_pending_id": PENDING_ID,
}


def _ours(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    return not (type_ == "index" and (name in MIGRATION_ONLY_INDEXES or name in EXPRESSION_INDEXES))


def _index_definitions(url: str) -> dict[str, str]:
    """What the database says each expression index is made of, spaces and parentheses aside."""
    if url.startswith("sqlite"):
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN ({})"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN ({})"
    names = ", ".join(f"'{n}'" for n in EXPRESSION_INDEXES)

    async def run() -> dict[str, str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.text(query.format(names)))).all()
        finally:
            await engine.dispose()
        return {name: _bare(sql) for name, sql in rows}

    return asyncio.run(run())


def _bare(sql: str) -> str:
    """Lower case, no whitespace or parentheses, and none of the casts and ELSE NULL PostgreSQL adds."""
    text = "".join(c for c in sql.lower() if not c.isspace() and c not in "()")
    for added in ("::text", "::charactervarying", "::bigint", "::uuid", "elsenull"):
        text = text.replace(added, "")
    return text


def _expression_indexes_as_modelled(url: str) -> None:
    found = _index_definitions(url)
    assert set(found) == set(EXPRESSION_INDEXES)
    for name, expression in EXPRESSION_INDEXES.items():
        assert _bare(expression) in found[name], (name, found[name])


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


@pytest.mark.filterwarnings("ignore:.*expression-based index")  # EXPRESSION_INDEXES, compared apart
def test_upgrade_downgrade_upgrade_on_postgres(empty_pg: str) -> None:
    upgrade(empty_pg)
    assert "member" in _tables(empty_pg)
    downgrade(empty_pg, "base")
    assert _tables(empty_pg) <= {"alembic_version"}
    upgrade(empty_pg)
    assert _diff(empty_pg) == []
    _expression_indexes_as_modelled(empty_pg)


@pytest.mark.filterwarnings("ignore:.*expression-based index")  # EXPRESSION_INDEXES, compared apart
def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)
    assert _diff(url) == []
    _expression_indexes_as_modelled(url)
