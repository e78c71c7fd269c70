"""Webhook endpoints, the delivery outbox, and the dispatcher's claims on it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSubscription
from app.db.queues import parking_turn, pin_claim_plan
from app.db.types import UTCDateTime
from app.domain.ids import uuid7
from app.domain.webhooks import DeliveryStatus, RecordedAttempt, subscription_patterns

_sub = WebhookSubscription.__table__
_delivery = WebhookDelivery.__table__
_endpoint = WebhookEndpoint.__table__
_event = Event.__table__
_earlier = _delivery.alias("earlier")

# The outbox's one indexed lookup: which endpoints of the organisation take this event type.
_MATCHING_ENDPOINTS = (
    sa.select(_sub.c.endpoint_id)
    .where(
        _sub.c.organization_id == sa.bindparam("org"),
        _sub.c.pattern.in_(sa.bindparam("patterns", expanding=True)),
    )
    .distinct()
)

# The same for the event types of a batch of events at once: which endpoints take which patterns.
_SUBSCRIBED = sa.select(_sub.c.endpoint_id, _sub.c.pattern).where(
    _sub.c.organization_id == sa.bindparam("org"),
    _sub.c.pattern.in_(sa.bindparam("patterns", expanding=True)),
)

# Due deliveries whose endpoint is active, whose lease (if any) ran out, and which no earlier
# pending delivery of the same deal to the same endpoint holds back. On PostgreSQL events are
# numbered without a lock (app/db/repositories/events.py), so an earlier delivery may still be
# uncommitted: only deliveries at or below their organisation's event horizon are due (a ping,
# event_seq 0, always is).
_HORIZONS = sa.text("SELECT organization_id, horizon FROM dealcoach_delivery_horizons(:due)").columns(
    sa.column("organization_id", sa.Uuid()), sa.column("horizon", sa.BigInteger())
)
_horizon = (
    sa.func.unnest(
        sa.bindparam("h_orgs", type_=postgresql.ARRAY(sa.Uuid())),
        sa.bindparam("h_upto", type_=postgresql.ARRAY(sa.BigInteger())),
    )
    .table_valued("org", "upto")
    .render_derived(name="h")
)
_WITHIN_HORIZON = _delivery.c.event_seq <= sa.func.coalesce(
    sa.select(_horizon.c.upto).where(_horizon.c.org == _delivery.c.organization_id).scalar_subquery(), 0
)


# Per-deal order: a delivery is due only when no earlier delivery of its deal to its endpoint is
# pending, asked of the index on (endpoint_id, deal_id, PENDING_SEQ) (app/db/models.py) as a
# range of that expression, whatever the planner believes (app/db/queues.py).
def _pending_seq(deliveries: sa.FromClause) -> sa.ColumnElement[Any]:
    """PENDING_SEQ of app/db/models.py, as the index has it (the status a literal)."""
    return sa.case(
        (deliveries.c.status == sa.literal_column(f"'{DeliveryStatus.pending.value}'"), deliveries.c.event_seq)
    )


_EARLIER_PENDING = (
    _earlier.c.endpoint_id == _delivery.c.endpoint_id,
    _earlier.c.deal_id == _delivery.c.deal_id,
    _pending_seq(_earlier) < _delivery.c.event_seq,
)
_HELD_BACK = sa.exists().where(*_EARLIER_PENDING)
# Pending, due, and not leased (or its lease ran out).
_WAITING = (
    _delivery.c.status == DeliveryStatus.pending.value,
    _delivery.c.next_attempt_at <= sa.bindparam("now"),
    sa.or_(_delivery.c.leased_until.is_(None), _delivery.c.leased_until < sa.bindparam("now")),
)

# Due deliveries that cannot be sent yet (app/db/queues.py: a claim steps over them, one by one,
# every time): those held back by an earlier pending delivery of their deal that waits for its
# next retry, and those of inactive endpoints. Parking moves them out of the due range, the
# first PARK_AT_ONCE of the queue at a time: a held one to the time its deal's first pending
# delivery is next attempted (it cannot go before; it is due again then, and waits its turn as
# before), one of an inactive endpoint by PARK_INACTIVE (re-activating the endpoint makes its
# pending deliveries due at once).
PARK_AT_ONCE = 1000
PARK_INACTIVE = dt.timedelta(hours=1)
_due_head = (
    sa.select(_delivery.c.id)
    .where(*_WAITING)
    .order_by(_delivery.c.next_attempt_at)
    .limit(PARK_AT_ONCE)
    .scalar_subquery()
)
_blocker_retry = (
    sa.select(_earlier.c.next_attempt_at)
    .where(*_EARLIER_PENDING)
    .order_by(_pending_seq(_earlier))
    .limit(1)
    .scalar_subquery()
)
_PARK_HELD = (
    sa.update(_delivery)
    .where(_delivery.c.id.in_(_due_head), _delivery.c.deal_id.is_not(None), _blocker_retry > sa.bindparam("now"))
    .values(next_attempt_at=_blocker_retry)
)
_PARK_INACTIVE = (
    sa.update(_delivery)
    .where(
        _delivery.c.id.in_(_due_head),
        _delivery.c.endpoint_id.in_(sa.select(_endpoint.c.id).where(_endpoint.c.active.is_(False))),
    )
    .values(next_attempt_at=sa.bindparam("later"))
)


def _claim(*, bounded: bool) -> sa.Update:
    due = (
        sa.select(_delivery.c.id)
        .select_from(_delivery.join(_endpoint, _endpoint.c.id == _delivery.c.endpoint_id))
        .where(
            *_WAITING,
            _endpoint.c.active.is_(True),
            ~_HELD_BACK,
            *([_WITHIN_HORIZON] if bounded else []),
        )
        .order_by(_delivery.c.next_attempt_at)
        .limit(sa.bindparam("limit"))
        .with_for_update(of=_delivery, skip_locked=True)
    )
    return (
        sa.update(_delivery)
        .where(_delivery.c.id.in_(due.scalar_subquery()))
        .values(leased_until=sa.bindparam("lease_until"))
        .returning(_delivery.c.id)
    )


# What an attempt needs: the delivery, its endpoint's URL and secrets, and the event.
def _attempt_input(deliveries: sa.FromClause) -> sa.Select[Any]:
    return sa.select(
        deliveries.c.id,
        deliveries.c.endpoint_id,
        deliveries.c.event_id,
        deliveries.c.event_type,
        deliveries.c.deal_id,
        deliveries.c.payload,
        deliveries.c.attempts,
        deliveries.c.created_at,
        _endpoint.c.url,
        _endpoint.c.secret,
        _endpoint.c.previous_secret,
        _endpoint.c.previous_secret_until,
        _endpoint.c.failing_since,
        _event.c.seq.label("e_seq"),
        _event.c.type.label("e_type"),
        _event.c.actor_id.label("e_actor_id"),
        _event.c.deal_id.label("e_deal_id"),
        _event.c.subject_type.label("e_subject_type"),
        _event.c.subject_id.label("e_subject_id"),
        _event.c.data.label("e_data"),
        _event.c.occurred_at.label("e_occurred_at"),
    ).select_from(
        deliveries.join(_endpoint, _endpoint.c.id == deliveries.c.endpoint_id).outerjoin(
            _event, _event.c.id == deliveries.c.event_id
        )
    )


_CLAIM = _claim(bounded=False)
_ATTEMPT_INPUT = _attempt_input(_delivery).where(_delivery.c.id.in_(sa.bindparam("ids", expanding=True)))
# PostgreSQL: the claim and what the attempts need in one statement.
_claimed = (
    _claim(bounded=True)
    .returning(
        _delivery.c.endpoint_id,
        _delivery.c.event_id,
        _delivery.c.event_type,
        _delivery.c.deal_id,
        _delivery.c.payload,
        _delivery.c.attempts,
        _delivery.c.created_at,
    )
    .cte("claimed")
)
_CLAIM_WITHIN_HORIZON = _attempt_input(_claimed)
_attempt = WebhookAttempt.__table__

_RECORD_DELIVERY = (
    sa.update(_delivery)
    .where(_delivery.c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        attempts=_delivery.c.attempts + 1,
        last_attempt_at=sa.bindparam("b_at"),
        last_status_code=sa.bindparam("b_code"),
        last_error=sa.bindparam("b_error"),
        last_response_body=sa.bindparam("b_body"),
        leased_until=None,
        next_attempt_at=sa.func.coalesce(sa.bindparam("b_next", type_=UTCDateTime()), _delivery.c.next_attempt_at),
    )
)
# A success touches the endpoint's row only when it changes its health or moves its last
# success on by a second or more: thousands of deliveries a second to one endpoint do not
# queue every dispatcher behind that one row.
_ENDPOINT_SUCCEEDED = (
    sa.update(_endpoint)
    .where(
        _endpoint.c.id == sa.bindparam("b_id"),
        sa.or_(
            _endpoint.c.failing_since.is_not(None),
            _endpoint.c.last_success_at.is_(None),
            _endpoint.c.last_success_at < sa.bindparam("b_stale"),
        ),
    )
    .values(last_success_at=sa.bindparam("b_at"), failing_since=None)
)
LAST_SUCCESS_GRANULARITY = dt.timedelta(seconds=1)
_ENDPOINT_FAILED = (
    sa.update(_endpoint)
    .where(_endpoint.c.id == sa.bindparam("b_id"), _endpoint.c.failing_since.is_(None))
    .values(failing_since=sa.bindparam("b_at"))
)

_OLDEST_DUE = sa.select(sa.func.min(_delivery.c.next_attempt_at)).where(
    _delivery.c.status == DeliveryStatus.pending.value
)


class WebhookRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- endpoints ---------------------------------------------------------------

    async def get_endpoint(
        self, organization_id: uuid.UUID, endpoint_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookEndpoint | None:
        stmt = sa.select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id,  # type: ignore[arg-type]
            WebhookEndpoint.organization_id == organization_id,  # type: ignore[arg-type]
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_endpoints(
        self, organization_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> list[WebhookEndpoint]:
        stmt = sa.select(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization_id)  # type: ignore[arg-type]
        if after is not None:
            stmt = stmt.where(WebhookEndpoint.id > after)  # type: ignore[arg-type]
        stmt = stmt.order_by(WebhookEndpoint.id).limit(limit)  # type: ignore[arg-type]
        return list((await self.session.execute(stmt)).scalars())

    async def replace_subscriptions(self, endpoint: WebhookEndpoint) -> None:
        """An active endpoint's patterns are what the outbox matches; an inactive one has none."""
        await self.session.execute(sa.delete(_sub).where(_sub.c.endpoint_id == endpoint.id))
        if endpoint.active and endpoint.event_types:
            await self.session.execute(
                sa.insert(_sub),
                [
                    {"organization_id": endpoint.organization_id, "pattern": p, "endpoint_id": endpoint.id}
                    for p in endpoint.event_types
                ],
            )

    async def delete_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Gone with its subscriptions, deliveries and attempts (the foreign keys cascade):
        nothing pending is ever sent."""
        await self.session.execute(sa.delete(_endpoint).where(_endpoint.c.id == endpoint.id))

    # --- deliveries, as the API shows them ---------------------------------------

    async def list_deliveries(
        self, endpoint_id: uuid.UUID, *, status: DeliveryStatus | None, after: uuid.UUID | None, limit: int
    ) -> list[sa.Row[Any]]:
        stmt = sa.select(*_delivery.c).where(_delivery.c.endpoint_id == endpoint_id)
        if status is not None:
            stmt = stmt.where(_delivery.c.status == status.value)
        if after is not None:
            stmt = stmt.where(_delivery.c.id < after)
        return list((await self.session.execute(stmt.order_by(_delivery.c.id.desc()).limit(limit))).all())

    async def get_delivery(
        self, organization_id: uuid.UUID, delivery_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookDelivery | None:
        stmt = sa.select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,  # type: ignore[arg-type]
            WebhookDelivery.organization_id == organization_id,  # type: ignore[arg-type]
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    # --- the outbox ---------------------------------------------------------------

    async def enqueue(
        self,
        *,
        organization_id: uuid.UUID,
        event_id: uuid.UUID,
        event_seq: int,
        event_type: str,
        deal_id: uuid.UUID | None,
        now: dt.datetime,
    ) -> int:
        """Deliveries of one event to every endpoint that takes it, in the event's transaction.
        With no endpoint (the common case) this is one indexed lookup and nothing more."""
        params = {"org": organization_id, "patterns": list(subscription_patterns(event_type))}
        endpoint_ids = list((await self.session.execute(_MATCHING_ENDPOINTS, params)).scalars())
        if not endpoint_ids:
            return 0
        await self.session.execute(
            sa.insert(_delivery),
            [
                _pending_delivery(organization_id, endpoint_id, event_id, event_seq, event_type, deal_id, now)
                for endpoint_id in endpoint_ids
            ],
        )
        return len(endpoint_ids)

    async def subscribers(self, organization_id: uuid.UUID, event_types: Iterable[str]) -> dict[str, set[uuid.UUID]]:
        """Per event type, the endpoints that take it (``enqueue``'s lookup for many types at once)."""
        types = set(event_types)
        patterns = {pattern for event_type in types for pattern in subscription_patterns(event_type)}
        params = {"org": organization_id, "patterns": sorted(patterns)}
        taking: dict[str, set[uuid.UUID]] = {}
        for row in (await self.session.execute(_SUBSCRIBED, params)).all():
            taking.setdefault(row.pattern, set()).add(row.endpoint_id)
        return {
            event_type: set().union(*(taking.get(p, set()) for p in subscription_patterns(event_type)))
            for event_type in types
        }

    async def enqueue_many(
        self,
        *,
        organization_id: uuid.UUID,
        events: Sequence[tuple[uuid.UUID, int, str, uuid.UUID | None]],
        endpoints: dict[str, set[uuid.UUID]],
        now: dt.datetime,
    ) -> int:
        """Deliveries of many events (id, seq, type, deal) to the endpoints that take their types,
        in one statement, in the events' transaction."""
        rows = [
            _pending_delivery(organization_id, endpoint_id, event_id, event_seq, event_type, deal_id, now)
            for event_id, event_seq, event_type, deal_id in events
            for endpoint_id in sorted(endpoints.get(event_type, ()))
        ]
        if rows:
            await self.session.execute(sa.insert(_delivery), rows)
        return len(rows)

    # --- the dispatcher -----------------------------------------------------------

    async def claim_due(self, *, now: dt.datetime, lease_until: dt.datetime, limit: int) -> list[sa.Row[Any]]:
        """Lease up to ``limit`` due deliveries to this dispatcher and return what their attempts
        need. Concurrent dispatchers skip each other's locked rows (PostgreSQL) or queue behind
        one writer (SQLite); a lease that runs out (a dispatcher killed mid-attempt) makes the
        delivery due again. On PostgreSQL the horizons are read in a statement of their own,
        before the claim's snapshot, and the claim reads what the attempts need in the same
        statement."""
        params: dict[str, Any] = {"now": now, "lease_until": lease_until, "limit": limit}
        if self.session.bind.dialect.name != "postgresql":
            ids = list((await self.session.execute(_CLAIM, params)).scalars())
            return list((await self.session.execute(_ATTEMPT_INPUT, {"ids": ids})).all()) if ids else []
        horizons = (await self.session.execute(_HORIZONS, {"due": now})).all()
        params |= {"h_orgs": [h.organization_id for h in horizons], "h_upto": [h.horizon for h in horizons]}
        await pin_claim_plan(self.session)
        return list((await self.session.execute(_CLAIM_WITHIN_HORIZON, params)).all())

    async def record_attempts(self, attempts: Sequence[RecordedAttempt]) -> None:
        """Many attempts' outcomes in a handful of statements: the attempts, their deliveries,
        and their endpoints' health (a success clears the failing clock, a failure starts it)."""
        if not attempts:
            return
        await self.session.execute(
            sa.insert(_attempt),
            [
                {
                    "id": uuid7(),
                    "delivery_id": a.delivery_id,
                    "attempted_at": a.attempted_at,
                    "status_code": a.status_code,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
                for a in attempts
            ],
        )
        await self.session.execute(
            _RECORD_DELIVERY,
            [
                {
                    "b_id": a.delivery_id,
                    "b_status": a.status.value,
                    "b_at": a.attempted_at,
                    "b_code": a.status_code,
                    "b_error": a.error,
                    "b_body": a.body,
                    "b_next": a.next_attempt_at,
                }
                for a in attempts
            ],
        )
        # Endpoint rows are locked in id order, so concurrent dispatchers never deadlock.
        succeeded: dict[uuid.UUID, dt.datetime] = {}
        failed: dict[uuid.UUID, dt.datetime] = {}
        for a in attempts:
            (succeeded if a.succeeded else failed)[a.endpoint_id] = a.attempted_at
        if succeeded:
            await self.session.execute(
                _ENDPOINT_SUCCEEDED,
                [
                    {"b_id": e, "b_at": at, "b_stale": at - LAST_SUCCESS_GRANULARITY}
                    for e, at in sorted(succeeded.items())
                ],
            )
        if failed:
            await self.session.execute(_ENDPOINT_FAILED, [{"b_id": e, "b_at": at} for e, at in sorted(failed.items())])

    async def disable_endpoint(self, endpoint_id: uuid.UUID, reason: str, now: dt.datetime) -> None:
        await self.session.execute(
            sa.update(_endpoint)
            .where(_endpoint.c.id == endpoint_id)
            .values(active=False, disabled_reason=reason, updated_at=now, version=_endpoint.c.version + 1)
        )
        await self.session.execute(sa.delete(_sub).where(_sub.c.endpoint_id == endpoint_id))

    async def oldest_due(self) -> dt.datetime | None:
        value = (await self.session.execute(_OLDEST_DUE)).scalar()
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value  # type: ignore[no-any-return]

    async def park_unsendable(self, now: dt.datetime) -> int:
        """Move due deliveries that cannot be sent yet out of the due range (see PARK_AT_ONCE);
        how many were moved. On PostgreSQL one dispatcher at a time does it (the others skip)."""
        if not await parking_turn(self.session, "webhooks"):
            return 0
        held = await self.session.execute(_PARK_HELD, {"now": now})
        inactive = await self.session.execute(_PARK_INACTIVE, {"now": now, "later": now + PARK_INACTIVE})
        return int(held.rowcount or 0) + int(inactive.rowcount or 0)  # type: ignore[attr-defined]

    async def resume_deliveries(self, endpoint_id: uuid.UUID, now: dt.datetime) -> None:
        """An endpoint made active again: its pending deliveries are due now."""
        await self.session.execute(
            sa.update(_delivery)
            .where(
                _delivery.c.endpoint_id == endpoint_id,
                _delivery.c.status == DeliveryStatus.pending.value,
                _delivery.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )

    async def prune_succeeded(self, before: dt.datetime, limit: int = 1000) -> int:
        """Old succeeded deliveries go, a batch at a time; failed ones stay for inspection."""
        old = (
            sa.select(_delivery.c.id)
            .where(_delivery.c.status == DeliveryStatus.succeeded.value, _delivery.c.created_at < before)
            .limit(limit)
        )
        ids = list((await self.session.execute(old)).scalars())
        if not ids:
            return 0
        await self.session.execute(sa.delete(_delivery).where(_delivery.c.id.in_(ids)))  # attempts cascade
        return len(ids)


def _pending_delivery(
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    event_id: uuid.UUID,
    event_seq: int,
    event_type: str,
    deal_id: uuid.UUID | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """An outbox row: the delivery of one event to one endpoint, due at once."""
    return {
        "id": uuid7(),
        "organization_id": organization_id,
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "event_seq": event_seq,
        "event_type": event_type,
        "deal_id": deal_id,
        "payload": None,
        "status": DeliveryStatus.pending.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
