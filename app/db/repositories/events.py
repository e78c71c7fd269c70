"""The append-only event log, numbered per organisation without a lock."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.db.models import Event
from app.db.repositories.deals import visible_deal_ids
from app.db.repositories.webhooks import WebhookRepository
from app.db.types import utcnow
from app.domain.changes import NewEvent
from app.domain.ids import uuid7
from app.domain.members import Actor
from app.domain.webhooks import EVENT_TYPES

_event = Event.__table__

# Numbering without a lock. On PostgreSQL each organisation draws from a sequence of its own
# (migration 0008), inside the INSERT that writes the event; before its first draw a transaction
# publishes the number it draws above (its "floor", in its transaction-local application_name),
# and a feed reader returns only events at or below the horizon: the sequence's last value, read
# before the floors of the writers still in flight, read before the events. Every event at or
# below it has committed or never will, so a reader that pages by seq never skips one. SQLite has
# one writer at a time (BEGIN IMMEDIATE): the organisation's largest seq plus one is enough, and
# whatever a reader sees is already final.


class next_event_seq(FunctionElement[int]):
    """The next ``seq`` of the organisation given, drawn where the INSERT evaluates it."""

    type = sa.BigInteger()
    inherit_cache = True
    name = "next_event_seq"


@compiles(next_event_seq, "postgresql")
def _next_event_seq_postgresql(element: next_event_seq, compiler: SQLCompiler, **kw: Any) -> str:
    return f"dealcoach_next_event_seq({compiler.process(element.clauses, **kw)})"


@compiles(next_event_seq)
def _next_event_seq_counted(element: next_event_seq, compiler: SQLCompiler, **kw: Any) -> str:
    (org,) = element.clauses
    largest = (
        sa.select(sa.func.coalesce(sa.func.max(_event.c.seq), 0) + 1)
        .where(_event.c.organization_id == org)
        .correlate(None)
        .scalar_subquery()
    )
    return compiler.process(largest, **kw)


_ORG = sa.bindparam("org", type_=_event.c.organization_id.type)

_INSERT = sa.insert(_event).values(
    id=sa.bindparam("id"),
    organization_id=_ORG,
    seq=next_event_seq(_ORG),
    type=sa.bindparam("type"),
    actor_id=sa.bindparam("actor_id"),
    deal_id=sa.bindparam("deal_id"),
    subject_type=sa.bindparam("subject_type"),
    subject_id=sa.bindparam("subject_id"),
    data=sa.bindparam("data"),
    occurred_at=sa.bindparam("occurred_at"),
)
_APPEND = _INSERT.returning(_event.c.seq)

# Many events at once. On PostgreSQL one INSERT ... SELECT over the events as parallel arrays,
# unnested in order, each row drawing its seq from the organisation's sequence inside the INSERT
# as _APPEND does (volatile functions in a SELECT list are evaluated after its ORDER BY);
# executing _APPEND once per row instead (executemany) costs PostgreSQL about 40 % more CPU.
# SQLite executes _INSERT once per row: each row's largest-seq-plus-one sees the rows before it.
# The data go as JSON text, serialised by orjson (the column type would serialise each with json.dumps).
_MANY = ("id", "type", "deal_id", "subject_type", "subject_id", "data")
_array_types = {name: postgresql.ARRAY(sa.Text() if name == "data" else _event.c[name].type) for name in _MANY}
_rows = (
    sa.func.unnest(*(sa.bindparam(f"a_{name}", type_=_array_types[name]) for name in _MANY))
    .table_valued(*_MANY, with_ordinality="n")
    .render_derived(name="r")
)
_APPEND_UNNESTED = (
    sa.insert(_event)
    .from_select(
        ["organization_id", "seq", "actor_id", "occurred_at", *_MANY],
        sa.select(
            _ORG,
            next_event_seq(_ORG),
            sa.bindparam("actor_id", type_=_event.c.actor_id.type),
            sa.bindparam("occurred_at", type_=_event.c.occurred_at.type),
            *(_rows.c[name] for name in _MANY[:-1]),
            sa.cast(_rows.c.data, postgresql.JSONB()),
        ).order_by(_rows.c.n),
    )
    .returning(_event.c.id, _event.c.seq)
)
_SEQS = sa.select(_event.c.id, _event.c.seq).where(_event.c.id.in_(sa.bindparam("ids", expanding=True)))

# PostgreSQL only: the largest seq of the organisation a reader may return (see above). It must
# run in a statement of its own, before the statement that reads the events.
_HORIZON = sa.select(sa.func.dealcoach_event_horizon(_ORG, type_=sa.BigInteger()))


class EventRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.outbox = WebhookRepository(session)

    @property
    def _numbered_by_sequence(self) -> bool:
        return self.session.bind.dialect.name == "postgresql"

    async def create_sequence(self, organization_id: uuid.UUID) -> None:
        """A new organisation's event numbering (a sequence of its own on PostgreSQL)."""
        if self._numbered_by_sequence:
            await self.session.execute(sa.select(sa.func.dealcoach_create_event_seq(_ORG)), {"org": organization_id})

    async def horizon(self, organization_id: uuid.UUID) -> int | None:
        """The largest seq a reader may return now, or None when every event it sees is final."""
        if not self._numbered_by_sequence:
            return None
        return int((await self.session.execute(_HORIZON, {"org": organization_id})).scalar_one())

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
        event_id, occurred_at = uuid7(), utcnow()
        params = {
            "id": event_id,
            "org": organization_id,
            "type": type,
            "actor_id": actor_id,
            "deal_id": deal_id,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "data": data or {},
            "occurred_at": occurred_at,
        }
        seq = (await self.session.execute(_APPEND, params)).scalar_one()
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

    async def append_many(
        self, *, organization_id: uuid.UUID, actor_id: uuid.UUID | None, events: Sequence[NewEvent]
    ) -> None:
        """Many events of one organisation in one statement, numbered in the order given, each
        drawing its seq inside the INSERT as ``append`` does; then their outbox rows (the events'
        seqs are read back on SQLite only when an endpoint takes one of them)."""
        if not events:
            return
        for event in events:
            assert event.type in EVENT_TYPES, f"{event.type} is missing from app.domain.webhooks.EVENT_TYPES"
        occurred_at = utcnow()
        ids = [uuid7() for _ in events]
        endpoints = await self.outbox.subscribers(organization_id, {event.type for event in events})
        seqs: dict[uuid.UUID, int] = {}
        if self._numbered_by_sequence:
            params: dict[str, Any] = {"org": organization_id, "actor_id": actor_id, "occurred_at": occurred_at}
            params |= {"a_id": ids} | {f"a_{name}": list(map(attrgetter(name), events)) for name in _MANY[1:-1]}
            params["a_data"] = [orjson.dumps(event.data).decode() for event in events]
            seqs = {event_id: int(seq) for event_id, seq in await self.session.execute(_APPEND_UNNESTED, params)}
        else:
            rows = [
                {
                    "id": event_id,
                    "org": organization_id,
                    "type": event.type,
                    "actor_id": actor_id,
                    "deal_id": event.deal_id,
                    "subject_type": event.subject_type,
                    "subject_id": event.subject_id,
                    "data": event.data,
                    "occurred_at": occurred_at,
                }
                for event_id, event in zip(ids, events, strict=True)
            ]
            await self.session.execute(_INSERT, rows)
        taken = [(event_id, event) for event_id, event in zip(ids, events, strict=True) if endpoints[event.type]]
        if not taken:
            return
        if not seqs:
            found = await self.session.execute(_SEQS, {"ids": [event_id for event_id, _ in taken]})
            seqs = {event_id: int(seq) for event_id, seq in found}
        await self.outbox.enqueue_many(
            organization_id=organization_id,
            events=[(event_id, seqs[event_id], event.type, event.deal_id) for event_id, event in taken],
            endpoints=endpoints,
            now=occurred_at,
        )

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
        """Events after ``after_seq`` in seq order, up to the horizon (none that a later commit
        could still precede); ``visible_to`` limits deal events to the deals that member sees, and
        ``org_level`` says whether events that belong to no deal are included."""
        upto = await self.horizon(organization_id)
        visible_deals = None if visible_to is None else visible_deal_ids(visible_to)
        stmt = sa.select(Event).where(Event.organization_id == organization_id, Event.seq > after_seq)
        if upto is not None:
            stmt = stmt.where(Event.seq <= upto)
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
