"""Claiming from a queue reads what it takes, however many wait (PostgreSQL): the webhook outbox
(a dispatcher's claim) and the CRM inbox (an applier's).

A queue table's statistics are nearly always stale: pending rows come and go by the thousand
between two ANALYZEs, and the last one most likely saw almost none (app/db/queues.py). The test
recreates that (ANALYZE with nothing or a few pending, then a queue), captures the exact
statements a claim sends, and compares what PostgreSQL had to read for them (EXPLAIN ANALYZE
BUFFERS) with a short queue and with a long one, for the plan made for the values at hand and for
the generic plan a pooled connection settles on. Timing lives in bench/, not here.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.main import create_app
from app.services.inbox_applier import InboxApplier
from app.services.webhook_dispatcher import Dispatcher, DispatcherConfig
from tests.api.test_deal_pagination_scale import _buffers
from tests.conftest import bootstrap, settings_for
from tests.statements import record_statements

CLAIM = 64  # rows a claim takes
IN_FLIGHT = 128  # leased at the head of the queue (being sent or applied)
GROUPS = 50  # deals (or CRM objects) that every other row is about; the rest each about its own

# The statistics of the last ANALYZE: (rows done, rows waiting) it saw. The plans that read the
# whole queue came from statistics like these (with many waiting, PostgreSQL happens to choose well).
STALE = {"nothing waiting": (10, 0), "a few waiting": (2000, 50)}


async def _claim_deliveries(uow: UnitOfWork) -> Sequence[Any]:
    now = utcnow()
    return await uow.webhooks.claim_due(now=now, lease_until=now + dt.timedelta(minutes=1), limit=CLAIM)


async def _claim_inbox(uow: UnitOfWork) -> Sequence[Any]:
    now = utcnow()
    return await uow.integrations.claim_due(now=now, lease_until=now + dt.timedelta(minutes=1), limit=CLAIM)


@dataclass(frozen=True)
class Queue:
    table: str
    state: str  # its status column
    done: str  # a state a row is in once handled
    head: str  # the order rows are claimed in
    number: str  # a row's number (i below)
    alone: str  # a row about a deal (or CRM object) of its own
    owner: str  # INSERT of what the rows belong to (:id, :org, :member)
    rows: str  # INSERT of rows :first to :last (i) in state :state, of :owner, every other one of :groups
    claim: Callable[[UnitOfWork], Awaitable[Sequence[Any]]]


QUEUES = {
    "webhook outbox": Queue(
        table="webhook_delivery",
        state="status",
        done="succeeded",
        head="next_attempt_at",
        number="event_seq",
        alone="deal_id IS NULL",
        owner="INSERT INTO webhook_endpoint (id, organization_id, url, event_types, active, secret, version,"
        " created_at, updated_at) VALUES (:id, :org, 'https://hooks.example.com/in', '[\"*\"]', true,"
        " 'whsec_' || repeat('A', 44), 1, now(), now())",
        rows="""
            INSERT INTO webhook_delivery (id, organization_id, endpoint_id, event_id, event_seq, event_type,
                                          deal_id, status, attempts, next_attempt_at, created_at)
            SELECT gen_random_uuid(), :org, :owner, gen_random_uuid(), i, 'deal.updated',
                   CASE WHEN i % 2 = 0
                        THEN ('00000000-0000-4000-8000-' || lpad(to_hex(i % CAST(:groups AS int)), 12, '0'))::uuid END,
                   :state, 0, now() - interval '1 hour' + i * interval '1 ms', now()
            FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
        """,
        claim=_claim_deliveries,
    ),
    "CRM inbox": Queue(
        table="inbound_event",
        state="outcome",
        done="applied",
        head="next_attempt_at, id",
        number="CAST(provider_event_id AS bigint)",
        alone="object_id LIKE 'own-%'",
        owner="INSERT INTO integration (id, organization_id, provider, enabled, account_id, credentials,"
        " stage_map, owner_map, loss_reason_map, member_id, version, created_at, updated_at)"
        " VALUES (:id, :org, 'hubspot', true, '1', '{}', '{}', '{}', '{}', :member, 1, now(), now())",
        rows="""
            INSERT INTO inbound_event (id, organization_id, integration_id, provider, provider_event_id,
                                       received_at, action, object_type, object_id, payload, outcome,
                                       attempts, next_attempt_at)
            SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, :org, :owner,
                   'hubspot', i::text, now(), 'deal.propertyChange', 'deal',
                   CASE WHEN i % 2 = 0 THEN 'shared-' || (i % CAST(:groups AS int)) ELSE 'own-' || i END,
                   '{}', :state, 0, now() - interval '1 hour'
            FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
        """,
        claim=_claim_inbox,
    ),
}


@pytest.fixture(params=[(q, s) for q in sorted(QUEUES) for s in sorted(STALE)], ids=lambda p: f"{p[0]}, {p[1]}")
async def queue(request: pytest.FixtureRequest, pg_database: str):  # type: ignore[no-untyped-def]
    name, stale = request.param
    q = QUEUES[name]
    done, waiting = STALE[stale]
    app = create_app(settings_for(pg_database))
    async with app.router.lifespan_context(app):
        org = await bootstrap(app)
        owner = uuid.uuid4()
        async with app.state.engine.begin() as conn:
            await conn.execute(sa.text(q.owner), {"id": owner, "org": org.id, "member": org.admin_id})
            await _insert(conn, q, org.id, owner, range(1, done + 1), q.done)
            await _insert(conn, q, org.id, owner, range(done + 1, done + waiting + 1), "pending")
            await conn.execute(sa.text(f"ANALYZE {q.table}"))
            # Every delivery's event seq is within the organisation's horizon.
            await conn.execute(sa.text(f"SELECT setval('event_seq_{org.id.replace('-', '')}', 1000000)"))
        yield app, q, org.id, owner


async def _insert(conn: Any, q: Queue, org: str, owner: uuid.UUID, numbers: range, state: str) -> None:
    params = {"org": org, "owner": owner, "first": numbers.start, "last": numbers.stop - 1, "groups": GROUPS}
    await conn.execute(sa.text(q.rows), params | {"state": state})


async def _fill(app: Any, q: Queue, org: str, owner: uuid.UUID, waiting: int) -> None:
    """``waiting`` due rows, the first IN_FLIGHT of them leased."""
    async with app.state.engine.begin() as conn:
        await conn.execute(sa.text(f"DELETE FROM {q.table} WHERE {q.state} = 'pending'"))
        await _insert(conn, q, org, owner, range(100_001, 100_001 + waiting), "pending")
        await conn.execute(
            sa.text(
                f"UPDATE {q.table} SET leased_until = now() + interval '1 hour' WHERE id IN"
                f" (SELECT id FROM {q.table} WHERE {q.state} = 'pending' ORDER BY {q.head} LIMIT :n)"
            ),
            {"n": IN_FLIGHT},
        )


async def _claim_cost(app: Any, q: Queue, monkeypatch: pytest.MonkeyPatch, plan_cache_mode: str) -> tuple[int, int]:
    """Buffers the claim's statements read (EXPLAIN ANALYZE BUFFERS of each, in order, in one
    transaction, rolled back), and how many rows the claim (rolled back too) took."""
    with monkeypatch.context() as patched:
        recorded = record_statements(app, patched)
        uow = UnitOfWork(app.state.sessionmaker)
        try:
            async with uow:  # rolled back: the queue stays as it is
                claimed = await q.claim(uow)
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


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
async def test_a_claim_reads_as_much_with_6000_waiting_as_with_300(
    queue: Any, plan_cache_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, q, org, owner = queue
    await _fill(app, q, org, owner, 300)
    short, taken_short = await _claim_cost(app, q, monkeypatch, plan_cache_mode)
    await _fill(app, q, org, owner, 6000)
    long, taken_long = await _claim_cost(app, q, monkeypatch, plan_cache_mode)
    # Per deal (or CRM object) only the first pending row is due, and every shared one's first is
    # in flight: a claim takes rows about a deal of their own (one in two), from behind those.
    assert (taken_short, taken_long) == (CLAIM, CLAIM)
    # 1,600-3,300 buffers either way (64 leases written with their indexes, about 256 rows looked
    # at); plans that read the whole queue read 11,000-62,000 for the long one.
    assert long <= 2 * short + 50 and long <= 80 * CLAIM, (short, long)


async def _held_behind_retries(conn: Any, q: Queue, org: str, owner: uuid.UUID, count: int) -> None:
    """The rows in flight failed and wait an hour for their retry, among them each shared deal's
    (or CRM object's) first; of ``count`` rows that came meanwhile, those about the shared ones
    stay: held behind the retries, and overdue."""
    await conn.execute(
        sa.text(
            f"UPDATE {q.table} SET next_attempt_at = now() + interval '1 hour', leased_until = NULL"
            " WHERE leased_until IS NOT NULL"
        )
    )
    await _insert(conn, q, org, owner, range(200_001, 200_001 + count), "pending")
    await conn.execute(sa.text(f"DELETE FROM {q.table} WHERE {q.number} > 200000 AND {q.alone}"))
    await _overdue(conn, q, after=200_000, by=dt.timedelta(hours=2))


async def _overdue(conn: Any, q: Queue, *, after: int, by: dt.timedelta) -> None:
    await conn.execute(
        sa.text(f"UPDATE {q.table} SET next_attempt_at = now() - CAST(:by AS interval) WHERE {q.number} > :after"),
        {"by": by, "after": after},
    )


async def _parked_claim_costs(
    app: Any, q: Queue, monkeypatch: pytest.MonkeyPatch, worker: Dispatcher | InboxApplier
) -> tuple[int, int, int]:
    """A claim's buffers before and after four housekeeping rounds of ``worker`` (parking a
    thousand rows each), and how many rows the second claim took."""
    stuck, _ = await _claim_cost(app, q, monkeypatch, "force_custom_plan")
    try:
        for _ in range(4):
            await worker.housekeeping()
    finally:
        await worker.close()
    cleared, taken = await _claim_cost(app, q, monkeypatch, "force_custom_plan")
    return stuck, cleared, taken


@pytest.mark.parametrize(
    "queue", [("webhook outbox", stale) for stale in sorted(STALE)], indirect=True, ids=lambda p: p[1]
)
async def test_deliveries_that_cannot_be_sent_yet_are_parked_out_of_the_claims_way(
    queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver down for a while leaves, at the head of the queue, deliveries held behind their
    deal's first one (which waits for its next retry) and, once the endpoint is disabled, all of
    its pending deliveries: every claim would step over them, one by one. Parking (a dispatcher's
    housekeeping) moves them out of the due range, a thousand at a time."""
    app, q, org, owner = queue
    await _fill(app, q, org, owner, 300)
    async with app.state.engine.begin() as conn:
        await _held_behind_retries(conn, q, org, owner, 3000)
        # A disabled endpoint's 3,000 pending deliveries, older still.
        disabled = uuid.uuid4()
        await conn.execute(sa.text(q.owner.replace("true,", "false,")), {"id": disabled, "org": org})
        await _insert(conn, q, org, disabled, range(300_001, 303_001), "pending")
        await _overdue(conn, q, after=300_000, by=dt.timedelta(hours=3))
    worker = Dispatcher(app.state.sessionmaker, DispatcherConfig())
    stuck, cleared, taken = await _parked_claim_costs(app, q, monkeypatch, worker)
    assert taken == CLAIM
    assert cleared <= 80 * CLAIM < stuck, (stuck, cleared)


@pytest.mark.parametrize("queue", [("CRM inbox", stale) for stale in sorted(STALE)], indirect=True, ids=lambda p: p[1])
async def test_inbox_events_that_cannot_be_applied_yet_are_out_of_the_claims_way(
    queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CRM's API unavailable for a while leaves events waiting for their retry (the claim takes
    events by when they are due, so it never reads those) and, behind them, later events of the
    same CRM deals, due but held: parking (an applier's housekeeping) moves those to the retry."""
    app, q, org, owner = queue
    await _fill(app, q, org, owner, 300)
    async with app.state.engine.begin() as conn:
        await _held_behind_retries(conn, q, org, owner, 6000)
    stuck, cleared, taken = await _parked_claim_costs(app, q, monkeypatch, InboxApplier(app.state.sessionmaker))
    assert taken == CLAIM
    assert cleared <= 80 * CLAIM < stuck, (stuck, cleared)
