from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field, model_validator

from app.domain.strategy import NextStepStatus, StakeholderRole, Stance, StrategySection, SuggestionStatus
from app.schemas import acme
from app.schemas.common import IsoDate, Name, Page, RequestModel, ResponseModel, examples, trimmed
from app.schemas.expand import MemberId, Members

LongText = trimmed(5000)
Line = trimmed(2000, min_length=1)
Title = trimmed(200)


class Stakeholder(RequestModel):
    model_config = examples(acme.CFO_STAKEHOLDER)

    name: Name = Field(examples=["Dana Whitfield"])
    title: Title | None = Field(default=None, examples=["CFO"])
    role: StakeholderRole = Field(examples=["economic_buyer"])
    stance: Stance = Stance.unknown


class NextStep(RequestModel):
    model_config = examples(acme.NEXT_STEP)

    id: uuid.UUID | None = Field(
        default=None, description="Keep the id you read; a new step without one gets an id from the server"
    )
    description: Line = Field(examples=["Walk the CFO through the business case"])
    assignee_id: uuid.UUID | None = Field(
        default=None,
        description="An active member; anyone but the owner is asked for help with a `requested` assignment",
    )
    due_date: IsoDate | None = Field(default=None, examples=["2026-11-30"])
    status: NextStepStatus = NextStepStatus.open


class StrategyUpdate(RequestModel):
    """The whole document: PUT replaces it, so an omitted section is cleared."""

    model_config = examples(acme.STRATEGY)

    customer_objectives: LongText | None = Field(default=None, examples=["Cut month-end close from 9 days to 4"])
    decision_process: LongText | None = None
    stakeholders: list[Stakeholder] = Field(default_factory=list, max_length=50)
    competition: LongText | None = None
    value_hypothesis: LongText | None = None
    risks: list[Line] = Field(default_factory=list, max_length=50)
    next_steps: list[NextStep] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _unique_step_ids(self) -> StrategyUpdate:
        ids = [step.id for step in self.next_steps if step.id is not None]
        if len(ids) != len(set(ids)):
            raise ValueError("next_steps ids must be unique")
        return self


class StakeholderPublic(ResponseModel):
    model_config = examples(acme.CFO_STAKEHOLDER)

    name: str
    title: str | None
    role: StakeholderRole
    stance: Stance


class NextStepPublic(ResponseModel):
    model_config = examples(acme.NEXT_STEP)

    id: uuid.UUID
    description: str
    assignee_id: MemberId | None
    due_date: dt.date | None
    status: NextStepStatus


class StrategyDocument(ResponseModel):
    model_config = examples(acme.STRATEGY)

    customer_objectives: str | None
    decision_process: str | None
    stakeholders: list[StakeholderPublic]
    competition: str | None
    value_hypothesis: str | None
    risks: list[str]
    next_steps: list[NextStepPublic]


class StrategyPublic(StrategyDocument):
    model_config = examples(
        {
            **acme.STRATEGY,
            "deal_id": acme.DEAL_ID,
            "version": 3,
            "author_id": acme.SAM_ID,
            "updated_at": "2026-11-02T15:10:00Z",
        }
    )

    deal_id: uuid.UUID
    version: int = Field(description="0 before the first write")
    author_id: MemberId | None = Field(description="The deal's owner, who wrote this version; null at version 0")
    updated_at: dt.datetime | None = Field(description="When this version was written; null at version 0")
    members: Members = None


class StrategyVersionPublic(ResponseModel):
    model_config = examples(
        {"version": 3, "author_id": acme.SAM_ID, "created_at": "2026-11-02T15:10:00Z", "document": acme.STRATEGY}
    )

    version: int
    author_id: MemberId
    created_at: dt.datetime
    document: StrategyDocument


class StrategyVersionPage(Page[StrategyVersionPublic]):
    members: Members = None


class SuggestionCreate(RequestModel):
    model_config = examples(
        {"section": "stakeholders", "body": "Procurement joins late at Globex; add them to the stakeholders now"}
    )

    section: StrategySection = Field(description="The strategy section the suggestion is about", examples=["risks"])
    body: trimmed(5000, min_length=1) = Field(
        examples=["Procurement joins late at Globex; add them to the stakeholders now"]
    )


class SuggestionDecision(RequestModel):
    model_config = examples({"note": "Good catch, I'll add procurement"})

    note: trimmed(2000) | None = Field(default=None, examples=["Good catch, I'll add procurement"])


class SuggestionPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.SUGGESTION_ID,
            "deal_id": acme.DEAL_ID,
            "author_id": acme.MIA_ID,
            "section": "stakeholders",
            "body": "Procurement joins late at Globex; add them to the stakeholders now",
            "status": "accepted",
            "late_involvement": False,
            "decided_at": "2026-11-02T15:05:00Z",
            "note": "Good catch, I'll add procurement",
            "created_at": "2026-11-02T11:40:00Z",
        }
    )

    id: uuid.UUID
    deal_id: uuid.UUID
    author_id: MemberId
    section: StrategySection
    body: str
    status: SuggestionStatus
    late_involvement: bool = Field(
        description="The author is a manager or head of sales whose first involvement came in a late stage"
    )
    decided_at: dt.datetime | None
    note: str | None
    created_at: dt.datetime
    members: Members = None


class SuggestionPage(Page[SuggestionPublic]):
    members: Members = None
