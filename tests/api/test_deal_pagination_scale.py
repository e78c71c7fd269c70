"""Listing 100,000 deals page by page: the last page costs what the first does (PostgreSQL).

The test captures the exact SQL the API sends for the first page and for a page near the
end, and compares what PostgreSQL had to read for each (EXPLAIN ANALYZE BUFFERS). Timing
lives in bench/, not here.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.main import create_app
from tests.conftest import bootstrap, settings_for
from tests.helpers import Api
from tests.statements import record_statements

N = 100_000


@pytest.fixture
async def big_org(pg_database: str):  # type: ignore[no-untyped-def]
    app = create_app(settings_for(pg_database))
    async with app.router.lifespan_context(app):
        org = await bootstrap(app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            api = Api(client, org.admin_key)
            hos = await api.make_member("head_of_sales")
            manager = await api.make_member("manager", manager=hos)
            sellers = [await api.make_member("seller", manager=manager, key=False) for _ in range(4)]
            async with app.state.engine.begin() as conn:
                # Ids that grow with i, as UUIDv7 ids do in real life.
                await conn.execute(
                    sa.text(
                        """
                        INSERT INTO deal (id, organization_id, name, account_name, stage, owner_id, version,
                                          created_at, updated_at)
                        SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, :org,
                               'Deal ' || i, 'Account ' || (i % 997),
                               (ARRAY['prospecting','qualification','discovery','proposal','negotiation'])[1 + i % 5],
                               (ARRAY[:s0, :s1, :s2, :s3]::uuid[])[1 + i % 4], 1, now(), now()
                        FROM generate_series(1, :n) AS i
                        """
                    ),
                    {"org": org.id, "n": N, **{f"s{i}": s.id for i, s in enumerate(sellers)}},
                )
                await conn.execute(sa.text("ANALYZE deal"))
            yield app, api, manager


async def _explain(app, statement: str, args: tuple[Any, ...]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    raw = await app.state.engine.raw_connection()
    try:
        plan = await raw.driver_connection.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, *args)
    finally:
        raw.close()
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]


def _buffers(node: dict[str, Any]) -> int:
    return int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))


async def _page_cost(app, api: Api, params: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with monkeypatch.context() as patched:
        recorded = record_statements(app, patched)
        response = await api.get("/v1/deals", params={"limit": 50, **params})
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 50
    statements = [(s.sql, s.args) for s in recorded]
    deal_queries = [(s, a) for s, a in statements if "FROM deal" in s and "LIMIT" in s]
    assert len(deal_queries) == 1, statements
    plan = await _explain(app, *deal_queries[0])
    # A connection the pool opens meanwhile introspects types first; that is not the page's cost.
    ours = [q for q, _ in statements if "pg_catalog" not in q and "pg_type" not in q]
    return len(ours), _buffers(plan["Plan"]), int(plan["Plan"].get("Actual Rows", 0))


@pytest.mark.parametrize("who", ["admin", "manager"])
async def test_deep_pages_cost_the_same_as_the_first(big_org, who: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app, api, manager = big_org
    caller = api if who == "admin" else api.as_(manager)
    first = await caller.get("/v1/deals", params={"limit": 50})
    assert first.status_code == 200
    # Jump near the end with a cursor sealed the way the API seals it.
    org_id = uuid.UUID((await caller.get("/v1/me")).json()["organization"]["id"])
    near_end = app.state.cursors.encode(org_id, "deals", [f"01900000-0000-7000-8000-{N - 60:012x}"])
    # Each page twice, the second counted: a pooled connection's first use of a statement also
    # prepares it, which is the connection's cost, not the page's.
    for _ in range(2):
        queries_first, buffers_first, _ = await _page_cost(app, caller, {}, monkeypatch)
        queries_last, buffers_last, _ = await _page_cost(app, caller, {"cursor": near_end}, monkeypatch)
    assert queries_first == queries_last, (queries_first, queries_last)
    assert buffers_last <= 2 * buffers_first + 20, (buffers_first, buffers_last)
