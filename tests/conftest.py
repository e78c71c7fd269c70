"""Test fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL.

Each PostgreSQL test gets its own database cloned from a template migrated once per
session (see tests/pg.py for where PostgreSQL is and when it is required); each SQLite
test gets a copy of a migrated file.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db.migrate import upgrade
from app.db.uow import UnitOfWork
from app.main import create_app
from app.services.bootstrap import bootstrap_organization
from app.settings import Settings
from tests.browser import chromium  # noqa: F401  # the fixture: Debian's headless Chromium, or skip
from tests.helpers import Api, Org, Person
from tests.pg import PG_URL, REQUIRE_POSTGRES, ClonePool, fresh_pg_database, pg_unreachable
from tests.problem_codes import DeclaredCodes
from tests.redis_server import REDIS_URL, REQUIRE_REDIS, redis_unreachable

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL is unreachable (fail under REQUIRE_POSTGRES=1)."""
    problem = pg_unreachable()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"REQUIRE_POSTGRES=1 but PostgreSQL is unreachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {problem}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the rate limit tests share budgets through; skipped when unreachable (fail under REQUIRE_REDIS=1)."""
    problem = redis_unreachable()
    if problem is not None:
        if REQUIRE_REDIS:
            pytest.fail(f"REQUIRE_REDIS=1 but Redis is unreachable at {REDIS_URL}: {problem}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {problem}")
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated once per session, the template of every test's database."""
    require_postgres()
    with fresh_pg_database("dealcoach_tpl") as url:
        upgrade(url)
        yield url.rpartition("/")[2]


@pytest.fixture(scope="session")
def pg_clones(pg_template: str) -> Iterator[ClonePool]:
    pool = ClonePool(pg_template)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def pg_database(pg_clones: ClonePool) -> Iterator[str]:
    """A fresh PostgreSQL database (its SQLAlchemy URL), cloned from the migrated template."""
    url = pg_clones.take()
    try:
        yield url
    finally:
        pg_clones.give_back(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    return request.getfixturevalue("pg_database")


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """The tests' settings: quiet logs, no dispatcher or inbox applier, rate limits off (tests that exercise them
    turn them on, tests/api/test_rate_limits.py); ``overrides`` on top."""
    defaults: dict[str, Any] = {
        "access_log": False,
        "log_level": "WARNING",
        "webhooks_dispatcher": "off",
        "inbox_applier": "off",
        "rate_limit_per_second": 0,
    }
    return Settings(database_url=database_url, **(defaults | overrides))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    # Every problem the app answers must be one its operation declares (tests/problem_codes.py).
    transport = httpx.ASGITransport(app=DeclaredCodes(app))
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


@pytest.fixture
async def team(api: Api) -> dict[str, Person]:
    """Two teams under one head of sales, an integration, and the admin, each with a key:
    hos > manager > {seller, peer}; hos > other_manager > outsider."""
    hos = await api.make_member("head_of_sales")
    manager = await api.make_member("manager", manager=hos)
    seller = await api.make_member("seller", manager=manager)
    peer = await api.make_member("seller", manager=manager)
    other_manager = await api.make_member("manager", manager=hos)
    outsider = await api.make_member("seller", manager=other_manager)
    integration = await api.make_member("integration")
    admin = Person(id=(await api.get("/v1/me")).json()["id"], key=api.key or "", body={})
    return {
        "hos": hos,
        "manager": manager,
        "seller": seller,
        "peer": peer,
        "other_manager": other_manager,
        "outsider": outsider,
        "integration": integration,
        "admin": admin,
    }
