from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from app.domain.calls import CallRole, InterventionKind, ObservationStatus
from app.schemas import acme
from app.schemas.common import (
    AlsoInSchema,
    Page,
    RequestModel,
    ResponseModel,
    UtcDatetime,
    examples,
    omitted,
    required_in_schema,
    trimmed,
)
from app.schemas.expand import MemberId, Members

Text = trimmed(2000)
LongText = trimmed(5000)
Line = trimmed(2000, min_length=1)

SkillCode = Annotated[str, Field(max_length=64, description="A code from the skill catalog", examples=["discovery"])]


# --- calls ---------------------------------------------------------------------


class Attendee(RequestModel):
    model_config = examples(acme.MIA_ATTENDEE)

    member_id: uuid.UUID = Field(description="An active seller, manager or head of sales")
    call_role: CallRole = Field(
        description="The deal's owner is the one `lead`; managers attend as `observer` or `contributor`",
        examples=["observer"],
    )
    agreed_part: Text | None = Field(
        default=None,
        description="The part agreed with the seller before the call; required for managers and heads of sales",
        examples=["Observe discovery questions"],
    )

    @field_validator("agreed_part")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


def _one_entry_per_member(attendees: list[Attendee]) -> list[Attendee]:
    seen: set[uuid.UUID] = set()
    for attendee in attendees:
        if attendee.member_id in seen:
            raise ValueError(f"member {attendee.member_id} is listed more than once")
        seen.add(attendee.member_id)
    return attendees


Attendees = Annotated[list[Attendee], Field(max_length=50), AfterValidator(_one_entry_per_member)]


class CallCreate(RequestModel):
    model_config = examples(
        {
            "scheduled_at": acme.CALL_AT,
            "purpose": "Discovery with the CFO",
            "attendees": [
                {"member_id": acme.SAM_ID, "call_role": "lead"},
                acme.MIA_ATTENDEE,
            ],
        }
    )

    scheduled_at: UtcDatetime = Field(examples=["2026-11-03T14:00:00Z"])
    purpose: Text | None = Field(default=None, examples=["Discovery with the CFO"])
    attendees: Attendees = Field(description="Everyone attending, each once; the deal's owner leads")


class CallUpdate(RequestModel):
    """Fields to change (by the lead); omitted fields stay as they are."""

    model_config = examples({"held_at": acme.CALL_HELD, "outcome": "CFO agreed to a pilot"})

    scheduled_at: UtcDatetime = omitted()
    purpose: Text | None = omitted()
    attendees: Attendees = omitted(description="Replaces the whole list; fixed once the call was held")
    held_at: UtcDatetime | None = omitted(
        description="When the call took place, not in the future (422 held_in_future; 5 minutes of clock skew "
        "allowed); recorded once (attendees may change in the same request)"
    )
    outcome: LongText | None = omitted(examples=["CFO agreed to a pilot"])


class AttendeePublic(ResponseModel):
    model_config = examples(acme.MIA_ATTENDEE)

    member_id: MemberId
    call_role: CallRole
    agreed_part: str | None


class CallPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.CALL_ID,
            "deal_id": acme.DEAL_ID,
            "lead_id": acme.SAM_ID,
            "scheduled_at": acme.CALL_AT,
            "purpose": "Discovery with the CFO",
            "attendees": [
                {"member_id": acme.SAM_ID, "call_role": "lead", "agreed_part": None},
                acme.MIA_ATTENDEE,
            ],
            "held_at": acme.CALL_HELD,
            "outcome": "CFO agreed to a pilot",
            "version": 2,
            "created_at": "2026-10-28T10:00:00Z",
            "updated_at": "2026-11-03T15:10:00Z",
        }
    )

    id: uuid.UUID
    deal_id: uuid.UUID
    lead_id: MemberId = Field(description="The deal's owner, who leads the call")
    scheduled_at: dt.datetime
    purpose: str | None
    attendees: list[AttendeePublic]
    held_at: dt.datetime | None
    outcome: str | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    members: Members = None


class CallPage(Page[CallPublic]):
    members: Members = None


# --- interventions ----------------------------------------------------------------


class InterventionCreate(RequestModel):
    model_config = examples(
        {
            "member_id": acme.MIA_ID,
            "kind": "answered_question",
            "note": "Answered the security question on SSO",
        }
    )

    member_id: uuid.UUID = Field(description="The attendee who intervened")
    kind: InterventionKind = Field(examples=["answered_question"])
    note: Text | None = Field(default=None, examples=["Answered the security question on SSO"])


class InterventionPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.INTERVENTION_ID,
            "call_id": acme.CALL_ID,
            "deal_id": acme.DEAL_ID,
            "member_id": acme.MIA_ID,
            "kind": "answered_question",
            "note": "Answered the security question on SSO",
            "is_takeover": False,
            "recorded_by": acme.SAM_ID,
            "created_at": "2026-11-03T15:12:00Z",
        }
    )

    id: uuid.UUID
    call_id: uuid.UUID
    deal_id: uuid.UUID
    member_id: MemberId
    kind: InterventionKind
    note: str | None
    is_takeover: bool = Field(description="`took_over` by anyone but the lead")
    recorded_by: MemberId
    created_at: dt.datetime
    members: Members = None


class InterventionPage(Page[InterventionPublic]):
    members: Members = None


# --- observations ---------------------------------------------------------------------


class Strength(RequestModel):
    model_config = examples(acme.DISCOVERY_STRENGTH)

    skill_code: SkillCode
    note: Line = Field(examples=["Open questions uncovered the month-end pain"])


class Improvement(RequestModel):
    model_config = examples(acme.NEGOTIATION_IMPROVEMENT)

    skill_code: SkillCode
    note: Line = Field(examples=["Pricing came up before the value was agreed"])
    suggestion: Text | None = Field(default=None, examples=["Confirm the business case before quoting"])


# At least one strength: the schema says so, the rule answers observation_needs_strength.
Strengths = Annotated[
    list[Strength],
    Field(
        max_length=20,
        description="What went well; at least one (observation_needs_strength)",
    ),
    AlsoInSchema({"minItems": 1}),
]
Improvements = Annotated[
    list[Improvement],
    Field(
        max_length=20,
        description="A few areas to improve: at most the organisation's max_improvements_per_observation",
    ),
]


class ObservationCreate(RequestModel):
    model_config = examples(
        {
            "strengths": [acme.DISCOVERY_STRENGTH],
            "improvements": [acme.NEGOTIATION_IMPROVEMENT],
            "summary": "Strong discovery with the CFO; hold pricing until the business case is agreed",
        },
        then=required_in_schema("strengths"),
    )

    strengths: Strengths = Field(default_factory=list)
    improvements: Improvements = Field(default_factory=list)
    summary: LongText | None = None


class ObservationUpdate(RequestModel):
    """Fields to change in a draft (by the observer); omitted fields stay as they are."""

    model_config = examples(
        {"summary": "Strong discovery with the CFO; hold pricing until the business case is agreed"}
    )

    strengths: Strengths = omitted()
    improvements: Improvements = omitted()
    summary: LongText | None = omitted()


class CommitmentItem(RequestModel):
    model_config = examples(acme.COMMITMENT_ITEM)

    text: Line = Field(examples=["Confirm the business case before pricing"])
    skill_code: SkillCode | None = Field(
        default=None, description="One of the observation's improvements that this commitment answers"
    )


class ObservationAcknowledgement(RequestModel):
    model_config = examples(
        {
            "reflection": "I quoted too early; next time I confirm value first",
            "commitments": [
                "Agree a next step before the call ends",
                acme.COMMITMENT_ITEM,
            ],
        }
    )

    reflection: trimmed(5000, min_length=1) = Field(
        description="The seller's own reflection on the call",
        examples=["I quoted too early; next time I confirm value first"],
    )
    commitments: list[Line | CommitmentItem] = Field(
        default_factory=list,
        max_length=20,
        description="What the seller will do differently: each becomes a commitment of the seller, tracked "
        "until done; a string, or `{text, skill_code}` naming the improvement it answers",
        examples=[
            ["Agree a next step before the call ends", {"text": "Confirm value first", "skill_code": "negotiation"}]
        ],
    )


class StrengthPublic(ResponseModel):
    model_config = examples(acme.DISCOVERY_STRENGTH)

    skill_code: str
    note: str


class ImprovementPublic(ResponseModel):
    model_config = examples(acme.NEGOTIATION_IMPROVEMENT)

    skill_code: str
    note: str
    suggestion: str | None


class ObservationPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.OBSERVATION_ID,
            "call_id": acme.CALL_ID,
            "deal_id": acme.DEAL_ID,
            "observer_id": acme.MIA_ID,
            "seller_id": acme.SAM_ID,
            "strengths": [acme.DISCOVERY_STRENGTH],
            "improvements": [acme.NEGOTIATION_IMPROVEMENT],
            "summary": "Strong discovery with the CFO; hold pricing until the business case is agreed",
            "status": "acknowledged",
            "shared_at": acme.SHARED_AT,
            "acknowledged_at": acme.ACKNOWLEDGED_AT,
            "reflection": "I quoted too early; next time I confirm value first",
            "commitments": ["Agree a next step before the call ends", "Confirm the business case before pricing"],
            "version": 3,
            "created_at": "2026-11-03T16:00:00Z",
            "updated_at": acme.ACKNOWLEDGED_AT,
        }
    )

    id: uuid.UUID
    call_id: uuid.UUID
    deal_id: uuid.UUID
    observer_id: MemberId
    seller_id: MemberId = Field(description="The seller who led the call")
    strengths: list[StrengthPublic]
    improvements: list[ImprovementPublic]
    summary: str | None
    status: ObservationStatus
    shared_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    reflection: str | None
    commitments: list[str]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    members: Members = None


class ObservationPage(Page[ObservationPublic]):
    members: Members = None
