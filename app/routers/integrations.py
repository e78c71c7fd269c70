from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.deps import ActorDep, IfMatchDep, PageDep, UowDep
from app.domain.integrations import InboxOutcome, Provider
from app.errors import problem_responses
from app.http.responses import ETAG_HEADER, set_etag
from app.http.routes import ApiRoute
from app.schemas.integrations import (
    InboundEventPage,
    InboundEventPublic,
    InboxProblem,
    IntegrationPublic,
    IntegrationUpdate,
)
from app.services import integrations as service

router = APIRouter(prefix="/v1", tags=["integrations"], route_class=ApiRoute)


def render(provider: Provider, integration: Any) -> IntegrationPublic:
    """The configuration as the API shows it: the credentials only as whether they are set."""
    if integration is None:
        return IntegrationPublic(
            provider=provider,
            enabled=False,
            account_id=None,
            stage_map={},
            owner_map={},
            loss_reason_map={},
            default_currency=None,
            member_id=None,
            credentials_set=False,
            version=0,
            updated_at=None,
        )
    return IntegrationPublic(
        provider=provider,
        enabled=integration.enabled,
        account_id=integration.account_id,
        stage_map=integration.stage_map,
        owner_map=integration.owner_map,
        loss_reason_map=integration.loss_reason_map,
        default_currency=integration.default_currency,
        member_id=integration.member_id,
        credentials_set=bool(integration.credentials),
        version=integration.version,
        updated_at=integration.updated_at,
    )


@router.get(
    "/integrations/{provider}",
    response_model=IntegrationPublic,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(403, 404)},
)
async def get_integration(provider: Provider, actor: ActorDep, uow: UowDep, response: Response) -> IntegrationPublic:
    """The organisation's integration with this CRM (version 0, disabled, before it is first saved);
    credentials are never shown, only whether they are set."""
    integration = await service.get_integration(uow, actor, provider)
    view = render(provider, integration)
    set_etag(response, view.version)
    return view


@router.put(
    "/integrations/{provider}",
    response_model=IntegrationPublic,
    responses={
        200: {"description": "The saved configuration (unchanged when nothing changed)", "headers": ETAG_HEADER},
        **problem_responses(403, 404, 409, 412, 422),
    },
)
async def put_integration(
    provider: Provider, body: IntegrationUpdate, actor: ActorDep, uow: UowDep, if_match: IfMatchDep, response: Response
) -> IntegrationPublic:
    """Configure the integration with this CRM (admin): the account whose events route here, the
    credentials that prove they come from it, and how its stages, users and lost reasons map to
    ours. Owners map only to sellers (422 `owner_must_be_seller`, `unknown_member`), lost reasons to
    catalog codes (422 `unknown_loss_reason`); an account another organisation uses → 409
    `account_id_taken`. The first save creates the integration's own `integration` member."""
    integration = await service.put_integration(uow, actor, provider, body, if_match)
    view = render(provider, integration)
    set_etag(response, view.version)
    return view


@router.get(
    "/integrations/{provider}/events",
    response_model=InboundEventPage,
    responses=problem_responses(403, 404, 422),
)
async def list_integration_events(
    provider: Provider,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    outcome: Annotated[InboxOutcome | None, Query(description="Only events with this outcome")] = None,
) -> InboundEventPage:
    """The events this CRM sent (the inbox), newest first, with what became of each (admin)."""
    result = await service.list_events(uow, actor, provider, page, outcome)
    return InboundEventPage(
        items=[
            InboundEventPublic(
                id=row.id,
                provider_event_id=row.provider_event_id,
                received_at=row.received_at,
                action=row.action,
                object_type=row.object_type,
                object_id=row.object_id,
                provider_timestamp=row.provider_timestamp,
                outcome=row.outcome,
                problem=None if row.problem is None else InboxProblem.model_validate(row.problem),
                deal_id=row.deal_id,
            )
            for row in result.items
        ],
        next_cursor=result.next_cursor,
    )
