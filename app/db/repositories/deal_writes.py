"""The hot write: a new deal and its `deal.created` event in one statement, outside any session.

A deal created with no external reference and no loss (what a seller or a front end creates by
hand) writes two rows and, when an endpoint takes `deal.created`, its deliveries. On PostgreSQL
the first two go in one statement of data-modifying CTEs: one round trip, its own transaction
(or the idempotency claim's, when it runs in one), no BEGIN/COMMIT, no ORM flush. The statement
writes nothing when an endpoint of the organisation takes the event; the service then takes the
general path, which writes the outbox rows too (an organisation with endpoints pays a lookup
more). The rules were applied before, by the service, to what the statement writes.

SQLite has no data-modifying CTEs; the general path serves it (one writer at a time anyway).

Built once at import; executed on the pool's asyncpg connection (app/db/repositories/reads.py
``fetch_rows``), like the hot reads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.models import Deal, Event, Member, WebhookSubscription
from app.db.repositories.events import next_event_seq
from app.db.repositories.members import line_ids
from app.db.repositories.reads import DEAL_COLUMNS, REVIEW_ID, fetch_rows, fetch_rows_in, refs_json
from app.db.types import DriverType
from app.domain.ids import uuid7
from app.domain.webhooks import subscription_patterns

_d = Deal.__table__
_e = Event.__table__
_m = Member.__table__
_sub = WebhookSubscription.__table__

CREATED = "deal.created"

# Bound with the types the driver takes as they are (no SQLAlchemy bind processing), so the
# statement can be sent on the driver connection: aware UTC datetimes, UUIDs, dates, and the
# event's data as JSON text cast by PostgreSQL.
_TS = sa.DateTime(timezone=True)
_ORG = sa.bindparam("org", type_=_d.c.organization_id.type)
_DEAL_ID = sa.bindparam("deal_id", type_=_d.c.id.type)
_NOW = sa.bindparam("now", type_=_TS)

_FACTS = {
    "name": sa.bindparam("name", type_=sa.String()),
    "account_name": sa.bindparam("account_name", type_=sa.String()),
    "amount_minor": sa.bindparam("amount_minor", type_=sa.BigInteger()),
    "currency": sa.bindparam("currency", type_=sa.String()),
    "expected_close_date": sa.bindparam("expected_close_date", type_=sa.Date()),
    "stage": sa.bindparam("stage", type_=sa.String()),
    "owner_id": sa.bindparam("owner_id", type_=_d.c.owner_id.type),
}

# An endpoint of the organisation takes `deal.created` (its patterns: the type, `deal.*`, `*`).
_TAKEN = sa.exists().where(
    _sub.c.organization_id == _ORG,
    _sub.c.pattern.in_([sa.literal_column(f"'{p}'") for p in subscription_patterns(CREATED)]),
)

_new_deal = (
    sa.insert(_d)
    .from_select(
        ["id", "organization_id", *_FACTS, "closed_at", "version", "created_at", "updated_at"],
        sa.select(
            _DEAL_ID, _ORG, *_FACTS.values(), sa.bindparam("closed_at", type_=_TS), sa.literal_column("1"), _NOW, _NOW
        ).where(~_TAKEN),
    )
    .returning(*DEAL_COLUMNS)
    .cte("new_deal")
)
_new_event = (
    sa.insert(_e)
    .from_select(
        [
            "id",
            "organization_id",
            "seq",
            "type",
            "actor_id",
            "deal_id",
            "subject_type",
            "subject_id",
            "data",
            "occurred_at",
        ],
        sa.select(
            sa.bindparam("event_id", type_=_e.c.id.type),
            _ORG,
            next_event_seq(_ORG),
            sa.literal_column(f"'{CREATED}'"),
            sa.bindparam("actor_id", type_=_e.c.actor_id.type),
            _new_deal.c.id,
            sa.literal_column("'deal'"),
            _new_deal.c.id,
            sa.cast(sa.bindparam("data", type_=sa.Text()), postgresql.JSONB()),
            _NOW,
        ).select_from(_new_deal),
    )
    .cte("new_event")
)
_CREATE = sa.select(_new_deal).add_cte(_new_event)

# A deal of the organisation by id, as the hot read renders it (its references, a lost deal's
# review): the change's starting point when the caller owns it (the owner sees their deals).
_DEAL = sa.select(*DEAL_COLUMNS, REVIEW_ID, refs_json(_d.c.id).label("external_refs")).where(
    _d.c.id == _DEAL_ID, _d.c.organization_id == _ORG
)

# A change of a deal's facts or stage with its events, in one statement: written only if the deal
# is still at the version the change was worked out from, and if no endpoint of the organisation
# takes one of its events (``patterns``); otherwise nothing, and the general path runs (it locks
# the row, checks again, and writes the outbox).


def _array(name: str, item: sa.types.TypeEngine[Any]) -> sa.Cast[Any]:
    """A list bound as the driver takes it, typed by a cast PostgreSQL reads."""
    return sa.cast(sa.bindparam(name, type_=DriverType("")), postgresql.ARRAY(item))


_new = {name: sa.bindparam(f"new_{name}", type_=param.type) for name, param in _FACTS.items()}
_TAKEN_ANY = sa.exists().where(_sub.c.organization_id == _ORG, _sub.c.pattern == sa.any_(_array("patterns", sa.Text())))
_changed = (
    sa.update(_d)
    .where(_d.c.id == _DEAL_ID, _d.c.version == sa.bindparam("read_version", type_=sa.Integer()), ~_TAKEN_ANY)
    .values(
        **_new,
        closed_at=sa.bindparam("new_closed_at", type_=_TS),
        version=_d.c.version + sa.literal_column("1"),
        updated_at=_NOW,
    )
    .returning(*DEAL_COLUMNS)
    .cte("changed")
)
_events = (
    sa.func.unnest(
        _array("event_ids", sa.Uuid()),
        _array("event_types", sa.Text()),
        _array("event_data", sa.Text()),
    )
    .table_valued("id", "type", "data", with_ordinality="n")
    .render_derived(name="e")
)
_change_events = (
    sa.insert(_e)
    .from_select(
        [
            "id",
            "organization_id",
            "seq",
            "type",
            "actor_id",
            "deal_id",
            "subject_type",
            "subject_id",
            "data",
            "occurred_at",
        ],
        sa.select(
            _events.c.id,
            _ORG,
            next_event_seq(_ORG),  # evaluated after the ORDER BY: numbered in the events' order
            _events.c.type,
            sa.bindparam("actor_id", type_=_e.c.actor_id.type),
            _changed.c.id,
            sa.literal_column("'deal'"),
            _changed.c.id,
            sa.cast(_events.c.data, postgresql.JSONB()),
            _NOW,
        )
        .select_from(_changed.join(_events, sa.true()))
        .order_by(_events.c.n),
    )
    .cte("change_events")
)
_CHANGE = sa.select(_changed).add_cte(_change_events)

# One member named as owner, with whether it is in the acting member's line (``_OWNERS`` of
# app/db/repositories/members.py for a single id, which the driver path can send).
_OWNER = sa.select(
    _m.c.id,
    _m.c.role,
    _m.c.active,
    _m.c.id.in_(line_ids(_ORG, sa.bindparam("actor", type_=_m.c.id.type))).label("in_line"),
).where(_m.c.organization_id == _ORG, _m.c.id == sa.bindparam("id", type_=_m.c.id.type))


class DealWrites:
    """The one-statement deal writes, bound to an engine whose connections run in autocommit, or
    to the open transaction of an idempotent POST (``within``)."""

    def __init__(self, engine: AsyncEngine, within: AsyncConnection | None) -> None:
        self.engine = engine
        self.within = within
        self.available = engine.dialect.name == "postgresql"

    async def _fetch(self, stmt: sa.Select[Any], params: dict[str, Any]) -> list[Any]:
        if self.within is not None:
            return await fetch_rows_in(self.within, stmt, params)
        return list(await fetch_rows(self.engine, stmt, params))

    async def deal(self, organization_id: uuid.UUID, deal_id: uuid.UUID) -> Any | None:
        """The organisation's deal with this id (its columns, ``review_id``, ``external_refs``), or
        None. Visibility is the caller's to apply."""
        rows = await self._fetch(_DEAL, {"org": organization_id, "deal_id": deal_id})
        return rows[0] if rows else None

    async def change(
        self,
        *,
        organization_id: uuid.UUID,
        actor_id: uuid.UUID,
        deal_id: uuid.UUID,
        read_version: int,
        columns: dict[str, Any],
        closed_at: dt.datetime | None,
        events: list[tuple[str, dict[str, Any]]],
        now: dt.datetime,
    ) -> Any | None:
        """The deal's row after the change, written with its events; None, and nothing written,
        when the deal is no longer at ``read_version`` or an endpoint takes one of the events."""
        types = [event_type for event_type, _ in events]
        params = {f"new_{name}": columns[name] for name in _FACTS}
        params |= {
            "org": organization_id,
            "deal_id": deal_id,
            "read_version": read_version,
            "new_closed_at": closed_at,
            "patterns": sorted({p for t in types for p in subscription_patterns(t)}),
            "event_ids": [uuid7() for _ in events],
            "event_types": types,
            "event_data": [orjson.dumps(data).decode() for _, data in events],
            "actor_id": actor_id,
            "now": now,
        }
        rows = await self._fetch(_CHANGE, params)
        return rows[0] if rows else None

    async def owner(self, organization_id: uuid.UUID, actor_id: uuid.UUID, member_id: uuid.UUID) -> Any | None:
        """The member (id, role, active, in_line), or None when the organisation has no such member."""
        rows = await self._fetch(_OWNER, {"org": organization_id, "actor": actor_id, "id": member_id})
        return rows[0] if rows else None

    async def create(
        self,
        *,
        organization_id: uuid.UUID,
        actor_id: uuid.UUID,
        deal_id: uuid.UUID,
        event_id: uuid.UUID,
        columns: dict[str, Any],
        closed_at: dt.datetime | None,
        event_data: dict[str, Any],
        now: dt.datetime,
    ) -> Any | None:
        """The new deal's row, written with its `deal.created` event; None, and nothing written,
        when an endpoint of the organisation takes that event (the outbox needs the general path)."""
        params = {name: columns[name] for name in _FACTS}
        params |= {
            "org": organization_id,
            "deal_id": deal_id,
            "event_id": event_id,
            "actor_id": actor_id,
            "data": orjson.dumps(event_data).decode(),
            "closed_at": closed_at,
            "now": now,
        }
        rows = await self._fetch(_CREATE, params)
        return rows[0] if rows else None
