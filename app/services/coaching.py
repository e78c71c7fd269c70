"""Coaching analytics: do managers coach early and observe, or join late and take over?"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from app.db.uow import UnitOfWork
from app.domain.coaching import coaching_scope
from app.domain.members import Actor


@dataclass(frozen=True, slots=True)
class ManagerCoachingView:
    """One manager's (or head of sales') coaching figures over the period."""

    manager_id: uuid.UUID
    deals_involved: int
    late_first_involvement_share: float | None
    calls_attended: int
    takeovers: int
    takeovers_per_call: float | None
    observations_given: int
    strengths_per_improvement: float | None
    debrief_completion_rate: float | None
    reviews_completed: int
    review_completion_rate: float | None
    median_days_to_review: float | None


async def coaching_analytics(
    uow: UnitOfWork,
    actor: Actor,
    *,
    date_from: dt.date | None,
    date_to: dt.date | None,
    manager_id: uuid.UUID | None,
) -> list[ManagerCoachingView]:
    scope = coaching_scope(actor, manager_id)
    start = None if date_from is None else dt.datetime.combine(date_from, dt.time(), tzinfo=dt.UTC)
    end = None if date_to is None else dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    rows = await uow.coaching.coaching_figures(actor.organization_id, start=start, end=end, manager_id=scope)
    return [ManagerCoachingView(**row._mapping) for row in rows]
