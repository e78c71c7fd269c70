from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.deps import ActorDep, CallerDep, Expansions, IdempotencyDeps, IfMatchDep, PageDep, UowDep
from app.domain import errors as de
from app.domain.members import MemberRole
from app.errors import problem_responses
from app.http.responses import (
    ETAG_HEADER,
    LOCATION_HEADER,
    etag,
    json_response,
    plain_json_response,
    set_etag,
    set_location,
)
from app.http.routes import ApiRoute, served_plain
from app.routers import expansion
from app.schemas.expand import Expand
from app.schemas.members import MemberCreate, MemberPage, MemberPublic, MemberUpdate, MePublic
from app.services import auth as auth_service
from app.services import members as service

router = APIRouter(prefix="/v1", tags=["members"], route_class=ApiRoute)


@router.get("/me", response_model=MePublic, responses={200: {"headers": ETAG_HEADER}, **problem_responses()})
@served_plain
async def get_me(
    caller: CallerDep,
    expand: Expansions = None,
) -> Response:
    """The member the API key (or sign-in token) acts as, with their organisation."""
    row = (await auth_service.authenticate(caller)).row
    document = {
        "id": row.id,
        "organization_id": row.organization_id,
        "name": row.name,
        "email": row.email,
        "role": row.role,
        "manager_id": row.manager_id,
        "active": row.active,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "organization": {"id": row.organization_id, "name": row.organization_name},
        "api_key_id": row.api_key_id,
    }
    if expand and Expand.members in expand:
        document["members"] = await expansion.plain_members(caller, row.organization_id, [row.manager_id])
    return plain_json_response(document, headers={"ETag": etag(row.version)})


@router.post(
    "/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberPublic,
    responses={
        201: {"headers": LOCATION_HEADER},
        **problem_responses(de.Forbidden, de.EmailTaken, de.InvalidReportingLine),
    },
    dependencies=IdempotencyDeps,
)
async def create_member(body: MemberCreate, actor: ActorDep, uow: UowDep, response: Response) -> MemberPublic:
    """Add a member to the organisation (admin only)."""
    member = await service.create_member(uow, actor, body)
    set_location(response, f"/v1/members/{member.id}")
    set_etag(response, member.version)
    return MemberPublic.model_validate(member)


@router.get("/members", response_model=MemberPage, responses=problem_responses())
async def list_members(
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    role: MemberRole | None = None,
    manager_id: Annotated[uuid.UUID | None, Query(description="Direct reports of this member")] = None,
    active: bool | None = None,
    expand: Expansions = None,
) -> Response:
    """Members of the organisation, oldest first."""
    result = await service.list_members(uow, actor, page, role=role, manager_id=manager_id, active=active)
    items = [row._mapping for row in result.items]
    members = MemberPage.model_validate({"items": items, "next_cursor": result.next_cursor})
    return json_response(await expansion.expanded(uow, actor, members, expand))


@router.get(
    "/members/{member_id}",
    response_model=MemberPublic,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404)},
)
async def get_member(
    member_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    response: Response,
    expand: Expansions = None,
) -> MemberPublic:
    """One member of the organisation."""
    member = await service.read_member(uow, actor, member_id)
    set_etag(response, member.version)
    return await expansion.expanded(uow, actor, MemberPublic.model_validate(member), expand)


@router.patch(
    "/members/{member_id}",
    response_model=MemberPublic,
    responses={
        200: {"headers": ETAG_HEADER},
        **problem_responses(404, 412, de.Forbidden, de.EmailTaken, de.InvalidReportingLine),
    },
)
async def update_member(
    member_id: uuid.UUID, body: MemberUpdate, actor: ActorDep, uow: UowDep, if_match: IfMatchDep, response: Response
) -> MemberPublic:
    """Change a member's name, email, role, manager or active flag (admin only)."""
    member = await service.update_member(uow, actor, member_id, body, if_match)
    set_etag(response, member.version)
    return MemberPublic.model_validate(member)
