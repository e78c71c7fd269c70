"""Webhook endpoints and deliveries, and the payload a receiver gets."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import Field, StrictBool, StringConstraints

from app.domain.webhooks import EVENT_TYPES, FAMILIES, MAX_EVENT_TYPES, DeliveryStatus, DisabledReason
from app.schemas import acme
from app.schemas.common import Page, RequestModel, ResponseModel, examples, omitted, trimmed

WebhookUrl = Annotated[
    trimmed(2048, min_length=1),
    Field(
        description="An absolute https URL whose host resolves to public addresses",
        examples=["https://hooks.example.com/dealcoach"],
    ),
]
# Every pattern a subscription accepts: a closed set, so the schema lists it.
EVENT_PATTERNS = ["*", *sorted(f"{family}.*" for family in FAMILIES), *sorted(EVENT_TYPES)]
EventPattern = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    Field(
        description="An event type (`deal.stage_changed`), a family (`deal.*`) or `*`",
        examples=["deal.*"],
        json_schema_extra={"enum": EVENT_PATTERNS},
    ),
]
EventPatterns = Annotated[list[EventPattern], Field(min_length=1, max_length=MAX_EVENT_TYPES)]
# `whsec_` and canonical base64 of 24 to 64 bytes: n whole 4-character groups hold 3n bytes, a
# last group `xxx=` two more, `xx==` one more.
_GROUP = "[A-Za-z0-9+/]{4}"
SECRET_PATTERN = (
    f"^whsec_(?:(?:{_GROUP}){{8,20}}(?:{_GROUP}|[A-Za-z0-9+/]{{3}}=|[A-Za-z0-9+/]{{2}}==)?"
    f"|(?:{_GROUP}){{21}}[A-Za-z0-9+/]{{2}}==)$"
)
Secret = Annotated[
    str,
    StringConstraints(pattern=SECRET_PATTERN, max_length=94),
    Field(
        description="`whsec_` and the base64 of 24 to 64 random bytes; generated when absent",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ),
]
Description = trimmed(500)


class WebhookEndpointCreate(RequestModel):
    model_config = examples(
        {
            "url": "https://hooks.acme.example/dealcoach",
            "event_types": ["deal.*", "review.completed"],
            "description": "Deal updates for the revenue dashboard",
        }
    )

    url: WebhookUrl
    event_types: EventPatterns
    description: Description | None = None
    secret: Secret | None = None


class WebhookEndpointUpdate(RequestModel):
    model_config = examples({"event_types": ["deal.*", "review.*"]})

    url: WebhookUrl = omitted()
    event_types: EventPatterns = omitted()
    description: Description | None = omitted()
    active: StrictBool = omitted(description="Re-activating clears `disabled_reason`")


class WebhookEndpointPublic(ResponseModel):
    model_config = examples(acme.WEBHOOK_ENDPOINT)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    disabled_reason: DisabledReason | None = Field(description="Why the endpoint was switched off, when it was")
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookEndpointWithSecret(WebhookEndpointPublic):
    model_config = examples({**acme.WEBHOOK_ENDPOINT, "secret": acme.WEBHOOK_SECRET})

    secret: str = Field(description="Shown only when created and when rotated: store it now")


class WebhookEndpointPage(Page[WebhookEndpointPublic]):
    pass


class WebhookDeliveryPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.DELIVERY_ID,
            "endpoint_id": acme.ENDPOINT_ID,
            "event_id": acme.EVENT_ID,
            "event_type": "deal.stage_changed",
            "deal_id": acme.DEAL_ID,
            "status": "succeeded",
            "attempts": 1,
            "next_attempt_at": None,
            "last_attempt_at": "2026-11-05T16:05:01Z",
            "last_status_code": 204,
            "last_error": None,
            "created_at": acme.DEAL_UPDATED,
        }
    )

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="Also the `webhook-id` header of every attempt")
    event_type: str
    deal_id: uuid.UUID | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime | None = Field(description="When a pending delivery is tried next")
    last_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime


class WebhookDeliveryPage(Page[WebhookDeliveryPublic]):
    pass


class WebhookPayload(ResponseModel):
    """The body of every delivery (`POST` to the endpoint's URL)."""

    model_config = examples(
        {"type": "deal.stage_changed", "timestamp": acme.DEAL_UPDATED, "data": acme.STAGE_CHANGED_EVENT}
    )

    type: str = Field(description="The event type", examples=["deal.stage_changed"])
    timestamp: dt.datetime = Field(description="When the event happened")
    data: dict[str, Any] = Field(description="The event exactly as `GET /v1/events` shows it")
