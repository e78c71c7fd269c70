"""Commitment queries: visibility along the reporting line, keyset listing, a seller's open ones."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Commitment
from app.db.repositories.members import line_ids
from app.domain.development import CommitmentStatus
from app.domain.members import Actor, MemberRole


def visibility(actor: Actor) -> sa.ColumnElement[bool] | None:
    """Which commitments the actor sees, as a condition on Commitment; None means all of the
    organisation's. The same rule as ``app.domain.development.can_see_development``: the member
    who committed, their management line (transitively) and heads of sales."""
    if actor.role == MemberRole.head_of_sales:
        return None
    conditions = [Commitment.member_id == actor.member_id]
    if actor.role == MemberRole.manager:
        conditions.append(Commitment.member_id.in_(line_ids(actor.organization_id, actor.member_id)))
    return sa.or_(*conditions)


class CommitmentRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_visible(
        self, actor: Actor, commitment_id: uuid.UUID, *, for_update: bool = False
    ) -> Commitment | None:
        stmt = sa.select(Commitment).where(
            Commitment.id == commitment_id, Commitment.organization_id == actor.organization_id
        )
        condition = visibility(actor)
        if condition is not None:
            stmt = stmt.where(condition)
        if for_update:
            stmt = stmt.with_for_update(of=Commitment).execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_page(
        self,
        actor: Actor,
        *,
        member_id: uuid.UUID | None,
        status: CommitmentStatus | None,
        deal_id: uuid.UUID | None,
        before: uuid.UUID | None,
        limit: int,
    ) -> list[Commitment]:
        """Commitments the actor sees, newest first, resuming before ``before``."""
        stmt = sa.select(Commitment).where(Commitment.organization_id == actor.organization_id)
        condition = visibility(actor)
        if condition is not None:
            stmt = stmt.where(condition)
        if member_id is not None:
            stmt = stmt.where(Commitment.member_id == member_id)
        if status is not None:
            stmt = stmt.where(Commitment.status == status)
        if deal_id is not None:
            stmt = stmt.where(Commitment.deal_id == deal_id)
        if before is not None:
            stmt = stmt.where(Commitment.id < before)
        stmt = stmt.order_by(Commitment.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def open_of(self, organization_id: uuid.UUID, member_id: uuid.UUID, *, limit: int) -> list[Commitment]:
        """A member's open commitments, the soonest due first (undated ones last, oldest first)."""
        stmt = (
            sa.select(Commitment)
            .where(
                Commitment.organization_id == organization_id,
                Commitment.member_id == member_id,
                Commitment.status == CommitmentStatus.open,
            )
            .order_by(Commitment.due_on.is_(None), Commitment.due_on, Commitment.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def made_from(self, source_id: uuid.UUID) -> set[tuple[uuid.UUID, str]]:
        """Who committed to what from one observation or review already (a review completed
        again after its deal was lost again does not repeat its action items)."""
        stmt = sa.select(Commitment.member_id, Commitment.text).where(Commitment.source_id == source_id)
        return {(row.member_id, row.text) for row in (await self.session.execute(stmt)).all()}
