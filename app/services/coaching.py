"""Coaching analytics: do managers coach early and observe, or join late and take over?"""

from __future__ import annotations

import datetime as dt
import uuid

from app.db.uow import UnitOfWork
from app.domain.coaching import coaching_scope
from app.domain.members import Actor
from app.schemas.coaching import CoachingAnalytics, ManagerCoaching


async def coaching_analytics(
    uow: UnitOfWork,
    actor: Actor,
    *,
    date_from: dt.date | None,
    date_to: dt.date | None,
    manager_id: uuid.UUID | None,
) -> CoachingAnalytics:
    scope = coaching_scope(actor, manager_id)
    start = None if date_from is None else dt.datetime.combine(date_from, dt.time(), tzinfo=dt.UTC)
    end = None if date_to is None else dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    rows = await uow.coaching.coaching_figures(actor.organization_id, start=start, end=end, manager_id=scope)
    return CoachingAnalytics(managers=[ManagerCoaching.model_validate(row) for row in rows])
