from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema

from app.domain.assignments import AssignmentRole, AssignmentStatus
from app.schemas import acme
from app.schemas.common import Page, RequestModel, ResponseModel, examples, trimmed
from app.schemas.expand import MemberId, Members


class AssignmentCreate(RequestModel):
    model_config = examples(
        {
            "member_id": acme.MIA_ID,
            "role": "coach",
            "purpose": "Help me prepare the pricing conversation",
        }
    )

    member_id: uuid.UUID = Field(description="The member asked or offered to take the role")
    # `owner` is read, to be refused with its own code, but it is no role one may send.
    role: Annotated[
        AssignmentRole | Literal["owner"],
        WithJsonSchema({"type": "string", "enum": [role.value for role in AssignmentRole]}),
    ] = Field(description="The role on the deal; `owner` is refused with owner_not_assignable", examples=["coach"])
    purpose: trimmed(2000) | None = Field(default=None, examples=["Help me prepare the pricing conversation"])


class AssignmentPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.ASSIGNMENT_ID,
            "deal_id": acme.DEAL_ID,
            "member_id": acme.MIA_ID,
            "role": "coach",
            "purpose": "Help me prepare the pricing conversation",
            "status": "active",
            "requested_by": acme.SAM_ID,
            "late_involvement": False,
            "version": 2,
            "created_at": "2026-10-20T09:00:00Z",
            "decided_at": "2026-10-20T11:30:00Z",
            "ended_at": None,
        }
    )

    id: uuid.UUID
    deal_id: uuid.UUID
    member_id: MemberId
    role: AssignmentRole
    purpose: str | None
    status: AssignmentStatus
    requested_by: MemberId
    late_involvement: bool = Field(
        description="The member is a manager or head of sales whose first involvement came in a late stage"
    )
    version: int
    created_at: dt.datetime
    decided_at: dt.datetime | None
    ended_at: dt.datetime | None
    members: Members = None


class AssignmentPage(Page[AssignmentPublic]):
    members: Members = None
