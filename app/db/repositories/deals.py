"""Deal queries: visibility, keyset listing, external references."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Assignment, Deal, DealExternalRef
from app.db.repositories.members import line_ids
from app.domain.assignments import AssignmentStatus
from app.domain.deals import Stage
from app.domain.members import Actor, MemberRole


def active_assignment_deal_ids(member_id: uuid.UUID) -> sa.Select[Any]:
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
