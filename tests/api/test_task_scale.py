"""My tasks among a long history (PostgreSQL): what is done stays out of the way. A member with
tens of thousands of decided suggestions, decided approvals, done commitments and done next steps,
and a thousand things open, gets a first page and a page near the end of their list for about the
same reads (EXPLAIN ANALYZE BUFFERS of the exact statement the API sends). Timing lives in bench/."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.main import create_app
from tests.api.test_deal_pagination_scale import _buffers, _explain
from tests.conftest import bootstrap, settings_for
from tests.helpers import Api
from tests.statements import record_statements

DEALS = 2_000  # the seller's; each with done next steps and decided suggestions
HISTORY = 20_000  # per kind: decided, done, dropped
OPEN = 250  # per kind: what waits on the member


@pytest.fixture
async def long_history(pg_database: str):  # type: ignore[no-untyped-def]
    app = create_app(settings_for(pg_database))
    async with app.router.lifespan_context(app):
        org = await bootstrap(app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            api = Api(client, org.admin_key)
            hos = await api.make_member("head_of_sales")
            manager = await api.make_member("manager", manager=hos)
            seller = await api.make_member("seller", manager=manager)
            peer = await api.make_member("seller", manager=manager, key=False)
            ids = {"org": org.id, "seller": seller.id, "peer": peer.id, "manager": manager.id}
            async with app.state.engine.begin() as conn:
                for statement in _HISTORY:
                    await conn.execute(sa.text(statement), {**ids, "deals": DEALS, "n": HISTORY, "open": OPEN})
                await conn.execute(sa.text("ANALYZE"))
            yield app, api, seller, uuid.UUID(org.id)


# Ids grow with i, as UUIDv7 ids do; every kind's rows are spread over the seller's deals (and the
# peer's, whose rows are not the seller's tasks), the open ones last.
_ID = "('0190{0}000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid"
_AT = "now() - make_interval(secs => CAST(:n AS int) + CAST(:open AS int) - i)"
_HISTORY = [
    f"""INSERT INTO deal (id, organization_id, name, account_name, stage, owner_id, version, created_at, updated_at)
        SELECT {_ID.format(1)}, :org, 'Deal ' || i, 'Account', 'discovery',
               CASE WHEN i % 2 = 0 THEN :seller ELSE :peer END::uuid, 1, now(), now()
        FROM generate_series(1, CAST(:deals AS int)) AS i""",
    f"""INSERT INTO strategy_next_step (deal_id, id, organization_id, position, description, assignee_id, status,
                                       assigned_at)
        SELECT {_ID.format(1).replace("(i)", "(1 + i % CAST(:deals AS int))")}, {_ID.format(2)}, :org, i, 'Step ' || i,
               CASE WHEN i % 3 = 0 THEN :peer ELSE :seller END::uuid,
               CASE WHEN i <= CAST(:n AS int) THEN 'done' ELSE 'open' END, {_AT}
        FROM generate_series(1, CAST(:n AS int) + CAST(:open AS int)) AS i""",
    f"""INSERT INTO suggestion (id, organization_id, deal_id, author_id, section, body, status, late_involvement,
                               created_at)
        SELECT {_ID.format(3)}, :org, {_ID.format(1).replace("(i)", "(1 + i % CAST(:deals AS int))")}, :manager, 'risks',
               'Suggestion ' || i, CASE WHEN i <= CAST(:n AS int) THEN 'declined' ELSE 'open' END, false, {_AT}
        FROM generate_series(1, CAST(:n AS int) + CAST(:open AS int)) AS i""",
    f"""INSERT INTO approval (id, organization_id, deal_id, requested_by, approver_id, terms, status, version,
                             created_at, updated_at)
        SELECT {_ID.format(4)}, :org, {_ID.format(1).replace("(i)", "(1 + i % CAST(:deals AS int))")}, :seller, :manager,
               '[]'::jsonb, CASE WHEN i <= CAST(:n AS int) THEN 'approved' ELSE 'pending' END, 1, {_AT}, now()
        FROM generate_series(1, CAST(:n AS int) + CAST(:open AS int)) AS i""",
    f"""INSERT INTO commitment (id, organization_id, member_id, source, source_id, deal_id, text, status, version,
                               created_at, updated_at)
        SELECT {_ID.format(5)}, :org, CASE WHEN i % 3 = 0 THEN :peer ELSE :seller END::uuid, 'observation',
               {_ID.format(5)}, {_ID.format(1).replace("(i)", "(1 + i % CAST(:deals AS int))")}, 'Commitment ' || i,
               CASE WHEN i <= CAST(:n AS int) THEN 'done' ELSE 'open' END, 1, {_AT}, now()
        FROM generate_series(1, CAST(:n AS int) + CAST(:open AS int)) AS i""",
]


async def _page(app, api: Api, seller, params: dict[str, Any], monkeypatch) -> tuple[int, int, list[Any]]:  # type: ignore[no-untyped-def]
    # Once unrecorded first: a connection the pool opens meanwhile runs its own setup (a transaction,
    # type introspection), which is the connection's cost, not the page's.
    await api.as_(seller).get("/v1/me/tasks", params={"limit": 50, **params})
    with monkeypatch.context() as patched:
        recorded = record_statements(app, patched)
        response = await api.as_(seller).get("/v1/me/tasks", params={"limit": 50, **params})
    assert response.status_code == 200, response.text
    statements = [s for s in recorded if "pg_catalog" not in s.sql and "pg_type" not in s.sql]
    assert len(statements) == 1, statements
    plan = await _explain(app, statements[0].sql, statements[0].args)
    return len(statements), _buffers(plan["Plan"]), response.json()["items"]


async def test_a_deep_page_reads_what_the_first_does(long_history, monkeypatch: pytest.MonkeyPatch) -> None:
    app, api, seller, org_id = long_history
    count, first_buffers, first = await _page(app, api, seller, {}, monkeypatch)
    assert len(first) == 50 and {t["kind"] for t in first} == {"commitment", "next_step", "suggestion"}
    # Jump near the end of the open ones with a cursor sealed the way the API seals it.
    everything = (await api.as_(seller).get("/v1/me/tasks", params={"limit": 200})).json()
    assert everything["next_cursor"] is not None
    tasks: list[Any] = everything["items"]
    cursor: str | None = everything["next_cursor"]
    while cursor:
        page = (await api.as_(seller).get("/v1/me/tasks", params={"limit": 200, "cursor": cursor})).json()
        tasks += page["items"]
        cursor = page["next_cursor"]
    # Two in three open commitments; the open next steps and suggestions on the seller's own deals.
    assert len(tasks) > OPEN and tasks == sorted(tasks, key=lambda t: (t["created_at"], t["id"]), reverse=True)
    near_end = tasks[-60]
    sealed = app.state.cursors.encode(org_id, "tasks", [near_end["created_at"].replace("Z", "+00:00"), near_end["id"]])
    _, last_buffers, last = await _page(app, api, seller, {"cursor": sealed}, monkeypatch)
    assert last == tasks[-59:][:50]
    assert last_buffers <= first_buffers + 100, (first_buffers, last_buffers)
    # What is done does not count: a first page reads far fewer pages than the history holds.
    assert first_buffers < 2_000, first_buffers
