from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.deps import ActorDep, Expansions, IdempotencyDeps, PageDep, UowDep
from app.domain import errors as de
from app.domain.assignments import AssignmentStatus
from app.errors import problem_responses
from app.http.responses import ETAG_HEADER, LOCATION_HEADER, set_etag, set_location
from app.http.routes import ApiRoute
from app.routers.expansion import expanded
from app.schemas.assignments import AssignmentCreate, AssignmentPage, AssignmentPublic
from app.services import assignments as service

router = APIRouter(prefix="/v1", tags=["assignments"], route_class=ApiRoute)
_DECISION = {
    "responses": problem_responses(404, de.Forbidden, de.OwnerDecides, de.AssignmentNotPending),
    "dependencies": IdempotencyDeps,
}


@router.post(
    "/deals/{deal_id}/assignments",
    status_code=status.HTTP_201_CREATED,
    response_model=AssignmentPublic,
    responses={
        201: {"headers": LOCATION_HEADER},
        **problem_responses(404, de.Forbidden, de.AssignmentExists, de.InvalidAssignee, de.OwnerNotAssignable),
    },
    dependencies=IdempotencyDeps,
)
async def create_assignment(
    deal_id: uuid.UUID, body: AssignmentCreate, actor: ActorDep, uow: UowDep, response: Response
) -> AssignmentPublic:
    """Give someone a role on a deal: the owner's request awaits the assignee, anyone else's
    proposal awaits the owner."""
    assignment = await service.create_assignment(uow, actor, deal_id, body)
    set_location(response, f"/v1/assignments/{assignment.id}")
    return AssignmentPublic.model_validate(assignment)


@router.get("/deals/{deal_id}/assignments", response_model=AssignmentPage, responses=problem_responses(404))
async def list_deal_assignments(
    deal_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    status: AssignmentStatus | None = None,
    expand: Expansions = None,
) -> AssignmentPage:
    """The roles people hold or were offered on a deal."""
    result = await service.list_deal_assignments(uow, actor, deal_id, page, status)
    items = [AssignmentPublic.model_validate(a) for a in result.items]
    return await expanded(uow, actor, AssignmentPage(items=items, next_cursor=result.next_cursor), expand)


@router.get("/assignments", response_model=AssignmentPage, responses=problem_responses())
async def list_my_assignments(
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    status: AssignmentStatus | None = None,
    deal_id: Annotated[uuid.UUID | None, Query(description="Only the caller's roles on this deal")] = None,
    expand: Expansions = None,
) -> AssignmentPage:
    """The caller's own roles on deals, including requests awaiting their answer."""
    result = await service.list_my_assignments(uow, actor, page, status, deal_id)
    items = [AssignmentPublic.model_validate(a) for a in result.items]
    return await expanded(uow, actor, AssignmentPage(items=items, next_cursor=result.next_cursor), expand)


@router.get(
    "/assignments/{assignment_id}",
    response_model=AssignmentPublic,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404)},
)
async def get_assignment(
    assignment_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    response: Response,
    expand: Expansions = None,
) -> AssignmentPublic:
    """One assignment (visible to its assignee and to whoever sees the deal)."""
    assignment = AssignmentPublic.model_validate(await service.get_assignment(uow, actor, assignment_id))
    set_etag(response, assignment.version)
    return await expanded(uow, actor, assignment, expand)


@router.post("/assignments/{assignment_id}/accept", response_model=AssignmentPublic, **_DECISION)
async def accept_assignment(assignment_id: uuid.UUID, actor: ActorDep, uow: UowDep) -> AssignmentPublic:
    """Accept: the assignee accepts a request, the deal's owner accepts a proposal."""
    return AssignmentPublic.model_validate(await service.accept_assignment(uow, actor, assignment_id))


@router.post("/assignments/{assignment_id}/decline", response_model=AssignmentPublic, **_DECISION)
async def decline_assignment(assignment_id: uuid.UUID, actor: ActorDep, uow: UowDep) -> AssignmentPublic:
    """Decline: the assignee declines a request, the deal's owner declines a proposal."""
    return AssignmentPublic.model_validate(await service.decline_assignment(uow, actor, assignment_id))


@router.post(
    "/assignments/{assignment_id}/end",
    response_model=AssignmentPublic,
    responses=problem_responses(404, de.Forbidden, de.AssignmentEnded),
    dependencies=IdempotencyDeps,
)
async def end_assignment(assignment_id: uuid.UUID, actor: ActorDep, uow: UowDep) -> AssignmentPublic:
    """End an assignment (or withdraw a pending one): the owner or the assignee; it stops granting visibility."""
    return AssignmentPublic.model_validate(await service.end_assignment(uow, actor, assignment_id))
