from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import ActorDep, Expansions, UowDep
from app.domain import errors as de
from app.errors import problem_responses
from app.http.routes import ApiRoute
from app.routers.expansion import expanded
from app.schemas.coaching import CoachingAnalytics, ManagerCoaching
from app.schemas.common import IsoDate
from app.services import coaching as service

router = APIRouter(prefix="/v1", tags=["analytics"], route_class=ApiRoute)


@router.get("/analytics/coaching", response_model=CoachingAnalytics, responses=problem_responses(de.Forbidden))
async def get_coaching_analytics(
    actor: ActorDep,
    uow: UowDep,
    date_from: Annotated[IsoDate | None, Query(alias="from", description="From this day (UTC), inclusive")] = None,
    date_to: Annotated[IsoDate | None, Query(alias="to", description="Up to this day (UTC), inclusive")] = None,
    manager_id: Annotated[uuid.UUID | None, Query(description="One manager only")] = None,
    expand: Expansions = None,
) -> CoachingAnalytics:
    """Per manager: early coaching or late rescue — involvement, takeovers, observations, debriefs, reviews."""
    figures = await service.coaching_analytics(uow, actor, date_from=date_from, date_to=date_to, manager_id=manager_id)
    analytics = CoachingAnalytics(managers=[ManagerCoaching.model_validate(f) for f in figures])
    return await expanded(uow, actor, analytics, expand)
