from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.deps import ActorDep, IdempotencyDeps, IfMatchDep, PageDep, UowDep
from app.domain import errors as de
from app.errors import problem_responses
from app.http.responses import ETAG_HEADER, LOCATION_HEADER, set_etag, set_location
from app.http.routes import ApiRoute
from app.schemas.catalogs import (
    LossReasonCreate,
    LossReasonPage,
    LossReasonPublic,
    LossReasonUpdate,
    SkillCreate,
    SkillPage,
    SkillPublic,
    SkillUpdate,
)
from app.services import catalogs as service
from app.services.catalogs import Catalog

router = APIRouter(prefix="/v1", route_class=ApiRoute)

CodePath = Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9_]*$", description="The entry's code")]
_CREATED = {201: {"headers": LOCATION_HEADER}, **problem_responses(de.Forbidden, de.CodeTaken, de.UnknownSkill)}
_UPDATED = {200: {"headers": ETAG_HEADER}, **problem_responses(404, 412, de.Forbidden, de.UnknownSkill)}
_ONE = {200: {"headers": ETAG_HEADER}, **problem_responses(404)}


@router.get("/skills", tags=["skills"], response_model=SkillPage, responses=problem_responses())
async def list_skills(actor: ActorDep, uow: UowDep, page: PageDep, active: bool | None = None) -> SkillPage:
    """The organisation's skill catalog, by code."""
    result = await service.list_entries(uow, actor, Catalog.skills, page, active)
    return SkillPage(items=[SkillPublic.model_validate(e) for e in result.items], next_cursor=result.next_cursor)


@router.post(
    "/skills",
    tags=["skills"],
    status_code=status.HTTP_201_CREATED,
    response_model=SkillPublic,
    responses=_CREATED,
    dependencies=IdempotencyDeps,
)
async def create_skill(body: SkillCreate, actor: ActorDep, uow: UowDep, response: Response) -> SkillPublic:
    """Add a skill to the catalog (admin only)."""
    entry = await service.create_entry(uow, actor, Catalog.skills, body)
    set_location(response, f"/v1/skills/{entry.code}")
    return SkillPublic.model_validate(entry)


@router.get("/skills/{code}", tags=["skills"], response_model=SkillPublic, responses=_ONE)
async def get_skill(code: CodePath, actor: ActorDep, uow: UowDep, response: Response) -> SkillPublic:
    """One skill of the catalog."""
    entry = await service.get_entry(uow, actor, Catalog.skills, code)
    set_etag(response, entry.version)
    return SkillPublic.model_validate(entry)


@router.patch("/skills/{code}", tags=["skills"], response_model=SkillPublic, responses=_UPDATED)
async def update_skill(
    code: CodePath, body: SkillUpdate, actor: ActorDep, uow: UowDep, if_match: IfMatchDep, response: Response
) -> SkillPublic:
    """Relabel or retire a skill (admin only)."""
    entry = await service.update_entry(uow, actor, Catalog.skills, code, body, if_match)
    set_etag(response, entry.version)
    return SkillPublic.model_validate(entry)


@router.get("/loss-reasons", tags=["loss-reasons"], response_model=LossReasonPage, responses=problem_responses())
async def list_loss_reasons(actor: ActorDep, uow: UowDep, page: PageDep, active: bool | None = None) -> LossReasonPage:
    """The organisation's loss-reason catalog, by code, with the skills each points at."""
    result = await service.list_entries(uow, actor, Catalog.loss_reasons, page, active)
    return LossReasonPage(
        items=[LossReasonPublic.model_validate(e) for e in result.items], next_cursor=result.next_cursor
    )


@router.post(
    "/loss-reasons",
    tags=["loss-reasons"],
    status_code=status.HTTP_201_CREATED,
    response_model=LossReasonPublic,
    responses=_CREATED,
    dependencies=IdempotencyDeps,
)
async def create_loss_reason(
    body: LossReasonCreate, actor: ActorDep, uow: UowDep, response: Response
) -> LossReasonPublic:
    """Add a loss reason to the catalog (admin only); suggested skills must be in the skill catalog."""
    entry = await service.create_entry(uow, actor, Catalog.loss_reasons, body)
    set_location(response, f"/v1/loss-reasons/{entry.code}")
    return LossReasonPublic.model_validate(entry)


@router.get("/loss-reasons/{code}", tags=["loss-reasons"], response_model=LossReasonPublic, responses=_ONE)
async def get_loss_reason(code: CodePath, actor: ActorDep, uow: UowDep, response: Response) -> LossReasonPublic:
    """One loss reason of the catalog."""
    entry = await service.get_entry(uow, actor, Catalog.loss_reasons, code)
    set_etag(response, entry.version)
    return LossReasonPublic.model_validate(entry)


@router.patch("/loss-reasons/{code}", tags=["loss-reasons"], response_model=LossReasonPublic, responses=_UPDATED)
async def update_loss_reason(
    code: CodePath, body: LossReasonUpdate, actor: ActorDep, uow: UowDep, if_match: IfMatchDep, response: Response
) -> LossReasonPublic:
    """Relabel, re-point or retire a loss reason (admin only)."""
    entry = await service.update_entry(uow, actor, Catalog.loss_reasons, code, body, if_match)
    set_etag(response, entry.version)
    return LossReasonPublic.model_validate(entry)
