"""Member queries: lookups, reporting-line walks, keyset listing."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Member, Organization
from app.domain.members import MemberRole

_m = Member.__table__


def line_ids(
    organization_id: uuid.UUID | sa.BindParameter[Any], manager_id: uuid.UUID | sa.BindParameter[Any]
) -> sa.Select[Any]:
    """A subquery of every member below ``manager_id`` (transitively): the manager's line."""
    line = (
        sa.select(_m.c.id, sa.literal_column("1").label("depth"))
        .where(_m.c.manager_id == manager_id, _m.c.organization_id == organization_id)
        .cte("line", recursive=True)
    )
    child = _m.alias("child")
    # Constants inline, not bound: a statement with only named parameters can go on the driver.
    line = line.union_all(
        sa.select(child.c.id, line.c.depth + sa.literal_column("1")).where(
            child.c.manager_id == line.c.id, line.c.depth < sa.literal_column("10000")
        )
    )
    return sa.select(line.c.id)


_ORG = sa.bindparam("org", type_=_m.c.organization_id.type)


def _chain() -> sa.Select[Any]:
    """``member`` and the managers above it, nearest first (built once: a recursive CTE costs more
    to construct than to run)."""
    chain = (
        sa.select(_m.c.id, _m.c.manager_id, sa.literal(1).label("depth"))
        .where(_m.c.id == sa.bindparam("member", type_=_m.c.id.type), _m.c.organization_id == _ORG)
        .cte("chain", recursive=True)
    )
    parent = _m.alias("parent")
    chain = chain.union_all(
        sa.select(parent.c.id, parent.c.manager_id, chain.c.depth + 1).where(
            parent.c.id == chain.c.manager_id, chain.c.depth < 10_000
        )
    )
    return sa.select(chain.c.id).order_by(chain.c.depth)


_CHAIN = _chain()

# One member of an organisation (built once: constructing it cost more than running it).
_GET = sa.select(Member).where(Member.id == sa.bindparam("id", type_=_m.c.id.type), Member.organization_id == _ORG)

# What the owner rules read about a member named as a deal's owner: its role, whether it is
# active, and whether it is in the acting member's (``actor``) line.
OWNER_COLUMNS = (
    _m.c.id,
    _m.c.role,
    _m.c.active,
    _m.c.id.in_(line_ids(_ORG, sa.bindparam("actor", type_=_m.c.id.type))).label("in_line"),
)

# The members a batch names as owners.
_OWNERS = sa.select(*OWNER_COLUMNS).where(
    _m.c.organization_id == _ORG, _m.c.id.in_(sa.bindparam("ids", expanding=True))
)


# The id, name and role of some members of an organisation: what `?expand=members` shows of them.
MEMBER_REFS = (
    sa.select(_m.c.id, _m.c.name, _m.c.role)
    .where(_m.c.organization_id == _ORG, _m.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_m.c.id)
)


class MemberRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, organization_id: uuid.UUID, member_id: uuid.UUID) -> Member | None:
        return (await self.session.execute(_GET, {"org": organization_id, "id": member_id})).scalar_one_or_none()

    async def owners(
        self, organization_id: uuid.UUID, actor_id: uuid.UUID, member_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, sa.Row[Any]]:
        """Many members of the organisation in one query (id, role, active), each with ``in_line``:
        whether it is below ``actor_id`` in the reporting lines, as ``manager_chain`` would say."""
        ids = list(set(member_ids))
        if not ids:
            return {}
        rows = await self.session.execute(_OWNERS, {"org": organization_id, "actor": actor_id, "ids": ids})
        return {row.id: row for row in rows}

    async def refs(self, organization_id: uuid.UUID, member_ids: list[uuid.UUID]) -> list[sa.Row[Any]]:
        """``MEMBER_REFS`` of these members, in id order."""
        return list((await self.session.execute(MEMBER_REFS, {"org": organization_id, "ids": member_ids})).all())

    async def lock_reporting_lines(self, organization_id: uuid.UUID) -> None:
        """Serialise reporting-line changes in one organisation, so two concurrent edits
        cannot together form a cycle. (SQLite already runs one writer at a time.)"""
        if self.session.bind.dialect.name == "postgresql":
            await self.session.execute(
                sa.select(Organization.id).where(Organization.id == organization_id).with_for_update()
            )

    async def manager_chain(self, organization_id: uuid.UUID, manager_id: uuid.UUID) -> list[uuid.UUID]:
        """The ids from ``manager_id`` up to the top of its line, nearest first."""
        rows = await self.session.execute(_CHAIN, {"org": organization_id, "member": manager_id})
        return list(rows.scalars())

    async def has_active_reports(self, member_id: uuid.UUID) -> bool:
        stmt = sa.select(sa.exists().where(_m.c.manager_id == member_id, _m.c.active.is_(True)))
        return bool((await self.session.execute(stmt)).scalar())

    async def email_taken(self, organization_id: uuid.UUID, email: str, exclude: uuid.UUID | None = None) -> bool:
        cond = [_m.c.organization_id == organization_id, _m.c.email == email]
        if exclude is not None:
            cond.append(_m.c.id != exclude)
        return bool((await self.session.execute(sa.select(sa.exists().where(*cond)))).scalar())

    async def list_page(
        self,
        organization_id: uuid.UUID,
        *,
        after: uuid.UUID | None,
        limit: int,
        role: MemberRole | None = None,
        manager_id: uuid.UUID | None = None,
        active: bool | None = None,
    ) -> list[sa.Row[Any]]:
        """Plain rows, not ORM objects: listing is a hot read path."""
        stmt = sa.select(*_m.c).where(_m.c.organization_id == organization_id)
        if role is not None:
            stmt = stmt.where(_m.c.role == role)
        if manager_id is not None:
            stmt = stmt.where(_m.c.manager_id == manager_id)
        if active is not None:
            stmt = stmt.where(_m.c.active.is_(active))
        if after is not None:
            stmt = stmt.where(_m.c.id > after)
        stmt = stmt.order_by(_m.c.id).limit(limit)
        return list((await self.session.execute(stmt)).all())

    async def get_row(self, organization_id: uuid.UUID, member_id: uuid.UUID) -> sa.Row[Any] | None:
        stmt = sa.select(*_m.c).where(_m.c.id == member_id, _m.c.organization_id == organization_id)
        return (await self.session.execute(stmt)).first()
