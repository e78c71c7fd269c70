from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.deps import ActorDep, Expansions, UowDep
from app.domain import errors as de
from app.domain.development import TREND_RULE
from app.errors import problem_responses
from app.http.responses import json_response
from app.http.routes import ApiRoute
from app.routers.commitments import render_commitment
from app.routers.expansion import expanded
from app.schemas.common import IsoDate
from app.schemas.development import CallBrief, DevelopmentProfile, FocusSkill, LastObservation, TeamSkills
from app.services import development as service

router = APIRouter(prefix="/v1", route_class=ApiRoute)

_WINDOW = "The window is whole UTC days, `from` to `to` inclusive; by default the 90 days ending today, at most 366 "
_WINDOW += "(`from` after `to`, or a longer window: 422 `validation_error`)."
From = Annotated[IsoDate | None, Query(alias="from", description="First day (UTC); default: 89 days before `to`")]
To = Annotated[IsoDate | None, Query(alias="to", description="Last day (UTC), inclusive; default: today")]


@router.get(
    "/members/{member_id}/development",
    tags=["development"],
    response_model=DevelopmentProfile,
    responses=problem_responses(404),
    description=f"A member's skill profile, commitments, debriefs and losses over a window (the member, their "
    f"management line and heads of sales; anyone else: 404).\n\n{_WINDOW}\n\n`strengths` and `improvements` count "
    "the skill in shared observations of calls the member led (dated by `shared_at`), `loss_gaps` in completed "
    "reviews of the member's lost deals (dated by the loss); `commitments` counts those made in the window by "
    f"their status today.\n\n{TREND_RULE}",
)
async def get_member_development(
    member_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    date_from: From = None,
    date_to: To = None,
    expand: Expansions = None,
) -> Response:
    """A member's skill profile with its trend, commitments, debriefs and losses over a window."""
    view = await service.get_profile(uow, actor, member_id, date_from, date_to)
    return json_response(await expanded(uow, actor, DevelopmentProfile.model_validate(view), expand))


@router.get("/calls/{call_id}/brief", tags=["calls"], response_model=CallBrief, responses=problem_responses(404))
async def get_call_brief(
    call_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    expand: Expansions = None,
) -> Response:
    """What the observer watches for: the lead's open commitments, focus skills and last debrief (whoever sees the call)."""
    view = await service.get_brief(uow, actor, call_id)
    brief = CallBrief(
        call_id=view.call_id,
        seller_id=view.seller_id,
        open_commitments=[render_commitment(c) for c in view.open_commitments],
        focus_skills=[FocusSkill.model_validate(row) for row in view.focus_skills],
        last_observation=None
        if view.last_observation is None
        else LastObservation.model_validate(view.last_observation),
    )
    return json_response(await expanded(uow, actor, brief, expand))


@router.get(
    "/analytics/skills",
    tags=["analytics"],
    response_model=TeamSkills,
    responses=problem_responses(de.Forbidden),
    description="Which skills the team must build: per seller and skill, and per skill in total, the strengths, "
    "improvements and loss gaps in the window, counted as in the member's development profile. Managers see their "
    "line (transitively) or, with `manager_id`, a line below them; heads of sales the organisation or one "
    f"manager's line; anyone else: 403 `forbidden`.\n\n{_WINDOW}",
)
async def get_skills_analytics(
    actor: ActorDep,
    uow: UowDep,
    date_from: From = None,
    date_to: To = None,
    manager_id: Annotated[uuid.UUID | None, Query(description="Only this manager's line")] = None,
    expand: Expansions = None,
) -> Response:
    """Sellers by skill, with totals: what the team needs to build."""
    view = await service.get_team_skills(uow, actor, date_from, date_to, manager_id)
    return json_response(await expanded(uow, actor, TeamSkills.model_validate(view), expand))
