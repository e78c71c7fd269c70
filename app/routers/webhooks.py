from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from app.deps import ActorDep, IdempotencyDeps, IfMatchDep, PageDep, UowDep
from app.domain import errors as de
from app.domain.webhooks import DeliveryStatus
from app.errors import problem_responses
from app.http.responses import ETAG_HEADER, LOCATION_HEADER, NO_STORE_HEADER, set_etag, set_location, set_no_store
from app.http.routes import ApiRoute
from app.schemas.webhooks import (
    WebhookDeliveryPage,
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointPage,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookPayload,
)
from app.services import webhooks as service

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=ApiRoute)


def _allow_private(request: Request) -> bool:
    return bool(request.app.state.settings.webhooks_allow_private)


def _with_secret(found: service.EndpointWithSecret) -> WebhookEndpointWithSecret:
    public = WebhookEndpointPublic.model_validate(found.endpoint)
    return WebhookEndpointWithSecret(**public.model_dump(), secret=found.secret)


@router.post(
    "/webhook-endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointWithSecret,
    responses={
        201: {"headers": {**LOCATION_HEADER, **NO_STORE_HEADER}},
        **problem_responses(de.Forbidden, de.UnknownEventType, de.WebhookUrlNotAllowed),
    },
    dependencies=IdempotencyDeps,
)
async def create_webhook_endpoint(
    body: WebhookEndpointCreate, actor: ActorDep, uow: UowDep, request: Request, response: Response
) -> WebhookEndpointWithSecret:
    """Register an endpoint for some of the feed's events (admin only); its secret is shown only here."""
    created = await service.create_endpoint(uow, actor, body, allow_private=_allow_private(request))
    set_location(response, f"/v1/webhook-endpoints/{created.endpoint.id}")
    set_etag(response, created.endpoint.version)
    set_no_store(response)
    return _with_secret(created)


@router.get("/webhook-endpoints", response_model=WebhookEndpointPage, responses=problem_responses(de.Forbidden))
async def list_webhook_endpoints(actor: ActorDep, uow: UowDep, page: PageDep) -> WebhookEndpointPage:
    """The organisation's webhook endpoints, oldest first (admin only)."""
    result = await service.list_endpoints(uow, actor, page)
    items = [WebhookEndpointPublic.model_validate(e) for e in result.items]
    return WebhookEndpointPage(items=items, next_cursor=result.next_cursor)


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointPublic,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404, de.Forbidden)},
)
async def get_webhook_endpoint(
    endpoint_id: uuid.UUID, actor: ActorDep, uow: UowDep, response: Response
) -> WebhookEndpointPublic:
    """One webhook endpoint, without its secret (admin only)."""
    endpoint = await service.get_endpoint(uow, actor, endpoint_id)
    set_etag(response, endpoint.version)
    return WebhookEndpointPublic.model_validate(endpoint)


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointPublic,
    responses={
        200: {"headers": ETAG_HEADER},
        **problem_responses(404, 412, de.Forbidden, de.UnknownEventType, de.WebhookUrlNotAllowed),
    },
)
async def update_webhook_endpoint(
    endpoint_id: uuid.UUID,
    body: WebhookEndpointUpdate,
    actor: ActorDep,
    uow: UowDep,
    if_match: IfMatchDep,
    request: Request,
    response: Response,
) -> WebhookEndpointPublic:
    """Change the URL, the event types, the description, or switch the endpoint off and on
    (re-activating clears `disabled_reason`)."""
    endpoint = await service.update_endpoint(
        uow, actor, endpoint_id, body, if_match, allow_private=_allow_private(request)
    )
    set_etag(response, endpoint.version)
    return WebhookEndpointPublic.model_validate(endpoint)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, de.Forbidden),
)
async def delete_webhook_endpoint(endpoint_id: uuid.UUID, actor: ActorDep, uow: UowDep) -> Response:
    """Remove an endpoint; its pending deliveries are never sent."""
    await service.delete_endpoint(uow, actor, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=WebhookEndpointWithSecret,
    responses={200: {"headers": NO_STORE_HEADER}, **problem_responses(404, de.Forbidden)},
    dependencies=IdempotencyDeps,
)
async def rotate_webhook_secret(
    endpoint_id: uuid.UUID, actor: ActorDep, uow: UowDep, response: Response
) -> WebhookEndpointWithSecret:
    """A new signing secret, shown once; the previous one keeps signing beside it for 24 h."""
    rotated = await service.rotate_secret(uow, actor, endpoint_id)
    set_etag(response, rotated.endpoint.version)
    set_no_store(response)
    return _with_secret(rotated)


@router.post(
    "/webhook-endpoints/{endpoint_id}/ping",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryPublic,
    responses=problem_responses(404, de.Forbidden),
    dependencies=IdempotencyDeps,
)
async def ping_webhook_endpoint(endpoint_id: uuid.UUID, actor: ActorDep, uow: UowDep) -> WebhookDeliveryPublic:
    """Queue a `webhook.ping` for this endpoint alone, to check it receives and verifies."""
    return WebhookDeliveryPublic.model_validate(await service.ping(uow, actor, endpoint_id))


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=WebhookDeliveryPage,
    responses=problem_responses(404, de.Forbidden),
)
async def list_webhook_deliveries(
    endpoint_id: uuid.UUID, actor: ActorDep, uow: UowDep, page: PageDep, status: DeliveryStatus | None = None
) -> WebhookDeliveryPage:
    """An endpoint's deliveries, newest first, optionally by status (admin only)."""
    result = await service.list_deliveries(uow, actor, endpoint_id, page, status)
    items = [WebhookDeliveryPublic.model_validate(d) for d in result.items]
    return WebhookDeliveryPage(items=items, next_cursor=result.next_cursor)


@router.post(
    "/webhook-deliveries/{delivery_id}/retry",
    response_model=WebhookDeliveryPublic,
    responses=problem_responses(404, de.Forbidden, de.DeliveryNotFailed),
    dependencies=IdempotencyDeps,
)
async def retry_webhook_delivery(delivery_id: uuid.UUID, actor: ActorDep, uow: UowDep) -> WebhookDeliveryPublic:
    """Send a failed delivery again, now (409 `delivery_not_failed` for any other)."""
    return WebhookDeliveryPublic.model_validate(await service.retry_delivery(uow, actor, delivery_id))


# Documented under the spec's `webhooks` (OpenAPI 3.1): what a receiver gets.
payload_docs = APIRouter()


@payload_docs.post(
    "dealcoach-event",
    tags=["webhooks"],
    operation_id="dealcoach_event",
    summary="An event, delivered to your endpoint",
    status_code=status.HTTP_200_OK,
    response_class=Response,
    responses={200: {"description": "Any 2xx within 15 s acknowledges the delivery"}},
)
def dealcoach_event(
    body: WebhookPayload,
    webhook_id: Annotated[str, Header(alias="webhook-id", description="The event id; the same on every retry")],
    webhook_timestamp: Annotated[str, Header(alias="webhook-timestamp", description="Unix seconds of this attempt")],
    webhook_signature: Annotated[
        str,
        Header(alias="webhook-signature", description="`v1,<signature>`; two, space-separated, after a rotation"),
    ],
) -> None:
    """Every delivery: `POST <your url>` with this JSON body and the Standard Webhooks headers
    `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (unix seconds of
    the attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
    keyed with your secret's bytes; two signatures, space-separated, for 24 h after a rotation).
    Answer 2xx within 15 s; anything else is retried (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
    20 h, 24 h, ±10 %), `410 Gone` switches the endpoint off. One deal's events reach an
    endpoint in `seq` order."""
