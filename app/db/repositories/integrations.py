"""CRM integrations and their inbox: configuration lookups, storing inbound events once, and the
inbox applier's claims on them (the same leasing as the webhook outbox's)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import InboundEvent, Integration
from app.db.queues import parking_turn, pin_claim_plan
from app.domain.integrations import APPLIED_OUTCOMES, InboxOutcome, Provider

_inbox = InboundEvent.__table__
_integration = Integration.__table__
_earlier = _inbox.alias("earlier")

# Written as a literal, not a parameter, so that PostgreSQL's generic plan of the claim can use
# the partial index on the pending events (ix_inbound_event_due) and the per-object index on the
# pending id (an expression that must read as the index's does).
_PENDING = sa.literal_column(f"'{InboxOutcome.pending.value}'")

# Pending events whose lease (if any) ran out and which no earlier pending event of the same CRM
# object holds back: one object's events are applied in the order they arrived, never two at
# once (an event about no object is never held). "Earlier pending" is asked of the index on
# (organization_id, provider, object_id, PENDING_ID) (app/db/models.py) as a range of that
# expression, whatever the planner believes (app/db/queues.py).
_WAITING = (
    _inbox.c.outcome == _PENDING,
    _inbox.c.next_attempt_at <= sa.bindparam("now"),
    sa.or_(_inbox.c.leased_until.is_(None), _inbox.c.leased_until < sa.bindparam("now")),
)
_pending_id = sa.case((_earlier.c.outcome == _PENDING, _earlier.c.id))
_EARLIER_PENDING = (
    _earlier.c.organization_id == _inbox.c.organization_id,
    _earlier.c.provider == _inbox.c.provider,
    _earlier.c.object_id == _inbox.c.object_id,
    _pending_id < _inbox.c.id,
)
_DUE = (
    sa.select(_inbox.c.id)
    .where(*_WAITING, ~sa.exists().where(*_EARLIER_PENDING))
    .order_by(_inbox.c.next_attempt_at, _inbox.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(of=_inbox, skip_locked=True)
)

# Due events held back by an earlier pending event of their CRM object that waits for a retry
# (the CRM's API unavailable, say): a claim would step over them, one by one, every time. Parking
# moves them to that event's next attempt (they cannot go before), the first PARK_AT_ONCE due
# events at a time (app/db/queues.py).
PARK_AT_ONCE = 1000
_due_head = (
    sa.select(_inbox.c.id)
    .where(*_WAITING)
    .order_by(_inbox.c.next_attempt_at, _inbox.c.id)
    .limit(PARK_AT_ONCE)
    .scalar_subquery()
)
_blocker_retry = (
    sa.select(_earlier.c.next_attempt_at).where(*_EARLIER_PENDING).order_by(_pending_id).limit(1).scalar_subquery()
)
_PARK_HELD = (
    sa.update(_inbox)
    .where(_inbox.c.id.in_(_due_head), _inbox.c.object_id.is_not(None), _blocker_retry > sa.bindparam("now"))
    .values(next_attempt_at=_blocker_retry)
)
_CLAIM = (
    sa.update(_inbox)
    .where(_inbox.c.id.in_(_DUE.scalar_subquery()))
    .values(leased_until=sa.bindparam("lease_until"))
    .returning(_inbox.c.id)
)

# What applying an event needs: the event and its integration's maps and member.
_APPLY_INPUT = (
    sa.select(
        *_inbox.c,
        _integration.c.member_id,
        _integration.c.enabled,
        _integration.c.account_id,
        _integration.c.credentials,
        _integration.c.stage_map,
        _integration.c.owner_map,
        _integration.c.loss_reason_map,
        _integration.c.default_currency,
        _integration.c.loss_reason_field,
    )
    .select_from(_inbox.join(_integration, _integration.c.id == _inbox.c.integration_id))
    .where(_inbox.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_inbox.c.id)
)

# The provider's newest timestamp among the events already applied to each of some CRM objects (a
# pending event is never counted).
_LAST_APPLIED = (
    sa.select(_inbox.c.object_id, sa.func.max(_inbox.c.provider_timestamp))
    .where(
        _inbox.c.organization_id == sa.bindparam("org"),
        _inbox.c.provider == sa.bindparam("provider"),
        _inbox.c.object_id.in_(sa.bindparam("object_ids", expanding=True)),
        _inbox.c.outcome.in_([o.value for o in APPLIED_OUTCOMES]),
        _inbox.c.deal_id.is_not(None),
    )
    .group_by(_inbox.c.object_id)
)

_TAKE_MANY = (
    sa.update(_inbox)
    .where(_inbox.c.id.in_(sa.bindparam("ids", expanding=True)), _inbox.c.outcome == _PENDING)
    .values(attempts=_inbox.c.attempts)
    .returning(_inbox.c.id)
)

_OLDEST_PENDING = sa.select(sa.func.min(_inbox.c.received_at)).where(_inbox.c.outcome == _PENDING)


class IntegrationRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- configuration ---------------------------------------------------------------

    async def get(
        self, organization_id: uuid.UUID, provider: Provider, *, for_update: bool = False
    ) -> Integration | None:
        stmt = sa.select(Integration).where(
            Integration.organization_id == organization_id,  # type: ignore[arg-type]
            Integration.provider == provider.value,  # type: ignore[arg-type]
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_account(self, provider: Provider, account_id: str) -> sa.Row[Any] | None:
        """The integration an inbound event's account routes to (a plain row)."""
        stmt = sa.select(_integration).where(
            _integration.c.provider == provider.value, _integration.c.account_id == account_id
        )
        return (await self.session.execute(stmt)).first()

    async def account_taken(self, provider: Provider, account_id: str, organization_id: uuid.UUID) -> bool:
        """Whether another organisation's integration with this provider names this account."""
        stmt = sa.select(
            sa.exists().where(
                _integration.c.provider == provider.value,
                _integration.c.account_id == account_id,
                _integration.c.organization_id != organization_id,
            )
        )
        return bool((await self.session.execute(stmt)).scalar())

    # --- the inbox ---------------------------------------------------------------------

    async def store(self, events: Sequence[dict[str, Any]]) -> list[tuple[uuid.UUID, InboxOutcome, bool]]:
        """Store inbound events of one provider once, in two statements however many: for each, (its
        id, its outcome, whether this call stored it). The same provider event again (a retry, a
        replay, twice in one batch) finds the row stored first."""
        if not events:
            return []
        provider = events[0]["provider"]
        dialect = self.session.bind.dialect.name
        insert = postgresql.insert(_inbox) if dialect == "postgresql" else sqlite.insert(_inbox)
        stmt = insert.values(list(events)).on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
        stored = set((await self.session.execute(stmt.returning(_inbox.c.id))).scalars())
        keys = list(dict.fromkeys(event["provider_event_id"] for event in events))
        rows = await self.session.execute(
            sa.select(_inbox.c.id, _inbox.c.provider_event_id, _inbox.c.outcome).where(
                _inbox.c.provider == provider, _inbox.c.provider_event_id.in_(keys)
            )
        )
        found = {row.provider_event_id: row for row in rows}
        receipts = []
        for event in events:
            row = found[event["provider_event_id"]]
            first = row.id in stored and row.id == event["id"]
            receipts.append((row.id, InboxOutcome(row.outcome), first))
        return receipts

    async def list_page(
        self,
        organization_id: uuid.UUID,
        provider: Provider,
        *,
        outcome: InboxOutcome | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[sa.Row[Any]]:
        """Newest first (ids are UUIDv7: the order they were received in, reversed)."""
        stmt = sa.select(*_inbox.c).where(
            _inbox.c.organization_id == organization_id, _inbox.c.provider == provider.value
        )
        if outcome is not None:
            stmt = stmt.where(_inbox.c.outcome == outcome.value)
        if after is not None:
            stmt = stmt.where(_inbox.c.id < after)
        return list((await self.session.execute(stmt.order_by(_inbox.c.id.desc()).limit(limit))).all())

    # --- the applier ---------------------------------------------------------------------

    async def claim_due(self, *, now: dt.datetime, lease_until: dt.datetime, limit: int) -> list[uuid.UUID]:
        """Lease up to ``limit`` due events to this applier: concurrent appliers skip each other's
        locked rows (PostgreSQL) or queue behind one writer (SQLite); a lease that runs out (an
        applier killed mid-way) makes the event due again."""
        params = {"now": now, "lease_until": lease_until, "limit": limit}
        await pin_claim_plan(self.session)
        return list((await self.session.execute(_CLAIM, params)).scalars())

    async def park_held(self, now: dt.datetime) -> int:
        """Move due events held behind a retry out of the due range (see PARK_AT_ONCE); how many
        were moved. On PostgreSQL one applier at a time does it (the others skip)."""
        if not await parking_turn(self.session, "inbox"):
            return 0
        return int((await self.session.execute(_PARK_HELD, {"now": now})).rowcount or 0)  # type: ignore[attr-defined]

    async def apply_inputs(self, ids: Sequence[uuid.UUID]) -> list[sa.Row[Any]]:
        return list((await self.session.execute(_APPLY_INPUT, {"ids": list(ids)})).all())

    async def last_applied_at(self, organization_id: uuid.UUID, provider: str, object_id: str) -> dt.datetime | None:
        """The provider's timestamp of the newest event already applied to this object."""
        return (await self.last_applied_many(organization_id, provider, [object_id])).get(object_id)

    async def last_applied_many(
        self, organization_id: uuid.UUID, provider: str, object_ids: Sequence[str]
    ) -> dict[str, dt.datetime]:
        """``last_applied_at`` of many objects in one query."""
        if not object_ids:
            return {}
        params = {"org": organization_id, "provider": provider, "object_ids": list(set(object_ids))}
        return {
            object_id: value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
            for object_id, value in await self.session.execute(_LAST_APPLIED, params)
            if value is not None
        }

    async def take_many(self, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """``take`` for many claimed events at once: those still pending, locked."""
        return set((await self.session.execute(_TAKE_MANY, {"ids": list(event_ids)})).scalars())

    async def take(self, event_id: uuid.UUID) -> bool:
        """Lock a claimed event for the transaction that applies it; False when it is no longer
        pending (an applier whose lease ran out finished it meanwhile)."""
        return event_id in await self.take_many([event_id])

    async def finish(
        self,
        event_id: uuid.UUID,
        outcome: InboxOutcome,
        *,
        now: dt.datetime,
        deal_id: uuid.UUID | None = None,
        problem: dict[str, str] | None = None,
        provider_timestamp: dt.datetime | None = None,
    ) -> None:
        """Record an event's outcome; ``provider_timestamp``, when given, is the time of the state
        applied (a CRM read back may be newer than the event)."""
        outcome_of = {
            "outcome": outcome,
            "deal_id": deal_id,
            "problem": problem,
            "provider_timestamp": provider_timestamp,
        }
        await self.finish_many([{"id": event_id, **outcome_of}], now=now)

    async def finish_many(self, outcomes: Sequence[dict[str, Any]], *, now: dt.datetime) -> None:
        """``finish`` for many events in one round trip: each a dict of ``id``, ``outcome``,
        ``deal_id``, ``problem`` and ``provider_timestamp`` (None keeps the event's own)."""
        if not outcomes:
            return
        stmt = (
            sa.update(_inbox)
            .where(_inbox.c.id == sa.bindparam("b_id"), _inbox.c.outcome == _PENDING)
            .values(
                outcome=sa.bindparam("b_outcome"),
                deal_id=sa.bindparam("b_deal_id"),
                problem=sa.bindparam("b_problem", type_=_inbox.c.problem.type),
                provider_timestamp=sa.func.coalesce(
                    sa.bindparam("b_provider_timestamp", type_=_inbox.c.provider_timestamp.type),
                    _inbox.c.provider_timestamp,
                ),
                applied_at=now,
                leased_until=None,
                attempts=_inbox.c.attempts + 1,
            )
        )
        rows = [
            {
                "b_id": o["id"],
                "b_outcome": o["outcome"].value,
                "b_deal_id": o["deal_id"],
                "b_problem": o["problem"],
                "b_provider_timestamp": o["provider_timestamp"],
            }
            for o in outcomes
        ]
        await self.session.execute(stmt, rows)

    async def retry_later(self, event_id: uuid.UUID, *, at: dt.datetime, problem: dict[str, str] | None = None) -> None:
        """An attempt that failed for no rule's reason (the database, a bug, the CRM unavailable):
        tried again at ``at``; ``problem`` says why it is still pending."""
        await self.session.execute(
            sa.update(_inbox)
            .where(_inbox.c.id == event_id)
            .values(next_attempt_at=at, leased_until=None, attempts=_inbox.c.attempts + 1, problem=problem)
        )

    async def oldest_pending(self) -> dt.datetime | None:
        value = (await self.session.execute(_OLDEST_PENDING)).scalar()
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value  # type: ignore[no-any-return]
