from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.deps import ActorDep, Expansions, IdempotencyDeps, PageDep, RequiredIfMatchDep, UowDep
from app.domain import errors as de
from app.domain.strategy import SuggestionStatus
from app.errors import problem_responses
from app.http.responses import CONTENT_ETAG_HEADER, ETAG_HEADER, LOCATION_HEADER, set_etag, set_location
from app.http.routes import ApiRoute
from app.routers.expansion import expanded
from app.schemas.strategy import (
    StrategyPublic,
    StrategyUpdate,
    StrategyVersionPage,
    StrategyVersionPublic,
    SuggestionCreate,
    SuggestionDecision,
    SuggestionPage,
    SuggestionPublic,
)
from app.services import strategy as service

router = APIRouter(prefix="/v1", tags=["strategy"], route_class=ApiRoute)
_SUGGESTIONS = "/deals/{deal_id}/strategy/suggestions"
_DECISION = {
    "responses": problem_responses(404, de.OwnerDecides, de.SuggestionAlreadyDecided),
    "dependencies": IdempotencyDeps,
}


def render(view: service.StrategyView) -> StrategyPublic:
    return StrategyPublic(
        deal_id=view.deal_id,
        version=view.version,
        author_id=view.author_id,
        updated_at=view.updated_at,
        **view.document.to_json(),
    )


def render_version(view: service.StrategyView) -> StrategyVersionPublic:
    return StrategyVersionPublic(
        version=view.version, author_id=view.author_id, created_at=view.updated_at, document=view.document.to_json()
    )


@router.get(
    "/deals/{deal_id}/strategy",
    response_model=StrategyPublic,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404)},
)
async def get_strategy(
    deal_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    response: Response,
    expand: Expansions = None,
) -> StrategyPublic:
    """The deal's current strategy (version 0, empty, before the owner first writes it)."""
    view = await service.get_strategy(uow, actor, deal_id)
    set_etag(response, view.version)
    return await expanded(uow, actor, render(view), expand)


@router.put(
    "/deals/{deal_id}/strategy",
    response_model=StrategyPublic,
    responses={
        200: {"description": "The new version, or the current one when nothing changed", "headers": ETAG_HEADER},
        **problem_responses(
            404,
            412,
            428,
            de.Forbidden,
            de.StrategyOwnedBySeller,
            de.AssignmentExists,
            de.DealClosed,
            de.InvalidAssignee,
            de.OwnerNotAssignable,
            de.UnknownMember,
        ),
    },
)
async def put_strategy(
    deal_id: uuid.UUID,
    body: StrategyUpdate,
    actor: ActorDep,
    uow: UowDep,
    if_match: RequiredIfMatchDep,
    response: Response,
) -> StrategyPublic:
    """Replace the whole strategy (the deal's owner only), naming the version replaced in `If-Match`
    (428 without it); next steps assigned to others ask them for help."""
    view = await service.put_strategy(uow, actor, deal_id, body, if_match.versions, if_match_given=if_match.given)
    set_etag(response, view.version)
    return render(view)


@router.get("/deals/{deal_id}/strategy/versions", response_model=StrategyVersionPage, responses=problem_responses(404))
async def list_strategy_versions(
    deal_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    expand: Expansions = None,
) -> StrategyVersionPage:
    """Every written version of the strategy, oldest first (version 0, the empty document, is not listed)."""
    result = await service.list_versions(uow, actor, deal_id, page)
    items = [render_version(v) for v in result.items]
    return await expanded(uow, actor, StrategyVersionPage(items=items, next_cursor=result.next_cursor), expand)


@router.post(
    _SUGGESTIONS,
    status_code=status.HTTP_201_CREATED,
    response_model=SuggestionPublic,
    responses={201: {"headers": LOCATION_HEADER}, **problem_responses(404, de.Forbidden, de.DealClosed)},
    dependencies=IdempotencyDeps,
)
async def create_suggestion(
    deal_id: uuid.UUID, body: SuggestionCreate, actor: ActorDep, uow: UowDep, response: Response
) -> SuggestionPublic:
    """Suggest a change to one strategy section (the owner's managers, heads of sales, assigned coaches)."""
    suggestion = await service.create_suggestion(uow, actor, deal_id, body)
    set_location(response, f"/v1/deals/{deal_id}/strategy/suggestions/{suggestion.id}")
    return SuggestionPublic.model_validate(suggestion)


@router.get(_SUGGESTIONS, response_model=SuggestionPage, responses=problem_responses(404))
async def list_suggestions(
    deal_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    status: SuggestionStatus | None = None,
    expand: Expansions = None,
) -> SuggestionPage:
    """Suggestions made on the deal's strategy, oldest first."""
    result = await service.list_suggestions(uow, actor, deal_id, page, status)
    items = [SuggestionPublic.model_validate(s) for s in result.items]
    return await expanded(uow, actor, SuggestionPage(items=items, next_cursor=result.next_cursor), expand)


@router.get(
    _SUGGESTIONS + "/{suggestion_id}",
    response_model=SuggestionPublic,
    responses={200: {"headers": CONTENT_ETAG_HEADER}, **problem_responses(404)},
)
async def get_suggestion(
    deal_id: uuid.UUID,
    suggestion_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    expand: Expansions = None,
) -> SuggestionPublic:
    """One suggestion on the deal's strategy."""
    suggestion = await service.get_suggestion(uow, actor, deal_id, suggestion_id)
    return await expanded(uow, actor, SuggestionPublic.model_validate(suggestion), expand)


@router.post(_SUGGESTIONS + "/{suggestion_id}/accept", response_model=SuggestionPublic, **_DECISION)
async def accept_suggestion(
    deal_id: uuid.UUID, suggestion_id: uuid.UUID, actor: ActorDep, uow: UowDep, body: SuggestionDecision | None = None
) -> SuggestionPublic:
    """Accept a suggestion (the owner only); this records the decision and leaves the strategy to the owner."""
    note = body.note if body else None
    return SuggestionPublic.model_validate(await service.accept_suggestion(uow, actor, deal_id, suggestion_id, note))


@router.post(_SUGGESTIONS + "/{suggestion_id}/decline", response_model=SuggestionPublic, **_DECISION)
async def decline_suggestion(
    deal_id: uuid.UUID, suggestion_id: uuid.UUID, actor: ActorDep, uow: UowDep, body: SuggestionDecision | None = None
) -> SuggestionPublic:
    """Decline a suggestion (the owner only), optionally saying why."""
    note = body.note if body else None
    return SuggestionPublic.model_validate(await service.decline_suggestion(uow, actor, deal_id, suggestion_id, note))
