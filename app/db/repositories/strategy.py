"""Strategy versions and suggestions of one deal."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import StrategyNextStep, StrategyVersion, Suggestion
from app.domain.strategy import NextStep, SuggestionStatus

_step = StrategyNextStep.__table__
# The steps a version drops go; the others are written as the version has them, and a step keeps
# its assigned_at while its assignee stays the same.
_DROP_STEPS = sa.delete(_step).where(
    _step.c.deal_id == sa.bindparam("deal_id"), _step.c.id.not_in(sa.bindparam("kept", expanding=True))
)


def _upsert_steps(insert: Any) -> Any:
    stmt = insert(_step)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[_step.c.deal_id, _step.c.id],
        set_={
            "position": new.position,
            "description": new.description,
            "assignee_id": new.assignee_id,
            "due_date": new.due_date,
            "status": new.status,
            "assigned_at": sa.case(
                (_step.c.assignee_id.is_not_distinct_from(new.assignee_id), _step.c.assigned_at),
                else_=new.assigned_at,
            ),
        },
    )


_UPSERT_STEPS = {"postgresql": _upsert_steps(postgresql.insert), "sqlite": _upsert_steps(sqlite.insert)}


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

    async def replace_next_steps(
        self, organization_id: uuid.UUID, deal_id: uuid.UUID, steps: Sequence[NextStep], now: dt.datetime
    ) -> None:
        """Make the deal's next-step rows those of its new version (every step has an id)."""
        await self.session.execute(_DROP_STEPS, {"deal_id": deal_id, "kept": [step.id for step in steps]})
        if not steps:
            return
        rows = [
            {
                "deal_id": deal_id,
                "id": step.id,
                "organization_id": organization_id,
                "position": position,
                "description": step.description,
                "assignee_id": step.assignee_id,
                "due_date": step.due_date,
                "status": str(step.status),
                "assigned_at": None if step.assignee_id is None else now,
            }
            for position, step in enumerate(steps)
        ]
        await self.session.execute(_UPSERT_STEPS[self.session.bind.dialect.name], rows)

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
