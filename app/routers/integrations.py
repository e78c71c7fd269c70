from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.security import HTTPBasic

from app.deps import ActorDep, IfMatchDep, PageDep, UowDep
from app.domain import errors as de
from app.domain import salesforce
from app.domain.integrations import InboxOutcome, Provider, loss_reason_field
from app.errors import CODES_KEY, problem_responses, unsupported_media_type
from app.http.responses import ETAG_HEADER, set_etag
from app.http.routes import ApiRoute, any_query
from app.schemas.integrations import (
    SALESFORCE_OUTBOUND_MESSAGE_EXAMPLE,
    InboundBatchReceipt,
    InboundEventPage,
    InboundEventPublic,
    InboundReceipt,
    InboxProblem,
    IntegrationPublic,
    IntegrationUpdate,
)
from app.services import crm_inbox
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
            loss_reason_field=loss_reason_field(provider, None),
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
        loss_reason_field=loss_reason_field(provider, integration.loss_reason_field),
        member_id=integration.member_id,
        credentials_set=bool(integration.credentials),
        version=integration.version,
        updated_at=integration.updated_at,
    )


@router.get(
    "/integrations/{provider}",
    response_model=IntegrationPublic,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404, de.Forbidden)},
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
        **problem_responses(
            404, 412, de.Forbidden, de.AccountIdTaken, de.OwnerMustBeSeller, de.UnknownMember, de.UnknownLossReason
        ),
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
    responses=problem_responses(404, de.Forbidden),
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


class _DocumentedBasic(HTTPBasic):
    """Documents the Basic auth a Pipedrive webhook carries; the handler checks it itself (constant
    time), once it knows which integration's credentials to check it against."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


_pipedrive_basic = _DocumentedBasic(
    auto_error=False,
    scheme_name="PipedriveBasic",
    description="The Pipedrive integration's `credentials.username` and `credentials.password`, set as the "
    "webhook's `http_auth_user` and `http_auth_password` in Pipedrive",
)


@router.post(
    "/integrations/pipedrive/webhooks",
    response_model=InboundReceipt,
    dependencies=[Depends(_pipedrive_basic)],
    responses={
        200: {"description": "Stored (or stored before: `duplicate`); applied in the background"},
        **problem_responses(415, de.NotProviderFormat, de.InvalidSignature, auth=False),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PipedriveWebhook"}}},
        }
    },
)
@any_query
async def receive_pipedrive_webhook(
    request: Request,
    uow: UowDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> InboundReceipt | Response:
    """A Pipedrive webhooks v2 notification (`{meta, data, previous}`), routed by `meta.company_id` to
    the integration whose `account_id` it is and authenticated with its Basic credentials (401
    `invalid_signature` otherwise, nothing stored); stored once per `meta.id` and answered at once.
    Deal events (`create`, `change`, `delete`) are then applied by the inbox applier; other entities
    are stored as `ignored`. A body that is not Pipedrive's format answers 400 `malformed_payload`.
    The webhook URL may carry a query string of its own: it is not refused."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media != "application/json":
        return unsupported_media_type(request)
    receipt = await crm_inbox.receive_pipedrive(uow, await request.body(), authorization)
    _wake_applier(request, [receipt])
    return _receipt(receipt)


@router.post(
    "/integrations/hubspot/webhooks",
    response_model=InboundBatchReceipt,
    responses={
        200: {"description": "Stored (or stored before: `duplicate`); applied in the background"},
        **problem_responses(415, de.NotProviderFormat, de.InvalidSignature, auth=False),
    },
    openapi_extra={
        "parameters": [
            {
                "name": "X-HubSpot-Signature-v3",
                "in": "header",
                "required": True,
                "description": "base64(HMAC-SHA256(client_secret, method + URI + body + timestamp))",
                "schema": {"type": "string", "maxLength": 200},
            },
            {
                "name": "X-HubSpot-Request-Timestamp",
                "in": "header",
                "required": True,
                "description": "Epoch milliseconds; no older than five minutes",
                "schema": {"type": "string", "pattern": "^[0-9]{1,16}$", "maxLength": 16},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 100,
                        "items": {"$ref": "#/components/schemas/HubSpotEvent"},
                    }
                }
            },
        },
    },
)
@any_query
async def receive_hubspot_webhook(request: Request, uow: UowDep) -> InboundBatchReceipt | Response:
    """A HubSpot webhook batch (a JSON array of up to 100 events), signed with signature v3: base64
    HMAC-SHA256, keyed with the integration's `client_secret`, of method + the full request URI +
    raw body + `X-HubSpot-Request-Timestamp`, no older than five minutes; every `portalId` must be
    an enabled integration's `account_id` (401 `invalid_signature` otherwise, nothing stored). Each
    event is stored once per `portalId:eventId` and answered at once; deal events (`deal.creation`,
    `deal.propertyChange`, `deal.deletion`, by `subscriptionType` or `eventType`) are then applied
    by the inbox applier, which reads the deal from HubSpot's CRM API; other objects are stored as
    `ignored`. Over 100 events, or not HubSpot's format → 400 `malformed_payload`. The target URL
    may carry a query string of its own: it is not refused, and it is part of what is signed."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media != "application/json":
        return unsupported_media_type(request)
    signed = crm_inbox.SignedRequest(
        method=request.method,
        uri=_request_uri(request, request.app.state.settings.trust_forwarded_headers),
        body=await request.body(),
        signature=request.headers.get("x-hubspot-signature-v3"),
        timestamp=request.headers.get("x-hubspot-request-timestamp"),
    )
    receipts = await crm_inbox.receive_hubspot(uow, signed)
    _wake_applier(request, receipts)
    return InboundBatchReceipt(items=[_receipt(receipt) for receipt in receipts])


def _request_uri(request: Request, trust_forwarded: bool) -> str:
    """The URI the sender called, as received: scheme, host, raw path and query (a proxy's
    X-Forwarded-Proto and X-Forwarded-Host only when the service is configured to trust them)."""
    scheme = request.scope.get("scheme", "http")
    host = request.headers.get("host", "")
    if trust_forwarded:
        proto = (request.headers.get("x-forwarded-proto") or "").split(",")[0].strip()
        forwarded_host = (request.headers.get("x-forwarded-host") or "").split(",")[0].strip()
        scheme, host = proto or scheme, forwarded_host or host
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    path = raw_path.split(b"?", 1)[0].decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


def _wake_applier(request: Request, receipts: list[crm_inbox.Receipt]) -> None:
    applier = getattr(request.app.state, "inbox_applier", None)
    if applier is not None and any(not receipt.duplicate for receipt in receipts):
        applier.wake()


def _receipt(receipt: crm_inbox.Receipt) -> InboundReceipt:
    return InboundReceipt(
        id=receipt.id,
        provider_event_id=receipt.provider_event_id,
        outcome=receipt.outcome,
        duplicate=receipt.duplicate,
    )


_XML = {"schema": {"type": "string", "format": "xml"}}
_SALESFORCE_REFUSED = problem_responses(415, de.NotProviderFormat, de.InvalidSignature, auth=False)
# Salesforce reads SOAP: a message that is not an Outbound Message is answered a SOAP 1.1 fault (its
# `faultstring` shows as the delivery's failure reason in Salesforce), whose `detail` names the code.
_SALESFORCE_REFUSED[400] = {
    "description": "Not a Salesforce Outbound Message: malformed XML, a DTD or entity declaration, no "
    "`notifications` (a SOAP 1.1 fault, `malformed_payload` in its `detail`)",
    "content": {
        "text/xml": {**_XML, "example": salesforce.soap_fault("malformed_payload", "The body is not well-formed XML.")}
    },
    CODES_KEY: [de.NotProviderFormat.code],
}


@router.post(
    "/integrations/salesforce/outbound-messages",
    response_class=Response,
    responses={
        200: {
            "description": "Every notification is stored (or was before): Salesforce stops resending them",
            "content": {"text/xml": {**_XML, "example": salesforce.ACK}},
        },
        **_SALESFORCE_REFUSED,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {
                    # XML holds no NUL; the body limit (DEALCOACH_MAX_BODY_BYTES, 1 MiB by default) bounds it.
                    "schema": {"type": "string", "format": "xml", "maxLength": 1_048_576},
                    "example": SALESFORCE_OUTBOUND_MESSAGE_EXAMPLE,
                }
                for media in salesforce.MEDIA_TYPES
            },
        }
    },
)
@any_query
async def receive_salesforce_outbound_message(
    request: Request,
    uow: UowDep,
    token: Annotated[
        str | None,
        Query(max_length=500, description="The Salesforce integration's `credentials.token`, in the endpoint URL"),
    ] = None,
) -> Response:
    """A Salesforce Outbound Message (SOAP 1.1 `notifications` of Opportunity sObjects), routed by
    `OrganizationId` to the integration whose `account_id` it is and authenticated by the endpoint
    URL's `token` (401 `invalid_signature` otherwise, nothing stored). Each `Notification` is stored
    once per notification `Id` and the message is answered at once with a `notificationsResponse`
    whose `Ack` is `true`; a resent message is acknowledged again and stored once. Opportunities
    are then applied by the inbox applier (`StageName` through the stage map, `IsClosed`/`IsWon` for
    won and lost, `OwnerId` through the owner map, the lost reason from the integration's
    `loss_reason_field`); other sObjects are stored as `ignored`. The XML is read with DTDs and
    entities refused; a body that is not an Outbound Message answers 400 with a SOAP fault."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in salesforce.MEDIA_TYPES:
        return unsupported_media_type(request, "a SOAP 1.1 message with `Content-Type: text/xml`")
    try:
        receipts = await crm_inbox.receive_salesforce(uow, await request.body(), token)
    except de.NotProviderFormat as exc:
        return Response(salesforce.soap_fault(exc.code, exc.detail), status_code=400, media_type="text/xml")
    applier = getattr(request.app.state, "inbox_applier", None)
    if applier is not None and not all(receipt.duplicate for receipt in receipts):
        applier.wake()
    return Response(salesforce.ACK, media_type="text/xml")
