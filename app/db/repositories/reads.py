"""The hot reads, one statement each: the caller's member, the visibility rule, the rows and
what they render (external references as a JSON array) in a single round trip.

The caller is an API key (its hash) or a verified sign-in token (its organisation's issuer and
audience, and the member's email); each statement exists in both forms, which differ only in how
the `me` row is found.

The statements are built once, at import (the deal listing once per combination of filters, on
first use), so SQLAlchemy's compiled cache hits on every request. They run on a connection in
autocommit: no BEGIN/ROLLBACK round trips around a single read, no session, no identity map.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections import OrderedDict, namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.util import await_, greenlet_spawn

from app.db.models import ApiKey, Assignment, ClosedLostReview, Deal, DealExternalRef, Member, Organization
from app.db.repositories.auth import actor_params, actor_statement
from app.db.repositories.members import MEMBER_REFS
from app.domain.assignments import AssignmentStatus
from app.domain.deals import Stage
from app.domain.members import ORG_WIDE_ROLES, MemberRole
from app.domain.oidc import SignedIn

_k = ApiKey.__table__
_m = Member.__table__
_o = Organization.__table__
_d = Deal.__table__
_a = Assignment.__table__
_r = ClosedLostReview.__table__

# A lost deal's review (one per deal, by its unique index); looked up only for a lost deal.
REVIEW_ID = sa.case(
    (
        _d.c.stage == sa.literal_column(f"'{Stage.closed_lost.value}'"),
        sa.select(_r.c.id).where(_r.c.deal_id == _d.c.id).scalar_subquery(),
    ),
    else_=sa.null(),
).label("review_id")

# What a deal renders: every column but the organisation, then its external references.
DEAL_COLUMNS = tuple(c for c in _d.c if c.name != "organization_id")


class refs_json(FunctionElement[Any]):
    """A deal's external references as a JSON array of {source, external_id}, ordered by source
    then external id (NULL or [] when it has none)."""

    type = sa.JSON()
    inherit_cache = True


_REF_TABLE = DealExternalRef.__tablename__


@compiles(refs_json, "postgresql")
def _refs_json_postgresql(element: refs_json, compiler: SQLCompiler, **kw: Any) -> str:
    deal_id = compiler.process(element.clauses, **kw)
    return (
        "(SELECT json_agg(json_build_object('source', r.source, 'external_id', r.external_id)"
        f" ORDER BY r.source, r.external_id) FROM {_REF_TABLE} AS r WHERE r.deal_id = {deal_id})"
    )


@compiles(refs_json, "sqlite")
def _refs_json_sqlite(element: refs_json, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite before 3.44 has no ORDER BY inside an aggregate; an ordered subquery feeds it in order.
    deal_id = compiler.process(element.clauses, **kw)
    return (
        "(SELECT json_group_array(json_object('source', r.source, 'external_id', r.external_id)) FROM"
        f" (SELECT source, external_id FROM {_REF_TABLE} WHERE deal_id = {deal_id}"
        " ORDER BY source, external_id) AS r)"
    )


# The caller's member: one row, or none when the credential names nobody. An API key by its hash
# (unknown, revoked, or its member inactive: none); a verified token by its organisation's issuer
# and audience and the member's email (an organisation that no longer signs in with that provider,
# or no such active member: none).
_ME_BY_KEY = (
    sa.select(_m.c.id, _m.c.organization_id, _m.c.role)
    .select_from(_k.join(_m, _m.c.id == _k.c.member_id))
    .where(_k.c.key_hash == sa.bindparam("key_hash"), _k.c.revoked_at.is_(None), _m.c.active.is_(True))
    .cte("me")
)
_ME_BY_TOKEN = (
    sa.select(_m.c.id, _m.c.organization_id, _m.c.role)
    .select_from(_o.join(_m, _m.c.organization_id == _o.c.id))
    .where(
        _o.c.oidc_issuer == sa.bindparam("issuer"),
        _o.c.oidc_audience == sa.bindparam("audience"),
        _m.c.email == sa.bindparam("email"),
        _m.c.active.is_(True),
    )
    .cte("me")
)
ME = {False: _ME_BY_KEY, True: _ME_BY_TOKEN}  # by whether the caller signed in with a token


def _visible(me: sa.CTE) -> sa.ColumnElement[bool]:
    """deals.visibility() with the actor read from ``me`` in the same statement: head of sales,
    admins and integrations see the organisation; others what they own or are actively assigned
    to; a manager also their line's deals."""
    me_id = sa.select(me.c.id).scalar_subquery()
    me_org = sa.select(me.c.organization_id).scalar_subquery()
    me_role = sa.select(me.c.role).scalar_subquery()
    # A manager's line: everyone below them, transitively (app/db/repositories/members.py line_ids()).
    line = (
        sa.select(_m.c.id, sa.literal_column("1").label("depth"))
        .select_from(_m.join(me, _m.c.manager_id == me.c.id))
        .where(
            _m.c.organization_id == me.c.organization_id,
            me.c.role == sa.literal_column(f"'{MemberRole.manager.value}'"),
        )
        .cte("line", recursive=True)
    )
    child = _m.alias("child")
    line = line.union_all(
        sa.select(child.c.id, line.c.depth + sa.literal_column("1")).where(
            child.c.manager_id == line.c.id, line.c.depth < sa.literal_column("10000")
        )
    )
    return sa.and_(
        _d.c.organization_id == me_org,
        sa.or_(
            me_role.in_([sa.literal_column(f"'{role.value}'") for role in sorted(ORG_WIDE_ROLES)]),
            _d.c.owner_id == me_id,
            _d.c.id.in_(
                sa.select(_a.c.deal_id).where(
                    _a.c.member_id == me_id, _a.c.status == sa.literal_column(f"'{AssignmentStatus.active.value}'")
                )
            ),
            _d.c.owner_id.in_(sa.select(line.c.id)),
        ),
    )


VISIBLE = {by_token: _visible(me) for by_token, me in ME.items()}


def with_actor(me: sa.CTE, deals: sa.Subquery) -> sa.Select[Any]:
    """The caller's member joined to the deal rows: no row is an unknown caller, one row whose
    deal id is NULL is no deal."""
    return sa.select(
        me.c.id.label("actor_id"), me.c.organization_id.label("actor_organization_id"), *deals.c
    ).select_from(me.outerjoin(deals, sa.true()))


_DEAL = {
    by_token: with_actor(
        me,
        sa.select(*DEAL_COLUMNS, REVIEW_ID, refs_json(_d.c.id).label("external_refs"))
        .where(_d.c.id == sa.bindparam("deal_id", type_=_d.c.id.type), VISIBLE[by_token])
        .subquery("one"),
    )
    for by_token, me in ME.items()
}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class DealListing:
    """What a page of the deal listing asks for; None leaves a filter out."""

    after: uuid.UUID | None
    limit: int
    owner_id: uuid.UUID | None = None
    stages: Sequence[Stage] | None = None
    closed_from: dt.datetime | None = None
    closed_before: dt.datetime | None = None
    updated_since: dt.datetime | None = None
    q: str | None = None


# Page statements kept built (a page size and combination of filters each); one evicted is built
# again when asked for.
_PAGE_STATEMENTS = 256


@functools.lru_cache(maxsize=_PAGE_STATEMENTS)
def _deal_page(
    by_token: bool,
    after: bool,
    owner: bool,
    stages: bool,
    closed_from: bool,
    closed_before: bool,
    updated_since: bool,
    q: bool,
    limit: int = 51,
) -> sa.Select[Any]:
    """The listing for one caller kind, combination of filters and number of rows, built once;
    filter values are bound at execution.

    The number of rows is written into the SQL, not bound: with ``LIMIT $n`` PostgreSQL prices a
    prepared statement's generic plan as if it returned a tenth of the organisation's deals, finds
    it dearer than planning each execution, and plans every page afresh (0.5-0.9 ms of its CPU per
    page, as much as executing it). With the number written in, the generic plan is priced for what
    it is and reused (bench/README.md, "Pages planned once")."""
    conditions: list[sa.ColumnElement[bool]] = [VISIBLE[by_token]]
    if owner:
        conditions.append(_d.c.owner_id == sa.bindparam("owner_id", type_=_d.c.owner_id.type))
    if stages:
        conditions.append(_d.c.stage.in_(sa.bindparam("stages", expanding=True)))
    if closed_from:
        conditions.append(_d.c.closed_at >= sa.bindparam("closed_from", type_=_d.c.closed_at.type))
    if closed_before:
        conditions.append(_d.c.closed_at < sa.bindparam("closed_before", type_=_d.c.closed_at.type))
    if updated_since:
        conditions.append(_d.c.updated_at >= sa.bindparam("updated_since", type_=_d.c.updated_at.type))
    if q:
        pattern = sa.bindparam("pattern", type_=sa.String())
        conditions.append(
            sa.or_(
                sa.func.lower(_d.c.name).like(pattern, escape="\\"),
                sa.func.lower(_d.c.account_name).like(pattern, escape="\\"),
            )
        )
    if after:
        conditions.append(_d.c.id > sa.bindparam("after", type_=_d.c.id.type))
    page = (
        sa.select(*DEAL_COLUMNS, REVIEW_ID, refs_json(_d.c.id).label("external_refs"))
        .where(*conditions)
        .order_by(_d.c.id)
        .limit(sa.literal_column(str(int(limit))))
        .subquery("page")
    )
    return with_actor(ME[by_token], page).order_by(page.c.id)


async def fetch_rows(engine: AsyncEngine, stmt: sa.Select[Any], params: dict[str, Any]) -> Sequence[Any]:
    """The statement's rows (attribute access by column label)."""
    driver = _driver_statement(engine.dialect, stmt) if engine.dialect.name == "postgresql" else None
    if driver is None:
        async with engine.connect() as conn:
            return (await conn.execute(stmt, params)).all()
    return await driver.fetch(engine, params)


async def fetch_rows_in(conn: AsyncConnection, stmt: sa.Select[Any], params: dict[str, Any]) -> list[Any]:
    """``fetch_rows`` on a connection whose transaction is open (an idempotent POST's): the
    statement joins that transaction."""
    driver = _driver_statement(conn.dialect, stmt) if conn.dialect.name == "postgresql" else None
    raw = None if driver is None else await conn.get_raw_connection()
    if driver is None or raw is None or getattr(raw.dbapi_connection, "_transaction", None) is None:
        # SQLAlchemy opens the driver's transaction with its first statement: it sends that one.
        return list((await conn.execute(stmt, params)).all())
    return await driver.run(raw.driver_connection, params)


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    """A statement compiled once for asyncpg and sent on the pool's driver connection.

    Measured on a GET of one deal: SQLAlchemy's execution path (cache key, execution context,
    greenlet hop, result wrapping) costs about 170 us of CPU more than the driver's own call,
    a quarter of the request. The statement is still built and compiled by SQLAlchemy and the
    connection still comes from its pool; only statements whose parameters need no conversion
    by their column types take this path, and asyncpg returns what those types would (UUIDs,
    UTC datetimes, JSON decoded by the codec the dialect installs on every connection).
    tests/api/test_hot_reads.py compares both paths.
    """

    sql: str
    names: tuple[str, ...]
    row: Any  # a namedtuple class of the selected columns

    async def fetch(self, engine: AsyncEngine, params: dict[str, Any]) -> list[Any]:
        # Checkout, statement and checkin in one greenlet: the pool is SQLAlchemy's synchronous
        # code, and each greenlet_spawn costs ~12 us; two of them (raw_connection, close) cost
        # 45 us of CPU per request where one costs 31 (bench/README.md, "A plain lane").
        return await greenlet_spawn(self._fetch_pooled, engine.sync_engine, params)

    def _fetch_pooled(self, engine: sa.Engine, params: dict[str, Any]) -> list[Any]:
        conn = engine.raw_connection()
        try:
            return await_(self.run(conn.driver_connection, params))
        except BaseException:
            conn.invalidate()  # a dropped or cancelled connection must not go back to the pool
            raise
        finally:
            conn.close()  # closing an overflow connection awaits the driver

    async def run(self, driver_connection: Any, params: dict[str, Any]) -> list[Any]:
        """The statement's rows, on a driver connection the caller holds."""
        records = await driver_connection.fetch(self.sql, *[params[name] for name in self.names])
        row = self.row
        return [row(*record) for record in records]


# By statement: the statements built at import, and the page statements ``_deal_page`` keeps (the
# oldest dropped past twice as many as it keeps, so an evicted page statement is not held here).
_DRIVER_STATEMENTS: OrderedDict[int, tuple[sa.Select[Any], _DriverStatement | None]] = OrderedDict()
_DRIVER_STATEMENTS_KEPT = 64 + 2 * _PAGE_STATEMENTS


def _driver_statement(dialect: sa.Dialect, stmt: sa.Select[Any]) -> _DriverStatement | None:
    cached = _DRIVER_STATEMENTS.get(id(stmt))
    if cached is not None and cached[0] is stmt:
        _DRIVER_STATEMENTS.move_to_end(id(stmt))
        return cached[1]
    compiled = stmt.compile(dialect=dialect)
    driver: _DriverStatement | None = None
    if not compiled.post_compile_params and not any(
        bind.type.dialect_impl(dialect).bind_processor(dialect) is not None for bind in compiled.binds.values()
    ):
        names = tuple(compiled.positiontup or ())
        driver = _DriverStatement(str(compiled), names, namedtuple("Row", stmt.selected_columns.keys()))  # type: ignore[misc]
    _DRIVER_STATEMENTS[id(stmt)] = (stmt, driver)
    if len(_DRIVER_STATEMENTS) > _DRIVER_STATEMENTS_KEPT:
        _DRIVER_STATEMENTS.popitem(last=False)
    return driver


class MemberReads:
    """Reads of members (the caller's own, and those a response names), bound to an engine whose
    connections run in autocommit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def of(self, credential: str | SignedIn) -> sa.Row[Any] | None:
        """The member an API key (by its hash) or a verified token acts as, with the key id (None
        for a token) and the organisation's name; None: the credential names nobody."""
        rows = await fetch_rows(self.engine, actor_statement(credential), actor_params(credential))
        return rows[0] if rows else None

    async def refs(self, organization_id: uuid.UUID, member_ids: list[uuid.UUID]) -> Sequence[Any]:
        """``MEMBER_REFS`` of these members of the organisation, in id order."""
        return await fetch_rows(self.engine, MEMBER_REFS, {"org": organization_id, "ids": member_ids})


_OIDC_AUDIENCE = sa.select(_o.c.oidc_audience).where(_o.c.oidc_issuer == sa.bindparam("issuer"))


class OrganizationReads:
    """Reads of organisation settings, bound to an engine whose connections run in autocommit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def oidc_audience(self, issuer: str) -> str | None:
        """The audience the organisation that signs in with this issuer accepts tokens for; None
        when no organisation does."""
        rows = await fetch_rows(self.engine, _OIDC_AUDIENCE, {"issuer": issuer})
        return rows[0].oidc_audience if rows else None


class DealReads:
    """Deal reads, bound to an engine whose connections run in autocommit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def one(self, credential: str | SignedIn, deal_id: uuid.UUID) -> sa.Row[Any] | None:
        """None: the caller (an API key's hash or a verified token) is unknown. A row whose id is
        None: no deal the caller's member may see."""
        params = actor_params(credential)
        params["deal_id"] = deal_id
        rows = await fetch_rows(self.engine, _DEAL[not isinstance(credential, str)], params)
        return rows[0] if rows else None

    async def page(self, credential: str | SignedIn, listing: DealListing) -> tuple[uuid.UUID, list[Any]] | None:
        """None: the caller is unknown. Otherwise the caller's organisation and up to
        ``listing.limit`` deals, in id order."""
        params = actor_params(credential)
        stmt = _deal_page(
            not isinstance(credential, str),
            listing.after is not None,
            listing.owner_id is not None,
            listing.stages is not None,
            listing.closed_from is not None,
            listing.closed_before is not None,
            listing.updated_since is not None,
            bool(listing.q),
            listing.limit,
        )
        if listing.after is not None:
            params["after"] = listing.after
        if listing.owner_id is not None:
            params["owner_id"] = listing.owner_id
        if listing.stages is not None:
            params["stages"] = [str(s) for s in listing.stages]
        if listing.closed_from is not None:
            params["closed_from"] = listing.closed_from
        if listing.closed_before is not None:
            params["closed_before"] = listing.closed_before
        if listing.updated_since is not None:
            params["updated_since"] = listing.updated_since
        if listing.q:
            params["pattern"] = f"%{_escape_like(listing.q.lower())}%"
        rows = await fetch_rows(self.engine, stmt, params)
        if not rows:
            return None
        return rows[0].actor_organization_id, [row for row in rows if row.id is not None]
