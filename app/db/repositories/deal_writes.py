"""The hot writes: a new deal, or an owner's change of their deal, with its events and their
webhook deliveries in one statement, outside any session.

What a seller or a front end does by hand (a deal with no external reference and no loss; a
change of facts or stage that neither transfers, loses nor reopens the deal) writes the deal's
row, its events and the outbox's deliveries. On PostgreSQL they go in one statement of
data-modifying CTEs: one round trip, its own transaction (or the idempotency claim's, when it
runs in one), no BEGIN/COMMIT, no ORM flush. The rules were applied before, by the service, to
what the statement writes. The statement writes nothing, and the service takes the general path,
when a change finds the deal at another version than it read, or when an event would go to more
endpoints than the delivery ids the statement brings (``DELIVERY_SLOTS`` per event).

SQLite has no data-modifying CTEs; the general path serves it (one writer at a time anyway).

Built once at import; executed on the pool's asyncpg connection (app/db/repositories/reads.py
``fetch_rows``), like the hot reads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import namedtuple
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.models import Deal, Event, Member, WebhookDelivery, WebhookSubscription
from app.db.repositories import idempotency
from app.db.repositories.auth import ACTOR_BY_KEY, ACTOR_BY_TOKEN, actor_columns, actor_params
from app.db.repositories.events import next_event_seq
from app.db.repositories.members import OWNER_COLUMNS
from app.db.repositories.reads import DEAL_COLUMNS, REVIEW_ID, fetch_rows, fetch_rows_in, refs_json
from app.db.types import DriverType
from app.domain.deals import SELF_OWNER
from app.domain.ids import uuid7
from app.domain.oidc import SignedIn
from app.domain.webhooks import EVENT_TYPES, DeliveryStatus, subscription_patterns

_d = Deal.__table__
_e = Event.__table__
_m = Member.__table__
_sub = WebhookSubscription.__table__
_delivery = WebhookDelivery.__table__

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


def _array(name: str, item: sa.types.TypeEngine[Any]) -> sa.Cast[Any]:
    """A list bound as the driver takes it, typed by a cast PostgreSQL reads."""
    return sa.cast(sa.bindparam(name, type_=DriverType("")), postgresql.ARRAY(item))


# The events a write records, in order (ids, types, data as JSON text), and the subscription
# patterns that select each (by its ordinal ``n``; app/domain/webhooks.py subscription_patterns).
_EVENTS = (
    sa.func.unnest(_array("event_ids", sa.Uuid()), _array("event_types", sa.Text()), _array("event_data", sa.Text()))
    .table_valued("id", "type", "data", with_ordinality="n")
    .render_derived(name="e")
)
_PATTERNS = (
    sa.func.unnest(_array("pattern_events", sa.BigInteger()), _array("patterns", sa.Text()))
    .table_valued("n", "pattern")
    .render_derived(name="p")
)
# The outbox: one delivery per event and endpoint that takes it, numbered; each takes one of the
# ids the write brings (``delivery_ids``). A write that would need more deliveries than it
# brought ids writes nothing (the general path writes them).
_SLOTS = (
    sa.func.unnest(_array("delivery_ids", sa.Uuid()))
    .table_valued("id", with_ordinality="k")
    .render_derived(name="slot")
)


def _outbox(org: sa.ColumnElement[Any]) -> tuple[sa.CTE, sa.ColumnElement[bool]]:
    """The deliveries the events of organisation ``org`` (a parameter, or what the statement found)
    need, numbered, and whether they fit in the ids the write brings."""
    wanted = (
        sa.select(_PATTERNS.c.n, _sub.c.endpoint_id)
        .select_from(
            _PATTERNS.join(_sub, sa.and_(_sub.c.organization_id == org, _sub.c.pattern == _PATTERNS.c.pattern))
        )
        .distinct()
        .subquery("wanted")
    )
    deliveries = sa.select(
        wanted.c.n,
        wanted.c.endpoint_id,
        sa.func.row_number().over(order_by=(wanted.c.n, wanted.c.endpoint_id)).label("k"),
    ).cte("deliveries")
    fits = sa.select(sa.func.count()).select_from(deliveries).scalar_subquery() <= sa.func.cardinality(
        _array("delivery_ids", sa.Uuid())
    )
    return deliveries, fits


_DELIVERIES, _FITS = _outbox(_ORG)
DELIVERY_SLOTS = 8  # deliveries per event a one-statement write can carry (endpoints taking it)


def _events_and_outbox(
    written: sa.CTE, org: sa.ColumnElement[Any] = _ORG, planned: sa.CTE = _DELIVERIES
) -> tuple[sa.CTE, sa.CTE]:
    """The events of the deal ``written`` (a data-modifying CTE, guarded by ``_FITS``) of
    organisation ``org`` and their deliveries (as ``planned`` by ``_outbox``), as data-modifying
    CTEs of the same statement."""
    events = (
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
                _EVENTS.c.id,
                org,
                next_event_seq(org),  # evaluated after the ORDER BY: numbered in the events' order
                _EVENTS.c.type,
                sa.bindparam("actor_id", type_=_e.c.actor_id.type),
                written.c.id,
                sa.literal_column("'deal'"),
                written.c.id,
                sa.cast(_EVENTS.c.data, postgresql.JSONB()),
                _NOW,
            )
            .select_from(written.join(_EVENTS, sa.true()))
            .order_by(_EVENTS.c.n),
        )
        .returning(_e.c.id, _e.c.seq, _e.c.type, _e.c.deal_id)
        .cte("written_events")
    )
    deliveries = (
        sa.insert(_delivery)
        .from_select(
            [
                "id",
                "organization_id",
                "endpoint_id",
                "event_id",
                "event_seq",
                "event_type",
                "deal_id",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            ],
            sa.select(
                _SLOTS.c.id,
                org,
                planned.c.endpoint_id,
                events.c.id,
                events.c.seq,
                events.c.type,
                events.c.deal_id,
                sa.literal_column(f"'{DeliveryStatus.pending.value}'"),
                sa.literal_column("0"),
                _NOW,
                _NOW,
            ).select_from(
                planned.join(_EVENTS, _EVENTS.c.n == planned.c.n)
                .join(events, events.c.id == _EVENTS.c.id)
                .join(_SLOTS, _SLOTS.c.k == planned.c.k)
            ),
        )
        .cte("written_deliveries")
    )
    return events, deliveries


def _with_events_and_outbox(written: sa.CTE) -> sa.Select[Any]:
    """The deal ``written``, its events and their deliveries, in one statement; the deal's row is
    what it selects."""
    return sa.select(written).add_cte(*_events_and_outbox(written))


def _new_deal(guard: sa.ColumnElement[bool], org: sa.ColumnElement[Any] = _ORG) -> sa.CTE:
    return (
        sa.insert(_d)
        .from_select(
            ["id", "organization_id", *_FACTS, "closed_at", "version", "created_at", "updated_at"],
            sa.select(
                _DEAL_ID,
                org,
                *_FACTS.values(),
                sa.bindparam("closed_at", type_=_TS),
                sa.literal_column("1"),
                _NOW,
                _NOW,
            ).where(guard),
        )
        .returning(*DEAL_COLUMNS)
        .cte("new_deal")
    )


def _created_once_claimed(claimed: sa.CTE) -> tuple[sa.CTE, ...]:
    deal = _new_deal(sa.exists(sa.select(claimed.c.id)))
    return (deal, *_events_and_outbox(deal))


_CREATE = _with_events_and_outbox(_new_deal(_FITS))
# An idempotent POST's new deal, written by the statement that claims its key with its response
# (app/db/repositories/idempotency.py ``stored_claim``): the claim is made only if the deal's
# deliveries fit (``_FITS``), and the deal, its event and deliveries only if the claim was made.
_CLAIMED_CREATE = idempotency.stored_claim(idempotency.ClaimedWrite(_FITS, _created_once_claimed))


def _create_as_owner(actor: sa.Select[Any]) -> sa.Select[Any]:
    """``_CREATE`` for a caller not yet authenticated, taken to be the deal's owner: the caller's
    member found by the same statement (``actor_columns``), and the deal, its event and deliveries
    written only if that member is the owner named and may own its deals as it creates them
    (``SELF_OWNER``: the rules hold without another read). No row: the credential names nobody;
    otherwise ``as_owner`` says whether the caller was the owner so, and the deal's columns are
    NULL when nothing was written (not the owner so, or more deliveries than fit)."""
    me = actor.cte("me")
    is_owner = sa.and_(me.c.id == _FACTS["owner_id"], me.c.role == sa.literal_column(f"'{SELF_OWNER.value}'"))
    org = sa.select(me.c.organization_id).where(is_owner).scalar_subquery()
    planned, fits = _outbox(org)
    deal = _new_deal(sa.and_(org.is_not(None), fits), org)
    events, deliveries = _events_and_outbox(deal, org, planned)
    return (
        sa.select(*actor_columns(me), is_owner.label("as_owner"), *deal.c)
        .select_from(me.outerjoin(deal, sa.true()))
        .add_cte(events, deliveries)
    )


_CREATE_AS_OWNER = {False: _create_as_owner(ACTOR_BY_KEY), True: _create_as_owner(ACTOR_BY_TOKEN)}

# The row a new deal's INSERT returns (``DEAL_COLUMNS``), worked out before it is written.
_NewDeal = namedtuple("_NewDeal", [c.name for c in DEAL_COLUMNS])  # type: ignore[misc]

# A deal of the organisation by id, as the hot read renders it (its references, a lost deal's
# review): the change's starting point when the caller owns it (the owner sees their deals).
_DEAL = sa.select(*DEAL_COLUMNS, REVIEW_ID, refs_json(_d.c.id).label("external_refs")).where(
    _d.c.id == _DEAL_ID, _d.c.organization_id == _ORG
)


def _deal_of_caller(actor: sa.Select[Any]) -> sa.Select[Any]:
    """``_DEAL`` with the caller's member (``actor_columns``) found by the same statement: no row is
    an unknown caller, one row whose ``id`` is NULL is no such deal in the caller's organisation."""
    me = actor.cte("me")
    deal = (
        sa.select(*DEAL_COLUMNS, REVIEW_ID, refs_json(_d.c.id).label("external_refs"))
        .where(_d.c.id == _DEAL_ID, _d.c.organization_id == me.c.organization_id)
        .lateral("deal")
    )
    return sa.select(*actor_columns(me), *deal.c).select_from(me.outerjoin(deal, sa.true()))


_DEAL_OF_CALLER = {False: _deal_of_caller(ACTOR_BY_KEY), True: _deal_of_caller(ACTOR_BY_TOKEN)}

# A change written only if the deal is still at the version the change was worked out from
# (otherwise nothing, and the general path runs: it locks the row and checks again).
_changed = (
    sa.update(_d)
    .where(_d.c.id == _DEAL_ID, _d.c.version == sa.bindparam("read_version", type_=sa.Integer()), _FITS)
    .values(
        **{name: sa.bindparam(f"new_{name}", type_=param.type) for name, param in _FACTS.items()},
        closed_at=sa.bindparam("new_closed_at", type_=_TS),
        version=_d.c.version + sa.literal_column("1"),
        updated_at=_NOW,
    )
    .returning(*DEAL_COLUMNS)
    .cte("changed")
)
_CHANGE = _with_events_and_outbox(_changed)


def _event_params(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The events' arrays, the patterns that select each, and ids for their deliveries."""
    for event_type, _ in events:
        assert event_type in EVENT_TYPES, f"{event_type} is missing from app.domain.webhooks.EVENT_TYPES"
    pattern_events = [n for n, (event_type, _) in enumerate(events, start=1) for _ in subscription_patterns(event_type)]
    return {
        "event_ids": [uuid7() for _ in events],
        "event_types": [event_type for event_type, _ in events],
        "event_data": [orjson.dumps(data).decode() for _, data in events],
        "pattern_events": pattern_events,
        "patterns": [p for event_type, _ in events for p in subscription_patterns(event_type)],
        "delivery_ids": [uuid7() for _ in range(DELIVERY_SLOTS * len(events))],
    }


# One member named as owner (``_OWNERS`` of app/db/repositories/members.py for a single id: no
# expanding list, so the driver path can send it).
_OWNER = sa.select(*OWNER_COLUMNS).where(
    _m.c.organization_id == _ORG, _m.c.id == sa.bindparam("id", type_=_m.c.id.type)
)


def _new_deal_params(
    deal_id: uuid.UUID,
    columns: dict[str, Any],
    closed_at: dt.datetime | None,
    event_data: dict[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    """A new deal's parameters, with its `deal.created` event's."""
    params = {name: columns[name] for name in _FACTS} | _event_params([(CREATED, event_data)])
    return params | {"deal_id": deal_id, "closed_at": closed_at, "now": now}


class DealWrites:
    """The one-statement deal writes, bound to the engine (each statement, sent on the driver, is
    its own transaction), or to the open transaction of an idempotent POST (``within``), or to an
    idempotent POST's claim made after it has run (``claim``: a new deal is then written by the
    statement that claims the key, with the response)."""

    def __init__(
        self, engine: AsyncEngine, within: AsyncConnection | None, claim: idempotency.DeferredClaim | None = None
    ) -> None:
        self.engine = engine
        self._within = within
        self.claim = claim
        self.available = engine.dialect.name == "postgresql"

    @property
    def within(self) -> AsyncConnection | None:
        return self._within if self.claim is None else self.claim.connection

    @property
    def direct(self) -> bool:
        """Whether its statements are each their own transaction (not an idempotent POST's)."""
        return self.available and self._within is None and self.claim is None

    async def _fetch_one(self, stmt: sa.Select[Any], params: dict[str, Any]) -> Any | None:
        """The statement's one row, or None."""
        within = self.within
        if within is not None:
            rows = await fetch_rows_in(within, stmt, params)
        else:
            rows = list(await fetch_rows(self.engine, stmt, params))
        return rows[0] if rows else None

    async def deal(self, organization_id: uuid.UUID, deal_id: uuid.UUID) -> Any | None:
        """The organisation's deal with this id (its columns, ``review_id``, ``external_refs``), or
        None. Visibility is the caller's to apply."""
        return await self._fetch_one(_DEAL, {"org": organization_id, "deal_id": deal_id})

    async def deal_of_caller(self, credential: str | SignedIn, deal_id: uuid.UUID) -> Any | None:
        """``deal`` for a caller not yet authenticated (an API key's hash or a verified token), who
        is found in the same round trip: None when the credential names nobody; otherwise the row's
        ``actor_*`` columns are the caller's member and its ``id`` is None when the caller's
        organisation has no such deal. Visibility is the caller's to apply."""
        params = actor_params(credential) | {"deal_id": deal_id}
        return await self._fetch_one(_DEAL_OF_CALLER[not isinstance(credential, str)], params)

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
        """The deal's row after the change, written with its events and their deliveries; None, and
        nothing written, when the deal is no longer at ``read_version`` or more endpoints take an
        event than one statement carries."""
        params = {f"new_{name}": columns[name] for name in _FACTS} | _event_params(events)
        params |= {
            "org": organization_id,
            "deal_id": deal_id,
            "read_version": read_version,
            "new_closed_at": closed_at,
            "actor_id": actor_id,
            "now": now,
        }
        return await self._fetch_one(_CHANGE, params)

    async def owner(self, organization_id: uuid.UUID, actor_id: uuid.UUID, member_id: uuid.UUID) -> Any | None:
        """The member (id, role, active, in_line), or None when the organisation has no such member."""
        return await self._fetch_one(_OWNER, {"org": organization_id, "actor": actor_id, "id": member_id})

    async def create(
        self,
        *,
        organization_id: uuid.UUID,
        actor_id: uuid.UUID,
        deal_id: uuid.UUID,
        columns: dict[str, Any],
        closed_at: dt.datetime | None,
        event_data: dict[str, Any],
        now: dt.datetime,
    ) -> Any | None:
        """The new deal's row, written with its `deal.created` event and that event's deliveries;
        None, and nothing written, when more endpoints take the event than one statement carries.

        For an idempotent POST whose claim is made after it has run, the row is worked out here
        and the write handed to the claim (``defer``): the statement that claims the key writes
        the deal, or nothing (and the request runs again with its key claimed first)."""
        params = _new_deal_params(deal_id, columns, closed_at, event_data, now)
        params |= {"org": organization_id, "actor_id": actor_id}
        if self.claim is not None and self.claim.connection is None:
            self.claim.defer(_CLAIMED_CREATE, params)
            unset = dict.fromkeys(_NewDeal._fields)
            return _NewDeal(
                **unset
                | columns
                | {"id": deal_id, "closed_at": closed_at, "version": 1, "created_at": now, "updated_at": now}
            )
        return await self._fetch_one(_CREATE, params)

    async def create_as_owner(
        self,
        credential: str | SignedIn,
        *,
        deal_id: uuid.UUID,
        columns: dict[str, Any],
        closed_at: dt.datetime | None,
        event_data: dict[str, Any],
        now: dt.datetime,
    ) -> Any | None:
        """``create`` for a caller not yet authenticated (an API key's hash or a verified token),
        taken to be the owner ``columns`` name (``_create_as_owner``); each statement its own
        transaction (``direct``). None when the credential names nobody; otherwise the caller's
        member (``actor_*``), ``as_owner``, and the deal's columns (``id`` None: nothing written)."""
        params = _new_deal_params(deal_id, columns, closed_at, event_data, now) | actor_params(credential)
        params["actor_id"] = columns["owner_id"]
        return await self._fetch_one(_CREATE_AS_OWNER[not isinstance(credential, str)], params)
