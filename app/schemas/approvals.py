from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field

from app.domain.approvals import ApprovalStatus, TermKind
from app.schemas.common import IsoDate, Page, RequestModel, ResponseModel, omitted, trimmed
from app.schemas.expand import MemberId, Members

TermText = trimmed(2000, min_length=1)
TermValue = trimmed(200, min_length=1)
Note = trimmed(2000)
Reason = trimmed(5000, min_length=1)


class Term(RequestModel):
    kind: TermKind = Field(examples=["price_hold"])
    description: TermText = Field(examples=["Hold the 2026 list price for the Globex renewal"])
    value: TermValue = Field(
        description="The value signed off, as written (`15%`, `EUR 48,000`, `net 60`)", examples=["EUR 48,000 / year"]
    )
    applies_to: TermText = Field(
        description="Exactly what the term covers, e.g. whether a price hold also covers expansion orders",
        examples=["The renewal only; expansion orders are priced at list"],
    )
    valid_until: IsoDate | None = Field(default=None, examples=["2026-12-31"])


Terms = Annotated[list[Term], Field(min_length=1, max_length=20)]


class ApprovalCreate(RequestModel):
    approver_id: uuid.UUID = Field(description="A manager or head of sales above the deal's owner")
    terms: Terms


class ApprovalUpdate(RequestModel):
    """Accepted so an attempt is well-formed; approvals have no write path, so it is always refused."""

    terms: list[Term] | None = omitted(max_length=20)
    approver_id: uuid.UUID | None = omitted()
    note: Note | None = omitted()


class ApprovalDecision(RequestModel):
    note: Note | None = Field(default=None, examples=["Approved for this renewal only"])


class ApprovalRevocation(RequestModel):
    reason: Reason = Field(examples=["Finance withdrew the discount budget for Q4"])


class TermPublic(ResponseModel):
    kind: TermKind
    description: str
    value: str
    applies_to: str
    valid_until: dt.date | None


class ApprovalPublic(ResponseModel):
    id: uuid.UUID
    deal_id: uuid.UUID
    requested_by: MemberId
    approver_id: MemberId
    terms: list[TermPublic]
    status: ApprovalStatus
    decision_note: str | None
    decided_at: dt.datetime | None
    relied_on_at: dt.datetime | None = Field(
        description="When the owner recorded that an offer relying on this approval went to the customer"
    )
    revoked_at: dt.datetime | None
    revoked_by: MemberId | None
    revoke_reason: str | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    members: Members = None


class ApprovalPage(Page[ApprovalPublic]):
    members: Members = None
