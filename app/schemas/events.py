from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import Field

from app.schemas import acme
from app.schemas.common import Page, ResponseModel, examples
from app.schemas.expand import MemberId, Members


class EventPublic(ResponseModel):
    model_config = examples(acme.STAGE_CHANGED_EVENT)

    id: uuid.UUID
    seq: int = Field(
        description="Grows monotonically per organisation; a number may be skipped (a write that rolled back)",
        examples=[42],
    )
    type: str = Field(examples=["member.created"])
    actor_id: MemberId | None = Field(description="The member who made the change; null for system changes")
    deal_id: uuid.UUID | None
    subject_type: str = Field(examples=["member"])
    subject_id: uuid.UUID
    data: dict[str, Any]
    occurred_at: dt.datetime


class EventPage(Page[EventPublic]):
    members: Members = None
