from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.deps import ActorDep, Expansions, IdempotencyDeps, PageDep, UowDep
from app.domain import errors as de
from app.errors import problem_responses
from app.http.responses import CONTENT_ETAG_HEADER, LOCATION_HEADER, NO_STORE_HEADER, set_location, set_no_store
from app.http.routes import ApiRoute
from app.routers.expansion import expanded
from app.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPage, ApiKeyPublic
from app.services import api_keys as service

router = APIRouter(prefix="/v1", tags=["api-keys"], route_class=ApiRoute)


@router.post(
    "/members/{member_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses={201: {"headers": {**LOCATION_HEADER, **NO_STORE_HEADER}}, **problem_responses(404, de.Forbidden)},
    dependencies=IdempotencyDeps,
)
async def create_api_key(
    member_id: uuid.UUID, actor: ActorDep, uow: UowDep, response: Response, body: ApiKeyCreate | None = None
) -> ApiKeyCreated:
    """Issue an API key that acts as this member (admin only); the secret is shown only here."""
    issued = await service.issue_key(uow, actor, member_id, body or ApiKeyCreate())
    set_location(response, f"/v1/api-keys/{issued.key.id}")
    set_no_store(response)
    return ApiKeyCreated(**ApiKeyPublic.model_validate(issued.key).model_dump(), api_key=issued.secret)


@router.get("/members/{member_id}/api-keys", response_model=ApiKeyPage, responses=problem_responses(404, de.Forbidden))
async def list_api_keys(
    member_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    expand: Expansions = None,
) -> ApiKeyPage:
    """A member's keys, revoked ones included, without secrets (admin or the member)."""
    result = await service.list_keys(uow, actor, member_id, page)
    items = [ApiKeyPublic.model_validate(k) for k in result.items]
    return await expanded(uow, actor, ApiKeyPage(items=items, next_cursor=result.next_cursor), expand)


@router.get(
    "/api-keys/{key_id}",
    response_model=ApiKeyPublic,
    responses={200: {"headers": CONTENT_ETAG_HEADER}, **problem_responses(404)},
)
async def get_api_key(
    key_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    expand: Expansions = None,
) -> ApiKeyPublic:
    """One key, without its secret (admin, or the key's own member)."""
    return await expanded(uow, actor, ApiKeyPublic.model_validate(await service.get_key(uow, actor, key_id)), expand)


@router.delete(
    "/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, de.Forbidden)
)
async def revoke_api_key(key_id: uuid.UUID, actor: ActorDep, uow: UowDep) -> Response:
    """Revoke a key at once (admin only; anyone else gets 403 forbidden); it stays listed with revoked_at."""
    await service.revoke_key(uow, actor, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
