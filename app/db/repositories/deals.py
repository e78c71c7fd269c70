"""Deal queries: visibility, keyset listing, external references."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Assignment, Deal, DealExternalRef
from app.db.repositories.members import line_ids
from app.domain.assignments import AssignmentStatus
from app.domain.deals import Stage
from app.domain.ids import uuid7
from app.domain.members import Actor, MemberRole


def active_assignment_deal_ids(member_id: uuid.UUID | sa.BindParameter[Any]) -> sa.Select[Any]:
    return sa.select(Assignment.deal_id).where(
        Assignment.member_id == member_id, Assignment.status == AssignmentStatus.active
    )


def visibility(actor: Actor) -> sa.ColumnElement[bool] | None:
    """Which deals the actor sees, as a condition on Deal; None means the whole organisation.

    A seller sees what they own or are actively assigned to; a manager adds their line's
    deals (transitively); head of sales, admins and integrations see everything.
    """
    if actor.sees_whole_org:
        return None
    conditions = [Deal.owner_id == actor.member_id, Deal.id.in_(active_assignment_deal_ids(actor.member_id))]
    if actor.role == MemberRole.manager:
        conditions.append(Deal.owner_id.in_(line_ids(actor.organization_id, actor.member_id)))
    return sa.or_(*conditions)


def visible_deal_ids(actor: Actor) -> sa.Select[Any] | None:
    condition = visibility(actor)
    if condition is None:
        return None
    return sa.select(Deal.id).where(Deal.organization_id == actor.organization_id, condition)


_deal = Deal.__table__
_ref = DealExternalRef.__table__
_ORG = sa.bindparam("org", type_=_deal.c.organization_id.type)
_ACTOR = sa.bindparam("actor", type_=_deal.c.owner_id.type)


def _by_refs(dialect: str) -> sa.Select[Any]:
    """A batch upsert's deals, found by their references in one statement and locked (in id
    order, so two batches touching the same deals queue rather than deadlock), each with what
    the visibility and access rules need: whether the actor is actively assigned to it, and
    whether its owner is in the actor's line.

    The references are a join on PostgreSQL: two parallel arrays unnested, each pair one probe
    of the unique index, whatever the plan. (A list of pairs is an OR of 500 terms to its planner,
    and ``external_id IN ($1, ..., $500)`` in the generic plan a prepared statement gets after five
    executions rebuilds that list for every row it filters: 60-200 ms a batch.) SQLite, which has
    no arrays and plans every statement afresh, takes the pairs as a list."""
    if dialect == "postgresql":
        text_array = postgresql.ARRAY(sa.String())
        wanted = (
            sa.func.unnest(sa.bindparam("sources", type_=text_array), sa.bindparam("external_ids", type_=text_array))
            .table_valued("source", "external_id")
            .render_derived(name="wanted")
        )
        refs = wanted.join(
            _ref,
            sa.and_(
                _ref.c.organization_id == _ORG,
                _ref.c.source == wanted.c.source,
                _ref.c.external_id == wanted.c.external_id,
            ),
        )
        conditions: list[sa.ColumnElement[bool]] = []
    else:
        refs = _ref
        conditions = [
            _ref.c.organization_id == _ORG,
            sa.tuple_(_ref.c.source, _ref.c.external_id).in_(sa.bindparam("pairs", expanding=True)),
        ]
    return (
        sa.select(
            _ref.c.source,
            _ref.c.external_id,
            *_deal.c,
            _deal.c.id.in_(active_assignment_deal_ids(_ACTOR)).label("assigned"),
            _deal.c.owner_id.in_(line_ids(_ORG, _ACTOR)).label("owner_in_line"),
        )
        .select_from(refs.join(_deal, _deal.c.id == _ref.c.deal_id))
        .where(*conditions)
        .order_by(_deal.c.id)
        .with_for_update(of=_deal)
    )


_BY_REFS = {dialect: _by_refs(dialect) for dialect in ("postgresql", "sqlite")}
# What a batch writes of a deal it changed: its facts, stage, owner, loss, and bookkeeping.
_WRITTEN = (
    "name",
    "account_name",
    "amount_minor",
    "currency",
    "expected_close_date",
    "stage",
    "owner_id",
    "closed_at",
    "loss_reason_code",
    "loss_competitor",
    "loss_detail",
    "version",
    "updated_at",
)
_INSERTED = ("id", "created_at", *_WRITTEN)
_REF_COLUMNS = ("id", "deal_id", "source", "external_id")


def _unnested(table: sa.Table, names: Sequence[str], alias: str) -> Any:
    """Rows of ``table``'s columns ``names`` bound as parallel arrays (``a_<name>``), unnested."""
    arrays = (sa.bindparam(f"a_{name}", type_=postgresql.ARRAY(table.c[name].type)) for name in names)
    return sa.func.unnest(*arrays).table_valued(*names).render_derived(name=alias)


# The batch's writes. On PostgreSQL each is one statement over the rows as parallel arrays, so
# PostgreSQL parses and plans it once and runs it once (one execution per row, an executemany,
# costs it 40-70 % more CPU; a multi-row VALUES must be parsed and planned anew for each size).
# SQLite has no arrays: there they are executemany (one prepared statement run per row, in
# process), and the references a multi-row VALUES.
_new, _changed, _new_ref = (
    _unnested(_deal, _INSERTED, "r"),
    _unnested(_deal, ("id", *_WRITTEN), "r"),
    _unnested(_ref, _REF_COLUMNS, "r"),
)
_INSERT_DEALS = {
    "postgresql": sa.insert(_deal).from_select(
        ["organization_id", *_INSERTED], sa.select(_ORG, *(_new.c[name] for name in _INSERTED))
    ),
    "sqlite": sa.insert(_deal),
}
_UPDATE_DEALS = {
    "postgresql": sa.update(_deal)
    .where(_deal.c.id == _changed.c.id)
    .values({name: _changed.c[name] for name in _WRITTEN}),
    "sqlite": sa.update(_deal)
    .where(_deal.c.id == sa.bindparam("b_id"))
    .values({name: sa.bindparam(f"b_{name}", type_=_deal.c[name].type) for name in _WRITTEN}),
}
_DELETE_DEALS = sa.delete(_deal).where(_deal.c.id.in_(sa.bindparam("ids", expanding=True)))
# New references; one that another transaction wrote meanwhile is skipped, not an error.
_INSERT_REFS = {
    "postgresql": postgresql.insert(_ref)
    .from_select(["organization_id", *_REF_COLUMNS], sa.select(_ORG, *(_new_ref.c[name] for name in _REF_COLUMNS)))
    .on_conflict_do_nothing(index_elements=["organization_id", "source", "external_id"])
    .returning(_ref.c.deal_id),
    "sqlite": sqlite.insert(_ref)
    .on_conflict_do_nothing(index_elements=["organization_id", "source", "external_id"])
    .returning(_ref.c.deal_id),
}


def _columns_of(rows: Sequence[Any], names: Sequence[str]) -> dict[str, list[Any]]:
    """The attributes ``names`` of objects, column by column (one C-level pass per column)."""
    return {name: list(map(attrgetter(name), rows)) for name in names}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class DealRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_visible(self, actor: Actor, deal_id: uuid.UUID, *, for_update: bool = False) -> Deal | None:
        stmt = sa.select(Deal).where(Deal.id == deal_id, Deal.organization_id == actor.organization_id)
        condition = visibility(actor)
        if condition is not None:
            stmt = stmt.where(condition)
        if for_update:
            stmt = stmt.with_for_update(of=Deal)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lock(self, deal_id: uuid.UUID) -> Deal:
        """Re-read a deal under a row lock (PostgreSQL), so concurrent writers queue up."""
        stmt = sa.select(Deal).where(Deal.id == deal_id).with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one()

    async def list_page(
        self,
        actor: Actor,
        *,
        after: uuid.UUID | None,
        limit: int,
        owner_id: uuid.UUID | None = None,
        stages: Sequence[Stage] | None = None,
        closed_from: dt.datetime | None = None,
        closed_before: dt.datetime | None = None,
        updated_since: dt.datetime | None = None,
        q: str | None = None,
    ) -> list[sa.Row[Any]]:
        """Plain rows, not ORM objects: a page of deals is a hot read path."""
        stmt = sa.select(*Deal.__table__.c).where(Deal.organization_id == actor.organization_id)
        condition = visibility(actor)
        if condition is not None:
            stmt = stmt.where(condition)
        if owner_id is not None:
            stmt = stmt.where(Deal.owner_id == owner_id)
        if stages is not None:
            stmt = stmt.where(Deal.stage.in_([str(s) for s in stages]))
        if closed_from is not None:
            stmt = stmt.where(Deal.closed_at >= closed_from)
        if closed_before is not None:
            stmt = stmt.where(Deal.closed_at < closed_before)
        if updated_since is not None:
            stmt = stmt.where(Deal.updated_at >= updated_since)
        if q:
            pattern = f"%{_escape_like(q.lower())}%"
            stmt = stmt.where(
                sa.or_(
                    sa.func.lower(Deal.name).like(pattern, escape="\\"),
                    sa.func.lower(Deal.account_name).like(pattern, escape="\\"),
                )
            )
        if after is not None:
            stmt = stmt.where(Deal.id > after)
        stmt = stmt.order_by(Deal.id).limit(limit)
        return list((await self.session.execute(stmt)).all())

    async def refs_of(self, deal_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
        """External references (source, external_id rows) of many deals in one query."""
        refs: dict[uuid.UUID, list[Any]] = {deal_id: [] for deal_id in deal_ids}
        if not deal_ids:
            return refs
        ref = DealExternalRef.__table__
        stmt = (
            sa.select(ref.c.deal_id, ref.c.source, ref.c.external_id)
            .where(ref.c.deal_id.in_(list(deal_ids)))
            .order_by(ref.c.source, ref.c.external_id)
        )
        for row in (await self.session.execute(stmt)).all():
            refs[row.deal_id].append(row)
        return refs

    async def deal_id_by_ref(self, organization_id: uuid.UUID, source: str, external_id: str) -> uuid.UUID | None:
        stmt = sa.select(DealExternalRef.deal_id).where(
            DealExternalRef.organization_id == organization_id,
            DealExternalRef.source == source,
            DealExternalRef.external_id == external_id,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    # --- batch upsert: a whole batch in a few statements ------------------------------

    async def by_refs(self, actor: Actor, refs: Sequence[tuple[str, str]]) -> list[sa.Row[Any]]:
        """The deals the references name, locked, with ``source``, ``external_id``, ``assigned``
        (the actor holds an active assignment on it) and ``owner_in_line`` (its owner is below
        the actor in the reporting lines)."""
        pairs = list(dict.fromkeys(refs))
        if not pairs:
            return []
        params: dict[str, Any] = {"org": actor.organization_id, "actor": actor.member_id}
        dialect = self.session.bind.dialect.name
        if dialect == "postgresql":
            params |= {"sources": [s for s, _ in pairs], "external_ids": [e for _, e in pairs]}
        else:
            params["pairs"] = pairs
        return list((await self.session.execute(_BY_REFS[dialect], params)).all())

    async def insert_many(self, organization_id: uuid.UUID, deals: Sequence[Any]) -> None:
        """New deals, each an object with the deal's columns as attributes (``id``, ``version``,
        ``created_at`` ... included)."""
        if deals:
            await self._write(_INSERT_DEALS, _columns_of(deals, _INSERTED), organization_id)

    async def insert_refs(
        self, organization_id: uuid.UUID, refs: Sequence[tuple[uuid.UUID, str, str]]
    ) -> set[uuid.UUID]:
        """New external references (deal, source, external id); returns the deals whose reference
        was written: one that another transaction wrote first is skipped."""
        if not refs:
            return set()
        deal_ids, sources, external_ids = map(list, zip(*refs, strict=True))
        columns = {"id": [uuid7() for _ in refs], "deal_id": deal_ids, "source": sources, "external_id": external_ids}
        return set((await self._write(_INSERT_REFS, columns, organization_id)).scalars())

    async def update_many(self, deals: Sequence[Any]) -> None:
        """Changed deals: each an object with the deal's columns as attributes; _WRITTEN are written."""
        if deals:
            await self._write(_UPDATE_DEALS, _columns_of(deals, ("id", *_WRITTEN)), listed_as="b_")

    async def _write(
        self,
        statements: dict[str, Any],
        columns: dict[str, list[Any]],
        organization_id: uuid.UUID | None = None,
        *,
        listed_as: str = "",
    ) -> Any:
        """One of the batch's writes, given column by column (``{name: [value of each row]}``): on
        PostgreSQL as parallel arrays (``a_<column>``), on SQLite as a list of rows
        (``<listed_as><column>``: an UPDATE's SET takes the plain names)."""
        dialect = self.session.bind.dialect.name
        params: dict[str, Any] | list[dict[str, Any]]
        if dialect == "postgresql":
            params = {f"a_{name}": values for name, values in columns.items()}
            if organization_id is not None:
                params["org"] = organization_id
        else:
            org = {} if organization_id is None else {"organization_id": organization_id}
            names = [f"{listed_as}{name}" for name in columns]
            params = [org | dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
        return await self.session.execute(statements[dialect], params)

    async def delete_many(self, deal_ids: Sequence[uuid.UUID]) -> None:
        if deal_ids:
            await self.session.execute(_DELETE_DEALS, {"ids": list(deal_ids)})
