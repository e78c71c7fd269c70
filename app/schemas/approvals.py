from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field

from app.domain.approvals import ApprovalStatus, TermKind
from app.schemas import acme
from app.schemas.common import IsoDate, Page, RequestModel, ResponseModel, examples, omitted, trimmed
from app.schemas.expand import MemberId, Members

TermText = trimmed(2000, min_length=1)
TermValue = trimmed(200, min_length=1)
Note = trimmed(2000)
Reason = trimmed(5000, min_length=1)


class Term(RequestModel):
    model_config = examples(acme.PRICE_HOLD_TERM)

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
    model_config = examples(
        {
            "approver_id": acme.MIA_ID,
            "terms": [acme.PRICE_HOLD_TERM],
        }
    )

    approver_id: uuid.UUID = Field(description="A manager or head of sales above the deal's owner")
    terms: Terms


class ApprovalUpdate(RequestModel):
    """Accepted so an attempt is well-formed; approvals have no write path, so it is always refused."""

    model_config = examples({"note": "Extend the price hold to expansion orders"})

    terms: list[Term] | None = omitted(max_length=20)
    approver_id: uuid.UUID | None = omitted()
    note: Note | None = omitted()


class ApprovalDecision(RequestModel):
    model_config = examples({"note": "Approved for this renewal only"})

    note: Note | None = Field(default=None, examples=["Approved for this renewal only"])


class ApprovalRevocation(RequestModel):
    model_config = examples({"reason": "Finance withdrew the discount budget for Q4"})

    reason: Reason = Field(examples=["Finance withdrew the discount budget for Q4"])


class TermPublic(ResponseModel):
    model_config = examples(acme.PRICE_HOLD_TERM)

    kind: TermKind
    description: str
    value: str
    applies_to: str
    valid_until: dt.date | None


class ApprovalPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.APPROVAL_ID,
            "deal_id": acme.DEAL_ID,
            "requested_by": acme.SAM_ID,
            "approver_id": acme.MIA_ID,
            "terms": [acme.PRICE_HOLD_TERM],
            "status": "approved",
            "decision_note": "Approved for this renewal only",
            "decided_at": "2026-11-05T14:20:00Z",
            "relied_on_at": None,
            "revoked_at": None,
            "revoked_by": None,
            "revoke_reason": None,
            "version": 2,
            "created_at": "2026-11-05T10:00:00Z",
            "updated_at": "2026-11-05T14:20:00Z",
        }
    )

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
