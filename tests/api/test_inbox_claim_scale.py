"""Claiming CRM inbox events reads what it takes, however many wait (PostgreSQL).

The inbox is a queue as the webhook outbox is, with statistics as stale (see
tests/api/test_webhook_claim_scale.py): the test recreates them (ANALYZE with nothing or a few
pending, then a queue) and compares what PostgreSQL read for the exact statements an applier's
claim sends, with a short queue and with a long one, for both kinds of plan.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.main import create_app
from tests.api.test_webhook_claim_scale import claim_cost
from tests.conftest import bootstrap, settings_for

CLAIM = 64  # events a claim takes (the applier takes 8 tasks of 8 by default)
IN_FLIGHT = 128  # leased to appliers at the head of the queue
OBJECTS = 50  # CRM deals that every other event is about

# The statistics of the last ANALYZE: (events applied, events waiting) it saw.
STALE = {"nothing waiting": (10, 0), "a few waiting": (2000, 50)}


@pytest.fixture(params=sorted(STALE))
async def inbox(request: pytest.FixtureRequest, pg_database: str):  # type: ignore[no-untyped-def]
    applied, waiting = STALE[request.param]
    app = create_app(settings_for(pg_database))
    async with app.router.lifespan_context(app):
        org = await bootstrap(app)
        integration = uuid.uuid4()
        async with app.state.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO integration (id, organization_id, provider, enabled, account_id, credentials,"
                    " stage_map, owner_map, loss_reason_map, member_id, version, created_at, updated_at)"
                    " VALUES (:id, :org, 'hubspot', true, '1', '{}', '{}', '{}', '{}', :member, 1, now(), now())"
                ),
                {"id": integration, "org": org.id, "member": org.admin_id},
            )
            await _insert(conn, org.id, integration, range(1, applied + 1), outcome="applied")
            await _insert(conn, org.id, integration, range(applied + 1, applied + waiting + 1), outcome="pending")
            await conn.execute(sa.text("ANALYZE inbound_event"))
        yield app, org.id, integration


async def _insert(conn: Any, org: str, integration: uuid.UUID, numbers: range, *, outcome: str) -> None:
    """Events numbered ``numbers``, in arrival order (their ids grow with the number); every other
    one about one of OBJECTS deals, the rest each about a deal of its own."""
    await conn.execute(
        sa.text(
            """
            INSERT INTO inbound_event (id, organization_id, integration_id, provider, provider_event_id,
                                       received_at, action, object_type, object_id, payload, outcome,
                                       attempts, next_attempt_at)
            SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, :org, :integration,
                   'hubspot', i::text, now(), 'deal.propertyChange', 'deal',
                   CASE WHEN i % 2 = 0 THEN 'shared-' || (i % CAST(:objects AS int)) ELSE 'own-' || i END,
                   '{}', :outcome, 0, now() - interval '1 hour'
            FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
            """
        ),
        {
            "org": org,
            "integration": integration,
            "first": numbers.start,
            "last": numbers.stop - 1,
            "objects": OBJECTS,
            "outcome": outcome,
        },
    )


async def _queue(app: Any, org: str, integration: uuid.UUID, waiting: int) -> None:
    """``waiting`` due events, the first IN_FLIGHT of them leased (being applied)."""
    async with app.state.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM inbound_event WHERE outcome = 'pending'"))
        await _insert(conn, org, integration, range(100_001, 100_001 + waiting), outcome="pending")
        await conn.execute(
            sa.text(
                "UPDATE inbound_event SET leased_until = now() + interval '1 hour' WHERE id IN"
                " (SELECT id FROM inbound_event WHERE outcome = 'pending' ORDER BY id LIMIT :n)"
            ),
            {"n": IN_FLIGHT},
        )


async def _claim(uow: UnitOfWork) -> Sequence[Any]:
    now = utcnow()
    return await uow.integrations.claim_due(now=now, lease_until=now + dt.timedelta(minutes=1), limit=CLAIM)


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
async def test_a_claim_reads_as_much_with_6000_events_waiting_as_with_300(
    inbox: Any, plan_cache_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, org, integration = inbox
    await _queue(app, org, integration, 300)
    short, taken_short = await claim_cost(app, monkeypatch, plan_cache_mode, _claim)
    await _queue(app, org, integration, 6000)
    long, taken_long = await claim_cost(app, monkeypatch, plan_cache_mode, _claim)
    # Per CRM deal only the first pending event is due, and every shared deal's first one is in
    # flight: a claim takes events about deals of their own (one in two), from behind those in flight.
    assert (taken_short, taken_long) == (CLAIM, CLAIM)
    assert long <= 2 * short + 50 and long <= 80 * CLAIM, (short, long)
