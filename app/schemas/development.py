"""Seller development: commitments, the skill profile, the call brief, the team's skills, the
feedback digest."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import ConfigDict, Field

from app.domain.development import CommitmentSource, CommitmentStatus, Trend
from app.schemas import acme
from app.schemas.common import Examples, Page, RequestModel, ResponseModel, examples, trimmed
from app.schemas.expand import MemberId, Members

Note = trimmed(2000)


# --- commitments ---------------------------------------------------------------------


class CommitmentClose(RequestModel):
    model_config = examples({"note": "Rehearsed with enablement"})

    note: Note | None = Field(
        default=None, description="What was done, or why it was dropped", examples=["Rehearsed with enablement"]
    )


class CommitmentPublic(ResponseModel):
    model_config = examples(acme.COMMITMENT)

    id: uuid.UUID
    member_id: MemberId = Field(description="The member who committed")
    source: CommitmentSource = Field(
        description="`observation`: a commitment in a debrief; `closed_lost_review`: a completed review's action item"
    )
    source_id: uuid.UUID = Field(description="The observation or closed-lost review it came from")
    deal_id: uuid.UUID
    text: str
    skill_code: str | None = Field(description="The observation's improvement it answers, when the seller named one")
    due_on: dt.date | None = Field(description="The action item's due date")
    status: CommitmentStatus
    overdue: bool = Field(description="Open with `due_on` before today (UTC)")
    note: str | None = Field(description="The member's note on completing or dropping it")
    version: int
    created_at: dt.datetime
    closed_at: dt.datetime | None = Field(description="When it was completed or dropped")
    members: Members = None


class CommitmentPage(Page[CommitmentPublic]):
    members: Members = None


# --- the profile -------------------------------------------------------------------------


class SkillProfile(ResponseModel):
    model_config = examples(acme.NEGOTIATION_PROFILE)

    skill_code: str
    strengths: int = Field(description="Shared observations of the member's calls recognising the skill")
    improvements: int = Field(description="Shared observations of the member's calls asking to improve it")
    loss_gaps: int = Field(description="Completed reviews of the member's losses naming it as a skill gap")
    last_recognised_at: dt.datetime | None = Field(description="The latest of those recognitions in the window")
    last_improvement_at: dt.datetime | None = Field(description="The latest of those improvements in the window")
    trend: Trend = Field(description="See the operation's description for the exact rule")


class CommitmentCounts(ResponseModel):
    model_config = examples(acme.COMMITMENT_COUNTS)

    open: int
    done: int
    dropped: int
    overdue: int = Field(description="Of the open ones, those due before today (UTC)")


class DebriefCounts(ResponseModel):
    model_config = examples(acme.DEBRIEF_COUNTS)

    shared: int = Field(description="Observations of the member's calls shared in the window, acknowledged or not")
    acknowledged: int
    pending: int = Field(description="Shared but not yet acknowledged")


class ReviewCounts(ResponseModel):
    model_config = examples(acme.REVIEW_COUNTS)

    lost: int = Field(description="The member's deals lost in the window (not since reopened)")
    completed: int = Field(description="Of those, the ones whose review is completed")


class DevelopmentProfile(ResponseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra=Examples(
            (
                {
                    "member_id": acme.SAM_ID,
                    "from": "2026-08-08",
                    "to": "2026-11-05",
                    "skills": [
                        {
                            "skill_code": "discovery",
                            "strengths": 4,
                            "improvements": 0,
                            "loss_gaps": 0,
                            "last_recognised_at": acme.SHARED_AT,
                            "last_improvement_at": None,
                            "trend": "improving",
                        },
                        acme.NEGOTIATION_PROFILE,
                    ],
                    "commitments": acme.COMMITMENT_COUNTS,
                    "debriefs": acme.DEBRIEF_COUNTS,
                    "reviews": acme.REVIEW_COUNTS,
                },
            )
        ),
    )

    member_id: MemberId
    date_from: dt.date = Field(alias="from", description="First day of the window (UTC)")
    date_to: dt.date = Field(alias="to", description="Last day of the window (UTC), inclusive")
    skills: list[SkillProfile] = Field(description="Every skill mentioned in the window, by skill code")
    commitments: CommitmentCounts = Field(description="Commitments the member made in the window, by status today")
    debriefs: DebriefCounts
    reviews: ReviewCounts
    members: Members = None


# --- the brief ------------------------------------------------------------------------------


class FocusSkill(ResponseModel):
    model_config = examples(acme.FOCUS_SKILL)

    skill_code: str
    improvements: int = Field(description="Shared observations of the seller's calls asking to improve it, ever")
    last_improvement_at: dt.datetime


class LastObservation(ResponseModel):
    model_config = examples(acme.LAST_OBSERVATION)

    id: uuid.UUID
    summary: str | None
    acknowledged_at: dt.datetime


class CallBrief(ResponseModel):
    model_config = examples(
        {
            "call_id": acme.CALL_ID,
            "seller_id": acme.SAM_ID,
            "open_commitments": [acme.COMMITMENT],
            "focus_skills": [acme.FOCUS_SKILL],
            "last_observation": acme.LAST_OBSERVATION,
        }
    )

    call_id: uuid.UUID
    seller_id: MemberId = Field(description="The call's lead, whose development the brief is about")
    open_commitments: list[CommitmentPublic] = Field(
        description="The seller's open commitments, soonest due first (at most 50)"
    )
    focus_skills: list[FocusSkill] = Field(
        description="The (at most 3) skills the seller was most recently asked to improve"
    )
    last_observation: LastObservation | None = Field(
        description="The seller's most recently acknowledged observation, on any deal"
    )
    members: Members = None


# --- the team -------------------------------------------------------------------------------


class SkillFigures(ResponseModel):
    model_config = examples(acme.NEGOTIATION_FIGURES)

    skill_code: str
    strengths: int
    improvements: int
    loss_gaps: int


class SellerSkills(ResponseModel):
    model_config = examples(acme.SAM_SKILLS)

    member_id: MemberId
    skills: list[SkillFigures] = Field(description="By skill code")


class TeamSkills(ResponseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra=Examples(
            (
                {
                    "from": "2026-08-08",
                    "to": "2026-11-05",
                    "sellers": [acme.SAM_SKILLS],
                    "totals": [
                        {"skill_code": "negotiation", "strengths": 3, "improvements": 7, "loss_gaps": 2},
                        {"skill_code": "discovery", "strengths": 11, "improvements": 2, "loss_gaps": 0},
                    ],
                },
            )
        ),
    )

    date_from: dt.date = Field(alias="from", description="First day of the window (UTC)")
    date_to: dt.date = Field(alias="to", description="Last day of the window (UTC), inclusive")
    sellers: list[SellerSkills] = Field(description="Sellers in scope with at least one mention in the window, by id")
    totals: list[SkillFigures] = Field(
        description="Per skill over the sellers in scope; the most needed first (improvements + loss gaps)"
    )
    members: Members = None


# --- the feedback digest ------------------------------------------------------------------


class FeedbackItem(ResponseModel):
    model_config = examples(
        {
            "review_id": acme.REVIEW_ID,
            "deal_id": acme.LOST_DEAL_ID,
            "loss_reason_code": "price",
            "competitor": "Initech",
            "completed_at": "2026-11-20T16:45:00Z",
            "feedback": "Usage-based pricing would have matched Initech's offer",
        }
    )

    review_id: uuid.UUID
    deal_id: uuid.UUID
    loss_reason_code: str
    competitor: str | None
    completed_at: dt.datetime
    feedback: str = Field(description="The review's `product_feedback` or `enablement_feedback`")


class FeedbackPage(Page[FeedbackItem]):
    pass
