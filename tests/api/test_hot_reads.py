"""The hot reads cost one statement and no transaction: GET /v1/deals/{id}, GET /v1/deals and
GET /v1/me, for a seller, a manager (whose line is recursive) and the head of sales. Their
responses, written by orjson without a model, are the bytes pydantic writes."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from asyncpg.prepared_stmt import PreparedStatement

from app.db.engine import make_engine
from app.db.reads import DealListing
from app.db.repositories import reads as repository
from app.domain.api_keys import hash_key
from app.main import create_app
from app.schemas.deals import DealPage, DealPublic
from app.schemas.members import MePublic
from app.settings import Settings
from tests.conftest import bootstrap, settings_for
from tests.helpers import Api, Person, assert_problem, make_deal
from tests.pg import pg_exec_on


class Recorded:
    def __init__(self) -> None:
        self.statements: list[str] = []


@contextmanager
def recording(app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorded]:
    """Every statement sent to the database: on PostgreSQL as asyncpg sends it (the hot reads
    bypass SQLAlchemy's execution there; a BEGIN is a statement of its own), on SQLite as
    SQLAlchemy executes it (BEGIN IMMEDIATE included). Only this thread's driver calls count:
    the test databases are recycled by another thread (tests/pg.py) with asyncpg too."""
    recorded = Recorded()
    if app.state.engine.dialect.name == "postgresql":
        test_thread = threading.get_ident()

        def counting(method: Any, query_of: Any) -> Any:
            async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
                if threading.get_ident() == test_thread:
                    recorded.statements.append(query_of(self, args))
                return await method(self, *args, **kwargs)

            return counted

        with monkeypatch.context() as patched:
            for name in ("execute", "fetch", "fetchrow", "fetchval"):
                method = getattr(asyncpg.Connection, name)
                patched.setattr(asyncpg.Connection, name, counting(method, lambda _self, args: args[0]))
            for name in ("fetch", "fetchrow", "fetchval"):
                method = getattr(PreparedStatement, name)
                patched.setattr(PreparedStatement, name, counting(method, lambda self, _args: self.get_query()))
            yield recorded
        return

    engine = app.state.engine.sync_engine

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        recorded.statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield recorded
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_execute)


def assert_one_statement(recorded: Recorded) -> None:
    assert len(recorded.statements) == 1, recorded.statements
    assert recorded.statements[0].lstrip().upper().startswith(("SELECT", "WITH")), recorded.statements


@pytest.fixture
async def deals(api: Api, team: dict[str, Person]) -> dict[str, Any]:
    """Two deals of the seller (one with two external references) and one of a seller two levels
    below the manager, through a junior manager."""
    junior = await api.make_member("manager", manager=team["manager"])
    deep_seller = await api.make_member("seller", manager=junior)
    refs = [{"source": "salesforce", "external_id": "006Q1"}, {"source": "hubspot", "external_id": "HS-1"}]
    return {
        "seller": await make_deal(api, team["seller"], external_refs=refs),
        "seller_2": await make_deal(api, team["seller"]),
        "deep": await make_deal(api, deep_seller, amount={"amount": "1500", "currency": "JPY"}),
    }


@pytest.mark.parametrize("who", ["seller", "manager", "hos"])
async def test_a_deal_is_one_statement(app, api: Api, team, deals, who: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    caller = api.as_(team[who])
    deal_id = deals["deep" if who != "seller" else "seller"]["id"]
    with recording(app, monkeypatch) as recorded:
        response = await caller.get(f"/v1/deals/{deal_id}")
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    assert_one_statement(recorded)


@pytest.mark.parametrize("who", ["seller", "manager", "hos"])
async def test_a_page_of_deals_is_one_statement(app, api: Api, team, deals, who: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    caller = api.as_(team[who])
    with recording(app, monkeypatch) as recorded:
        response = await caller.get("/v1/deals", params={"limit": 1})
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 1
    assert_one_statement(recorded)
    with recording(app, monkeypatch) as recorded:
        following = await caller.get("/v1/deals", params={"limit": 1, "cursor": response.json()["next_cursor"]})
    assert following.status_code == 200, following.text
    assert_one_statement(recorded)


@pytest.mark.parametrize("who", ["seller", "manager", "hos"])
async def test_me_is_one_statement(app, api: Api, team, who: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with recording(app, monkeypatch) as recorded:
        response = await api.as_(team[who]).get("/v1/me")
    assert response.status_code == 200, response.text
    assert_one_statement(recorded)


async def test_refusals_are_one_statement_too(app, api: Api, team, deals, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with recording(app, monkeypatch) as recorded:
        assert_problem(await api.as_(team["peer"]).get(f"/v1/deals/{deals['seller']['id']}"), 404, "not_found")
    assert_one_statement(recorded)
    with recording(app, monkeypatch) as recorded:
        unknown = await api.as_("dc_00000000_unknown").get(f"/v1/deals/{deals['seller']['id']}")
        assert_problem(unknown, 401, "unauthenticated")
        assert_problem(await api.as_("dc_00000000_unknown").get("/v1/deals"), 401, "unauthenticated")
    assert len(recorded.statements) == 2, recorded.statements
    with recording(app, monkeypatch) as recorded:
        assert_problem(await api.as_("not a key").get("/v1/deals"), 401, "unauthenticated")
    assert recorded.statements == []


async def test_hot_reads_write_the_bytes_pydantic_writes(api: Api, team, deals) -> None:  # type: ignore[no-untyped-def]
    seller = team["seller"]
    lost = await make_deal(api, seller, amount={"amount": "12.345", "currency": "KWD"})
    closed = await api.patch(
        f"/v1/deals/{lost['id']}",
        json={
            "stage": "closed_lost",
            "loss": {"reason_code": "price", "competitor": "Initech", "detail": "Zu teuer ü"},
        },
    )
    assert closed.status_code == 200, closed.text
    await make_deal(api, seller, amount=None, expected_close_date=None, name='Quotes " and \\ and é')
    one = await api.as_(seller).get(f"/v1/deals/{lost['id']}")
    assert one.content == DealPublic.model_validate_json(one.content).model_dump_json().encode()
    assert one.json() == closed.json()
    refs = (await api.as_(seller).get(f"/v1/deals/{deals['seller']['id']}")).json()["external_refs"]
    assert refs == [{"source": "hubspot", "external_id": "HS-1"}, {"source": "salesforce", "external_id": "006Q1"}]
    page = await api.as_(team["hos"]).get("/v1/deals", params={"limit": 200})
    assert len(page.json()["items"]) == 5
    assert page.content == DealPage.model_validate_json(page.content).model_dump_json().encode()
    me = await api.as_(seller).get("/v1/me")
    assert me.content == MePublic.model_validate_json(me.content).model_dump_json().encode()


async def test_the_driver_path_reads_what_sqlalchemy_reads(app, api: Api, team, deals, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL the hot statements go to asyncpg directly; SQLAlchemy's own execution of the
    same statements must give the same rows, column for column."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    reads: Any = app.state.reads
    listing = DealListing(after=None, limit=10)

    async def read_all(who: str) -> list[list[tuple[tuple[str, ...], tuple[Any, ...]]]]:
        key_hash = hash_key(team[who].key)
        results = [
            [await reads.members.of(key_hash)],
            [await reads.deals.one(key_hash, uuid.UUID(deals["seller"]["id"]))],
            (await reads.deals.page(key_hash, listing))[1],
        ]
        return [[(tuple(row._fields), tuple(row)) for row in rows] for rows in results]

    for who in ("seller", "manager", "hos"):
        driver = await read_all(who)
        with monkeypatch.context() as patched:
            patched.setattr(repository, "_driver_statement", lambda *_: None)
            assert await read_all(who) == driver


async def test_the_deal_listing_checks_the_cursor_seal_against_the_callers_organisation(
    app, api: Api, team, deals
) -> None:  # type: ignore[no-untyped-def]
    """The listing opens the cursor before its one statement and checks the seal against the
    organisation the statement found: a cursor of another organisation, another listing or
    edited by hand is 422 invalid_cursor, and an unknown key is still 401."""
    ours = (await api.as_(team["hos"]).get("/v1/deals", params={"limit": 1})).json()["next_cursor"]
    assert (await api.as_(team["hos"]).get("/v1/deals", params={"limit": 1, "cursor": ours})).status_code == 200
    other = await bootstrap(app, name="Globex", email="root@globex.test")
    globex = api.as_(other.admin_key)
    seller = await globex.make_member("seller")
    await make_deal(globex, seller)
    await make_deal(globex, seller)
    theirs = (await globex.get("/v1/deals", params={"limit": 1})).json()["next_cursor"]
    assert (await globex.get("/v1/deals", params={"cursor": theirs})).status_code == 200
    assert_problem(await api.as_(team["hos"]).get("/v1/deals", params={"cursor": theirs}), 422, "invalid_cursor")
    members = (await api.get("/v1/members", params={"limit": 1})).json()["next_cursor"]
    assert_problem(await api.as_(team["hos"]).get("/v1/deals", params={"cursor": members}), 422, "invalid_cursor")
    body, _, seal = ours.partition(".")
    tampered = f"{body}.{seal[:-1]}{'A' if seal[-1] != 'A' else 'B'}"
    assert_problem(await api.as_(team["hos"]).get("/v1/deals", params={"cursor": tampered}), 422, "invalid_cursor")
    unknown = api.as_("dc_00000000_unknown")
    assert_problem(await unknown.get("/v1/deals", params={"cursor": "not a cursor"}), 401, "unauthenticated")
    assert_problem(await unknown.get("/v1/deals", params={"cursor": ours}), 401, "unauthenticated")


async def test_a_worker_under_more_requests_than_its_pool_opens_no_connection_per_request(database_url: str) -> None:
    """The pool opens connections as requests need them and keeps them: no overflow connection that
    is closed when returned (under load, one opened and closed per request). 40 concurrent requests
    on a pool of 4 open 4 connections and queue for them."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool settings apply to PostgreSQL")
    assert Settings(database_url=database_url).db_max_overflow == 0
    application = create_app(settings_for(database_url, db_pool_size=4))
    opened: list[object] = []
    async with application.router.lifespan_context(application):
        sa.event.listen(application.state.engine.sync_engine, "connect", lambda *args: opened.append(args[0]))
        org = await bootstrap(application)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            api = Api(http, org.admin_key)
            for _ in range(3):
                responses = await asyncio.gather(*(api.get("/v1/me") for _ in range(40)))
                assert {r.status_code for r in responses} == {200}
    assert len(opened) <= 4


async def test_a_connection_given_back_goes_to_the_longest_waiter(database_url: str) -> None:
    """The pool serves waiters first come first served: a connection given back goes to the request
    that has waited longest, never to one that asks for it a moment later. (asyncio.Queue let the
    later one take it, and under load some requests lost that race again and again.)"""
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool settings apply to PostgreSQL")
    engine = make_engine(settings_for(database_url, db_pool_size=1))
    order: list[str] = []
    try:
        held = await engine.connect()
        await held.exec_driver_sql("SELECT 1")

        async def take(name: str) -> None:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
                order.append(name)

        waiting = asyncio.create_task(take("waited"))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await held.close()  # the connection goes back ...
        await take("asked later")  # ... and is asked for again at once, by another request
        await waiting
    finally:
        await engine.dispose()
    assert order == ["waited", "asked later"]


async def test_a_page_statement_is_planned_once_not_per_page(app, team, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL keeps one generic plan for a prepared page statement, and plans no page afresh:
    the page size is written into the statement. With it bound as a parameter, PostgreSQL prices
    the generic plan as if it returned a tenth of the organisation's deals and plans every page
    instead (checked too, on the same deals, so the test fails if the size goes back to a bound
    parameter)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("plan caching is PostgreSQL's")
    seller = team["seller"]
    await pg_exec_on(
        database_url,
        f"""INSERT INTO deal (id, organization_id, name, account_name, stage, owner_id, version, created_at, updated_at)
            SELECT gen_random_uuid(), m.organization_id, 'Deal ' || n, 'Account ' || n, 'discovery', m.id, 1,
                   now(), now()
            FROM member m, generate_series(1, 20000) AS n WHERE m.id = '{seller.id}'""",
        "ANALYZE deal",
    )
    page = repository._deal_page(False, False, *[False] * 6, 51)
    driver = repository._driver_statement(app.state.engine.dialect, page)
    assert driver is not None and "LIMIT 51" in driver.sql
    bound = driver.sql.replace("LIMIT 51", "LIMIT $2::INTEGER")
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        plans = {}
        for sql, args in ((driver.sql, ()), (bound, (51,))):
            for _ in range(8):
                assert len(await conn.fetch(sql, hash_key(seller.key), *args)) == 51
            plans[sql] = tuple(
                await conn.fetchrow(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", sql
                )
            )
    finally:
        await conn.close()
    generic, custom = plans[driver.sql]
    assert generic >= 2 and custom <= 6, plans[driver.sql]
    assert plans[bound] == (0, 8), plans[bound]
