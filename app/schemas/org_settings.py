from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator

from app.domain.deals import OPEN_STAGES, Stage
from app.schemas.common import RequestModel, ResponseModel, omitted

OpenStage = Stage  # validated below: only open stages can be "late"


class SettingsUpdate(RequestModel):
    max_improvements_per_observation: int = omitted(ge=1, le=10, examples=[3])
    review_due_days: int = omitted(ge=1, le=90, examples=[7])
    late_stages: list[Stage] = omitted(
        max_length=len(OPEN_STAGES),
        description="Open stages in which a manager's first involvement counts as late",
        examples=[["negotiation"]],
    )

    @field_validator("late_stages")
    @classmethod
    def _open_and_unique(cls, stages: list[Stage]) -> list[Stage]:
        if any(stage not in OPEN_STAGES for stage in stages):
            raise ValueError("late stages must be open stages")
        return sorted(set(stages), key=OPEN_STAGES.index)


class SettingsPublic(ResponseModel):
    max_improvements_per_observation: int
    review_due_days: int
    late_stages: list[Stage]
    version: int
    updated_at: dt.datetime = Field(description="When the settings last changed")
