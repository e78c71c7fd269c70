"""Claiming webhook deliveries reads what it takes, however many wait (PostgreSQL).

The outbox's statistics are nearly always stale: pending deliveries come and go by the thousand
between two ANALYZEs, and the last one most likely saw almost none. The test recreates that
(ANALYZE with nothing or a few pending, then a queue), captures the exact statements a dispatcher's claim
sends, and compares what PostgreSQL had to read for them (EXPLAIN ANALYZE BUFFERS) with a short
queue and with a long one, for the plan made for the values at hand and for the generic plan a
pooled connection settles on. Timing lives in bench/, not here.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.main import create_app
from tests.api.test_deal_pagination_scale import _buffers
from tests.conftest import bootstrap, settings_for
from tests.statements import record_statements

CLAIM = 64  # deliveries a claim takes
IN_FLIGHT = 128  # leased to dispatchers at the head of the queue
DEALS = 50


# The statistics of the last ANALYZE: (deliveries delivered, deliveries waiting) it saw. The plans
# that read the whole queue came from statistics like these (with many waiting, PostgreSQL
# happens to choose well).
STALE = {"nothing waiting": (10, 0), "a few waiting": (2000, 50)}


@pytest.fixture(params=sorted(STALE))
async def outbox(request: pytest.FixtureRequest, pg_database: str):  # type: ignore[no-untyped-def]
    delivered, waiting = STALE[request.param]
    app = create_app(settings_for(pg_database))
    async with app.router.lifespan_context(app):
        org = await bootstrap(app)
        endpoint = uuid.uuid4()
        async with app.state.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO webhook_endpoint (id, organization_id, url, event_types, active, secret, version,"
                    " created_at, updated_at) VALUES (:id, :org, 'https://hooks.example.com/in', '[\"*\"]', true,"
                    " 'whsec_' || repeat('A', 44), 1, now(), now())"
                ),
                {"id": endpoint, "org": org.id},
            )
            await _insert(conn, org.id, endpoint, range(1, delivered + 1), status="succeeded")
            await _insert(conn, org.id, endpoint, range(delivered + 1, delivered + waiting + 1), status="pending")
            await conn.execute(sa.text("ANALYZE webhook_delivery"))
            sequence = f"event_seq_{org.id.replace('-', '')}"
            await conn.execute(sa.text(f"SELECT setval('{sequence}', 1000000)"))
        yield app, org.id, endpoint


async def _insert(conn: Any, org: str, endpoint: uuid.UUID, seqs: range, *, status: str) -> None:
    """Deliveries of events numbered ``seqs``, oldest first; every other one of a deal's."""
    await conn.execute(
        sa.text(
            """
            INSERT INTO webhook_delivery (id, organization_id, endpoint_id, event_id, event_seq, event_type,
                                          deal_id, status, attempts, next_attempt_at, created_at)
            SELECT gen_random_uuid(), :org, :endpoint, gen_random_uuid(), i, 'deal.updated',
                   CASE WHEN i % 2 = 0 THEN ('00000000-0000-4000-8000-' || lpad(to_hex(i % CAST(:deals AS int)), 12, '0'))::uuid END,
                   :status, 0, now() - interval '1 hour' + i * interval '1 ms', now()
            FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
            """
        ),
        {
            "org": org,
            "endpoint": endpoint,
            "first": seqs.start,
            "last": seqs.stop - 1,
            "deals": DEALS,
            "status": status,
        },
    )


async def _queue(app: Any, org: str, endpoint: uuid.UUID, waiting: int) -> None:
    """``waiting`` due deliveries, the oldest IN_FLIGHT of them leased (being attempted)."""
    async with app.state.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM webhook_delivery WHERE status = 'pending'"))
        await _insert(conn, org, endpoint, range(100_001, 100_001 + waiting), status="pending")
        await conn.execute(
            sa.text(
                "UPDATE webhook_delivery SET leased_until = now() + interval '1 hour' WHERE id IN"
                " (SELECT id FROM webhook_delivery WHERE status = 'pending' ORDER BY next_attempt_at LIMIT :n)"
            ),
            {"n": IN_FLIGHT},
        )


async def claim_cost(
    app: Any,
    monkeypatch: pytest.MonkeyPatch,
    plan_cache_mode: str,
    claim: Callable[[UnitOfWork], Awaitable[Sequence[Any]]],
) -> tuple[int, int]:
    """Buffers the statements of ``claim`` (in a unit of work, rolled back) read, by EXPLAIN
    ANALYZE BUFFERS of each in the same order in one transaction (rolled back too), and how many
    rows the claim took."""
    with monkeypatch.context() as patched:
        recorded = record_statements(app, patched)
        uow = UnitOfWork(app.state.sessionmaker)
        try:
            async with uow:  # rolled back: the queue stays as it is
                claimed = await claim(uow)
        finally:
            await uow.close()
    ours = [s for s in recorded if "pg_catalog" not in s.sql and "pg_type" not in s.sql]
    raw = await app.state.engine.raw_connection()
    buffers = 0
    try:
        connection = raw.driver_connection
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute(f"SET LOCAL plan_cache_mode = {plan_cache_mode}")
            for statement in ours:
                if statement.sql.lstrip().upper().startswith(("WITH", "UPDATE", "SELECT")):
                    plan = await connection.fetchval(
                        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement.sql, *statement.args
                    )
                    buffers += _buffers((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
        finally:
            await transaction.rollback()
    finally:
        raw.close()
    return buffers, len(claimed)


async def _claim(uow: UnitOfWork) -> Sequence[Any]:
    now = utcnow()
    return await uow.webhooks.claim_due(now=now, lease_until=now + dt.timedelta(minutes=1), limit=CLAIM)


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
async def test_a_claim_reads_as_much_with_6000_deliveries_waiting_as_with_300(
    outbox: Any, plan_cache_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, org, endpoint = outbox
    await _queue(app, org, endpoint, 300)
    short, taken_short = await claim_cost(app, monkeypatch, plan_cache_mode, _claim)
    await _queue(app, org, endpoint, 6000)
    long, taken_long = await claim_cost(app, monkeypatch, plan_cache_mode, _claim)
    # Per deal only the first pending delivery is due, and every deal's first one is in flight:
    # a claim takes deliveries with no deal (one in two), from behind those in flight.
    assert (taken_short, taken_long) == (CLAIM, CLAIM)
    # About 2,300-3,300 buffers either way (64 leases written, their indexes, 256 deliveries looked
    # at); a plan that reads the whole queue read 11,000-30,000 for the long one.
    assert long <= 2 * short + 50 and long <= 80 * CLAIM, (short, long)


def _show(node, depth=0):
    print(
        "  " * depth,
        node["Node Type"],
        node.get("Index Name", ""),
        node.get("Plan Rows"),
        node.get("Actual Rows"),
        _buffers(node),
    )
    for child in node.get("Plans", []):
        _show(child, depth + 1)
