from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StringConstraints, field_validator

from app.domain.reviews import ReviewStatus, parse_iso_week
from app.schemas import acme
from app.schemas.common import Code, IsoDate, Page, RequestModel, ResponseModel, examples, omitted, trimmed
from app.schemas.deals import MoneyPublic
from app.schemas.expand import MemberId, Members

LongText = trimmed(5000)
Line = trimmed(2000, min_length=1)
Competitor = trimmed(200)
IsoWeek = Annotated[
    str,
    # Years 0001 to 9999, weeks 01 to 53 (week 53 exists only in long years: parse_iso_week says so).
    StringConstraints(
        max_length=8, pattern=r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-W(0[1-9]|[1-4][0-9]|5[0-3])$"
    ),
    AfterValidator(parse_iso_week),
    Field(description="An ISO 8601 week", examples=["2026-W47"]),
]


class ActionItem(RequestModel):
    model_config = examples(acme.ACTION_ITEM)

    description: Line = Field(examples=["Rehearse the pricing conversation with enablement"])
    assignee_id: uuid.UUID | None = Field(default=None, description="An active member of the organisation")
    due_date: IsoDate | None = Field(default=None, examples=["2026-12-15"])


class ReviewUpdate(RequestModel):
    """Fields to change; omitted fields stay as they are. The reviewer writes every field but
    `seller_reflection`, which only the seller writes (403 not_the_reviewer either way)."""

    model_config = examples(
        {
            "loss_reason_confirmed": True,
            "competitor": "Initech",
            "root_cause": "We never reached the economic buyer",
            "lessons": ["Multi-thread before the proposal"],
            "skill_gaps": ["negotiation"],
            "action_items": [acme.ACTION_ITEM],
        }
    )

    loss_reason_code: Code = omitted(description="A code from the loss-reason catalog (may correct the deal's)")
    loss_reason_confirmed: StrictBool = omitted(description="The reviewer confirms the loss reason with the seller")
    competitor: Competitor | None = omitted(examples=["Initech"])
    root_cause: LongText | None = omitted(examples=["We never reached the economic buyer"])
    what_went_well: LongText | None = omitted()
    lessons: list[Line] = omitted(max_length=50, examples=[["Multi-thread before the proposal"]])
    skill_gaps: list[Code] = omitted(
        max_length=20, description="Skill codes from the catalog", examples=[["negotiation"]]
    )
    product_feedback: LongText | None = omitted()
    enablement_feedback: LongText | None = omitted()
    action_items: list[ActionItem] = omitted(max_length=50)
    seller_reflection: LongText | None = omitted(description="Written by the seller only")

    @field_validator("skill_gaps")
    @classmethod
    def _unique_skills(cls, codes: list[str]) -> list[str]:
        return list(dict.fromkeys(codes))


class LeadershipNoteCreate(RequestModel):
    model_config = examples({"note": "Good depth on root cause; push the product feedback to the roadmap review"})

    note: trimmed(5000, min_length=1) = Field(
        examples=["Good depth on root cause; push the product feedback to the roadmap review"]
    )


class LeadershipNotePublic(ResponseModel):
    model_config = examples(acme.LEADERSHIP_NOTE)

    id: uuid.UUID
    review_id: uuid.UUID
    author_id: MemberId
    note: str
    created_at: dt.datetime


class ActionItemPublic(ResponseModel):
    model_config = examples(acme.ACTION_ITEM)

    description: str
    assignee_id: MemberId | None
    due_date: dt.date | None


class ReviewPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.REVIEW_ID,
            "deal_id": acme.LOST_DEAL_ID,
            "owner_id": acme.SAM_ID,
            "reviewer_id": acme.MIA_ID,
            "status": "completed",
            "deal_reopened": False,
            "closed_at": acme.LOST_AT,
            "due_on": acme.REVIEW_DUE,
            "overdue": False,
            "suggested_skills": ["negotiation", "closing"],
            "loss_reason_code": "price",
            "loss_reason_confirmed": True,
            "competitor": "Initech",
            "root_cause": "We never reached the economic buyer",
            "what_went_well": "Fast, clear technical evaluation",
            "lessons": ["Multi-thread before the proposal"],
            "skill_gaps": ["negotiation"],
            "product_feedback": "Usage-based pricing would have matched Initech's offer",
            "enablement_feedback": None,
            "action_items": [acme.ACTION_ITEM],
            "seller_reflection": "I let procurement set the agenda; I will bring the CFO in earlier",
            "leadership_notes": [acme.LEADERSHIP_NOTE],
            "completed_at": "2026-11-20T16:45:00Z",
            "version": 5,
            "created_at": acme.LOST_AT,
            "updated_at": "2026-11-20T16:45:00Z",
        }
    )

    id: uuid.UUID
    deal_id: uuid.UUID
    owner_id: MemberId = Field(description="The seller who owned the deal when it was lost")
    reviewer_id: MemberId | None = Field(
        description="The owner's manager at the loss (a head of sales when the owner had none)"
    )
    status: ReviewStatus
    deal_reopened: bool = Field(description="The deal was reopened after this loss")
    closed_at: dt.datetime
    due_on: dt.date
    overdue: bool = Field(description="Not completed and today (UTC) is past due_on")
    suggested_skills: list[str] = Field(description="Skills the loss reason points at")
    loss_reason_code: str
    loss_reason_confirmed: bool
    competitor: str | None
    root_cause: str | None
    what_went_well: str | None
    lessons: list[str]
    skill_gaps: list[str]
    product_feedback: str | None
    enablement_feedback: str | None
    action_items: list[ActionItemPublic]
    seller_reflection: str | None
    leadership_notes: list[LeadershipNotePublic]
    completed_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    members: Members = None


class ReviewPage(Page[ReviewPublic]):
    members: Members = None


class WeeklyReview(ResponseModel):
    model_config = examples(acme.WEEKLY_REVIEW)

    id: uuid.UUID
    deal_id: uuid.UUID
    deal_name: str
    owner_id: MemberId
    amount: MoneyPublic | None
    status: ReviewStatus
    due_on: dt.date
    overdue: bool


class WeeklyGroup(ResponseModel):
    model_config = examples(acme.WEEKLY_GROUP)

    reviewer_id: MemberId | None
    pending: int
    completed: int
    overdue: int
    lost_amounts: list[MoneyPublic] = Field(description="The week's lost amounts, one sum per currency")
    reviews: list[WeeklyReview]


class WeeklyReviews(ResponseModel):
    model_config = examples({"week": "2026-W47", "groups": [acme.WEEKLY_GROUP]})

    week: str = Field(examples=["2026-W47"])
    groups: list[WeeklyGroup]
    members: Members = None


@dataclass(frozen=True, slots=True)
class ReviewFilters:
    """The review list's query parameters, already validated by the router."""

    status: ReviewStatus | None = None
    reviewer_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    week: str | None = None
    closed_from: dt.date | None = None
    closed_to: dt.date | None = None
