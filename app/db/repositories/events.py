"""The append-only event log and its per-organisation sequence."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Event, EventSequence
from app.db.repositories.deals import visible_deal_ids
from app.db.repositories.webhooks import WebhookRepository
from app.db.types import utcnow
from app.domain.ids import uuid7
from app.domain.members import Actor
from app.domain.webhooks import EVENT_TYPES

_seq = EventSequence.__table__
_event = Event.__table__

# Taking the next number locks the organisation's sequence row until commit, so
# events become visible in seq order and a feed reader never skips one.
_NEXT_SEQ = (
    sa.update(_seq)
    .where(_seq.c.organization_id == sa.bindparam("org"))
    .values(last_seq=_seq.c.last_seq + 1)
    .returning(_seq.c.last_seq)
)


class EventRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.outbox = WebhookRepository(session)

    async def create_sequence(self, organization_id: uuid.UUID) -> None:
        await self.session.execute(sa.insert(_seq).values(organization_id=organization_id, last_seq=0))

    async def append(
        self,
        *,
        organization_id: uuid.UUID,
        type: str,
        actor_id: uuid.UUID | None,
        subject_type: str,
        subject_id: uuid.UUID,
        data: dict[str, Any] | None = None,
        deal_id: uuid.UUID | None = None,
    ) -> int:
        assert type in EVENT_TYPES, f"{type} is missing from app.domain.webhooks.EVENT_TYPES"
        seq = (await self.session.execute(_NEXT_SEQ, {"org": organization_id})).scalar_one()
        event_id, occurred_at = uuid7(), utcnow()
        await self.session.execute(
            sa.insert(_event).values(
                id=event_id,
                organization_id=organization_id,
                seq=seq,
                type=type,
                actor_id=actor_id,
                deal_id=deal_id,
                subject_type=subject_type,
                subject_id=subject_id,
                data=data or {},
                occurred_at=occurred_at,
            )
        )
        # The outbox: deliveries are written in the event's own transaction, so a committed
        # event is never missed and a rolled-back one never sent.
        await self.outbox.enqueue(
            organization_id=organization_id,
            event_id=event_id,
            event_seq=int(seq),
            event_type=type,
            deal_id=deal_id,
            now=occurred_at,
        )
        return int(seq)

    async def record(
        self,
        actor: Actor,
        type: str,
        *,
        subject_type: str,
        subject_id: uuid.UUID,
        deal_id: uuid.UUID | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        """Append an event made by ``actor``, in the actor's organisation."""
        return await self.append(
            organization_id=actor.organization_id,
            type=type,
            actor_id=actor.member_id,
            subject_type=subject_type,
            subject_id=subject_id,
            deal_id=deal_id,
            data=data,
        )

    async def list_feed(
        self,
        *,
        organization_id: uuid.UUID,
        after_seq: int,
        limit: int,
        types: Sequence[str] | None = None,
        deal_id: uuid.UUID | None = None,
        visible_to: Actor | None = None,
        org_level: bool = True,
    ) -> list[Event]:
        """Events after ``after_seq`` in seq order; ``visible_to`` limits deal events to the deals
        that member sees, and ``org_level`` says whether events that belong to no deal are included."""
        visible_deals = None if visible_to is None else visible_deal_ids(visible_to)
        stmt = sa.select(Event).where(Event.organization_id == organization_id, Event.seq > after_seq)
        if types:
            stmt = stmt.where(Event.type.in_(types))
        if deal_id is not None:
            stmt = stmt.where(Event.deal_id == deal_id)
        if visible_deals is not None or not org_level:
            allowed = []
            if org_level:
                allowed.append(Event.deal_id.is_(None))
            if visible_deals is not None:
                allowed.append(Event.deal_id.in_(visible_deals))
            stmt = stmt.where(sa.or_(*allowed) if allowed else sa.false())
        stmt = stmt.order_by(Event.seq).limit(limit)
        return list((await self.session.execute(stmt)).scalars())
