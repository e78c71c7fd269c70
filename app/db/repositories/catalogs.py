"""The organisation's code catalogs (skills, loss reasons): same shape, one set of queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import LossReason, Skill
from app.domain.catalogs import DEFAULT_LOSS_REASONS, DEFAULT_SKILLS

Entry = TypeVar("Entry", bound=Skill | LossReason)


class CatalogRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, model: type[Entry], organization_id: uuid.UUID, code: str) -> Entry | None:
        stmt = sa.select(model).where(model.organization_id == organization_id, model.code == code)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def loss_reasons(self, organization_id: uuid.UUID, codes: Iterable[str]) -> dict[str, LossReason]:
        """Many loss reasons of the organisation by code, in one query."""
        wanted = list(set(codes))
        if not wanted:
            return {}
        stmt = sa.select(LossReason).where(LossReason.organization_id == organization_id, LossReason.code.in_(wanted))
        return {reason.code: reason for reason in (await self.session.execute(stmt)).scalars()}

    async def code_taken(self, model: type[Entry], organization_id: uuid.UUID, code: str) -> bool:
        stmt = sa.select(sa.exists().where(model.organization_id == organization_id, model.code == code))
        return bool((await self.session.execute(stmt)).scalar())

    async def active_skill_codes(self, organization_id: uuid.UUID, codes: Iterable[str]) -> set[str]:
        stmt = sa.select(Skill.code).where(
            Skill.organization_id == organization_id, Skill.code.in_(list(codes)), Skill.active.is_(True)
        )
        return set((await self.session.execute(stmt)).scalars())

    async def list_page(
        self,
        model: type[Entry],
        organization_id: uuid.UUID,
        *,
        after: str | None,
        limit: int,
        active: bool | None = None,
    ) -> list[Entry]:
        stmt = sa.select(model).where(model.organization_id == organization_id)
        if active is not None:
            stmt = stmt.where(model.active.is_(active))
        if after is not None:
            stmt = stmt.where(model.code > after)
        return list((await self.session.execute(stmt.order_by(model.code).limit(limit))).scalars())

    def seed_defaults(self, organization_id: uuid.UUID) -> None:
        self.session.add_all(Skill(organization_id=organization_id, code=c, label=label) for c, label in DEFAULT_SKILLS)
        self.session.add_all(
            LossReason(organization_id=organization_id, code=c, label=label, suggested_skills=list(skills))
            for c, label, skills in DEFAULT_LOSS_REASONS
        )
