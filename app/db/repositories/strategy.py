"""Strategy versions and suggestions of one deal."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import StrategyVersion, Suggestion
from app.domain.strategy import SuggestionStatus


class StrategyRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def latest(self, deal_id: uuid.UUID) -> StrategyVersion | None:
        stmt = (
            sa.select(StrategyVersion)
            .where(StrategyVersion.deal_id == deal_id)
            .order_by(StrategyVersion.version.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_versions(self, deal_id: uuid.UUID, *, after: int | None, limit: int) -> list[StrategyVersion]:
        stmt = sa.select(StrategyVersion).where(StrategyVersion.deal_id == deal_id)
        if after is not None:
            stmt = stmt.where(StrategyVersion.version > after)
        return list((await self.session.execute(stmt.order_by(StrategyVersion.version).limit(limit))).scalars())

    async def get_suggestion(self, deal_id: uuid.UUID, suggestion_id: uuid.UUID) -> Suggestion | None:
        stmt = sa.select(Suggestion).where(Suggestion.id == suggestion_id, Suggestion.deal_id == deal_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lock_suggestion(self, deal_id: uuid.UUID, suggestion_id: uuid.UUID) -> Suggestion | None:
        """Read a suggestion under a row lock (PostgreSQL), so two decisions cannot both apply."""
        stmt = (
            sa.select(Suggestion)
            .where(Suggestion.id == suggestion_id, Suggestion.deal_id == deal_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_suggestions(
        self,
        deal_id: uuid.UUID,
        *,
        status: SuggestionStatus | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Suggestion]:
        stmt = sa.select(Suggestion).where(Suggestion.deal_id == deal_id)
        if status is not None:
            stmt = stmt.where(Suggestion.status == status)
        if after is not None:
            stmt = stmt.where(Suggestion.id > after)
        return list((await self.session.execute(stmt.order_by(Suggestion.id).limit(limit))).scalars())
