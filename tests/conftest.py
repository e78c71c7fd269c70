"""Test fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL is reached at DEALCOACH_TEST_PG_URL (default: postgres@127.0.0.1:5432). When
it is unreachable its tests are skipped, unless REQUIRE_POSTGRES=1 makes that a failure.
Each PostgreSQL test gets its own database cloned from a template migrated once per
session; each SQLite test gets a copy of a migrated file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.db.migrate import upgrade
from app.db.uow import UnitOfWork
from app.main import create_app
from app.services.bootstrap import bootstrap_organization
from app.settings import Settings
from tests.helpers import Api, Org

PG_URL = os.environ.get("DEALCOACH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgres"]


def _pg_dsn(database: str) -> str:
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{database}"


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _pg_exec(*statements: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _pg_reachable() -> str | None:
    try:
        asyncio.run(_pg_exec("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    problem = _pg_reachable()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"REQUIRE_POSTGRES=1 but PostgreSQL is unreachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {problem}")
    name = f"dealcoach_tpl_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(sqlalchemy_url(_pg_dsn(name)))
        yield name
    finally:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_database(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database (its SQLAlchemy URL), cloned from the migrated template."""
    name = f"dealcoach_t_{uuid.uuid4().hex[:16]}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    try:
        yield sqlalchemy_url(_pg_dsn(name))
    finally:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    return request.getfixturevalue("pg_database")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, access_log=False, log_level="WARNING")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def bootstrap(app, name: str = "Acme", email: str = "ada@acme.test") -> Org:  # type: ignore[no-untyped-def]
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        done = await bootstrap_organization(uow, org_name=name, admin_email=email, admin_name="Ada Admin")
    finally:
        await uow.close()
    return Org(id=str(done.organization_id), admin_id=str(done.member_id), admin_key=done.api_key)


@pytest.fixture
async def org(app) -> Org:  # type: ignore[no-untyped-def]
    return await bootstrap(app)


@pytest.fixture
def api(client: httpx.AsyncClient, org: Org) -> Api:
    """The API, called as the organisation's admin; ``api.as_(key)`` calls as someone else."""
    return Api(client, org.admin_key)
