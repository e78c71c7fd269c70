from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import ActorDep, UowDep
from app.domain import errors as de
from app.domain.reviews import LossGroupBy
from app.errors import problem_responses
from app.http.routes import ApiRoute
from app.schemas.analytics import ClosedLostAnalytics
from app.schemas.common import IsoDate
from app.services import analytics as service

router = APIRouter(prefix="/v1", tags=["analytics"], route_class=ApiRoute)

# --- closed-lost analytics -------------------------------------------------------


@router.get("/analytics/closed-lost", response_model=ClosedLostAnalytics, responses=problem_responses(de.Forbidden))
async def get_closed_lost_analytics(
    actor: ActorDep,
    uow: UowDep,
    group_by: Annotated[LossGroupBy, Query(description="The dimension to group losses by")],
    date_from: Annotated[IsoDate | None, Query(alias="from", description="Lost on or after this day (UTC)")] = None,
    date_to: Annotated[IsoDate | None, Query(alias="to", description="Lost on or before this day (UTC)")] = None,
) -> ClosedLostAnalytics:
    """Losses grouped by reason, competitor, skill gap, owner or reviewer: counts, amounts and review follow-through."""
    view = await service.get_closed_lost_analytics(uow, actor, date_from, date_to, group_by)
    return ClosedLostAnalytics.model_validate(view)
