from __future__ import annotations

from pydantic import Field

from app.schemas import acme
from app.schemas.common import ResponseModel, examples
from app.schemas.expand import MemberId, Members


class ManagerCoaching(ResponseModel):
    model_config = examples(acme.MIA_COACHING)

    manager_id: MemberId
    deals_involved: int = Field(description="Deals whose first involvement by this manager falls in the period")
    late_first_involvement_share: float | None = Field(
        ge=0, le=1, description="Share of those first involvements that came in a late stage", examples=[0.25]
    )
    calls_attended: int = Field(description="Held calls in the period the manager attended")
    takeovers: int = Field(description="Takeovers by the manager on calls held in the period")
    takeovers_per_call: float | None = Field(description="takeovers ÷ calls_attended", examples=[0.1])
    observations_given: int = Field(description="Observations the manager wrote in the period")
    strengths_per_improvement: float | None = Field(
        description="Strengths named ÷ improvements named, over those observations", examples=[1.5]
    )
    debrief_completion_rate: float | None = Field(
        ge=0, le=1, description="Acknowledged ÷ shared observations: debriefs the seller completed", examples=[0.8]
    )
    reviews_completed: int = Field(description="Closed-lost reviews of losses in the period the manager completed")
    review_completion_rate: float | None = Field(
        ge=0, le=1, description="Completed ÷ all reviews of losses in the period with this reviewer", examples=[0.9]
    )
    median_days_to_review: float | None = Field(
        description="Median days from the loss to the completed review", examples=[3.0]
    )


class CoachingAnalytics(ResponseModel):
    model_config = examples({"managers": [acme.MIA_COACHING]})

    managers: list[ManagerCoaching] = Field(description="One entry per manager and head of sales in scope, by id")
    members: Members = None
