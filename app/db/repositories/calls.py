"""Calls with their attendees, interventions and observations."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Call, CallAttendee, Intervention, Member, Observation, Organization
from app.db.repositories.members import line_ids
from app.domain.calls import ObservationStatus
from app.domain.members import Actor, MemberRole

_a = CallAttendee.__table__


# --- calls and attendees ---------------------------------------------------------


# --- interventions ---------------------------------------------------------------------


# --- observations ---------------------------------------------------------------------


def observation_visibility(actor: Actor) -> sa.ColumnElement[bool] | None:
    """Which observations the actor sees, as a condition on Observation; None means all.

    The same rule as ``app.domain.calls.can_see_observation``: the observer, the seller's
    management line (a manager sees their line's sellers, transitively), heads of sales,
    and the seller once shared; admins and integrations see none.
    """
    if actor.role == MemberRole.head_of_sales:
        return None
    if actor.role in (MemberRole.admin, MemberRole.integration):
        return sa.false()
    conditions = [
        Observation.observer_id == actor.member_id,
        sa.and_(Observation.seller_id == actor.member_id, Observation.status != ObservationStatus.draft),
    ]
    if actor.role == MemberRole.manager:
        conditions.append(Observation.seller_id.in_(line_ids(actor.organization_id, actor.member_id)))
    return sa.or_(*conditions)


class CallRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_call(self, organization_id: uuid.UUID, call_id: uuid.UUID) -> Call | None:
        stmt = sa.select(Call).where(Call.id == call_id, Call.organization_id == organization_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lock_call(self, call_id: uuid.UUID) -> Call:
        """Re-read a call under a row lock (PostgreSQL), so concurrent changes queue up."""
        stmt = sa.select(Call).where(Call.id == call_id).with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one()

    async def attendees_of(self, call_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[sa.Row[Any]]]:
        """The attendees of many calls in one query, each call's in the order they were given.
        Plain rows: the list is replaced wholesale, never edited through the ORM."""
        attendees: dict[uuid.UUID, list[sa.Row[Any]]] = {call_id: [] for call_id in call_ids}
        if not call_ids:
            return attendees
        stmt = (
            sa.select(_a.c.call_id, _a.c.member_id, _a.c.call_role, _a.c.agreed_part)
            .where(_a.c.call_id.in_(list(call_ids)))
            .order_by(_a.c.call_id, _a.c.position)
        )
        for row in (await self.session.execute(stmt)).all():
            attendees[row.call_id].append(row)
        return attendees

    async def replace_attendees(
        self, *, organization_id: uuid.UUID, call_id: uuid.UUID, attendees: Sequence[Mapping[str, Any]]
    ) -> None:
        """Set a call's attendees to ``attendees`` (dicts of member_id, call_role, agreed_part)."""
        await self.session.execute(sa.delete(_a).where(_a.c.call_id == call_id))
        if attendees:
            rows = [
                {"call_id": call_id, "organization_id": organization_id, "position": position, **attendee}
                for position, attendee in enumerate(attendees)
            ]
            await self.session.execute(sa.insert(_a), rows)

    async def members_by_id(
        self, organization_id: uuid.UUID, member_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, Member]:
        ids = list(set(member_ids))
        if not ids:
            return {}
        stmt = sa.select(Member).where(Member.organization_id == organization_id, Member.id.in_(ids))
        return {member.id: member for member in (await self.session.execute(stmt)).scalars()}

    async def list_calls(
        self, deal_id: uuid.UUID, *, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
    ) -> list[Call]:
        """A deal's calls by scheduled time (ties by id), resuming after ``after``."""
        stmt = sa.select(Call).where(Call.deal_id == deal_id)
        if after is not None:
            scheduled_at, call_id = after
            stmt = stmt.where(
                sa.or_(Call.scheduled_at > scheduled_at, sa.and_(Call.scheduled_at == scheduled_at, Call.id > call_id))
            )
        stmt = stmt.order_by(Call.scheduled_at, Call.id).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def get_intervention(self, call_id: uuid.UUID, intervention_id: uuid.UUID) -> Intervention | None:
        stmt = sa.select(Intervention).where(Intervention.id == intervention_id, Intervention.call_id == call_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_interventions(
        self, call_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> list[Intervention]:
        stmt = sa.select(Intervention).where(Intervention.call_id == call_id)
        if after is not None:
            stmt = stmt.where(Intervention.id > after)
        return list((await self.session.execute(stmt.order_by(Intervention.id).limit(limit))).scalars())

    async def max_improvements(self, organization_id: uuid.UUID) -> int:
        stmt = sa.select(Organization.max_improvements_per_observation).where(Organization.id == organization_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def get_observation(self, organization_id: uuid.UUID, observation_id: uuid.UUID) -> Observation | None:
        stmt = sa.select(Observation).where(
            Observation.id == observation_id, Observation.organization_id == organization_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lock_observation(self, observation_id: uuid.UUID) -> Observation:
        stmt = (
            sa.select(Observation)
            .where(Observation.id == observation_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one()

    async def list_observations(
        self,
        actor: Actor,
        *,
        seller_id: uuid.UUID | None,
        observer_id: uuid.UUID | None,
        status: ObservationStatus | None,
        before: uuid.UUID | None,
        limit: int,
    ) -> list[Observation]:
        """Observations the actor sees, newest first, resuming before ``before``."""
        stmt = sa.select(Observation).where(Observation.organization_id == actor.organization_id)
        condition = observation_visibility(actor)
        if condition is not None:
            stmt = stmt.where(condition)
        if seller_id is not None:
            stmt = stmt.where(Observation.seller_id == seller_id)
        if observer_id is not None:
            stmt = stmt.where(Observation.observer_id == observer_id)
        if status is not None:
            stmt = stmt.where(Observation.status == status)
        if before is not None:
            stmt = stmt.where(Observation.id < before)
        stmt = stmt.order_by(Observation.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())
