"""Organisation rows: the settings that shape the rules."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Organization


class OrganizationRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, organization_id: uuid.UUID, *, for_update: bool = False) -> Organization:
        stmt = sa.select(Organization).where(Organization.id == organization_id)  # type: ignore[arg-type]
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one()

    async def issuer_taken(self, issuer: str, *, exclude: uuid.UUID) -> bool:
        """Whether another organisation signs in with this identity provider."""
        _o = Organization.__table__
        stmt = sa.select(sa.exists().where(_o.c.oidc_issuer == issuer, _o.c.id != exclude))
        return bool((await self.session.execute(stmt)).scalar())

    async def any_exist(self) -> bool:
        """Whether the database holds any organisation (the demo refuses to mix with real data)."""
        stmt = sa.select(sa.exists().where(Organization.__table__.c.id.isnot(None)))
        return bool((await self.session.execute(stmt)).scalar())
