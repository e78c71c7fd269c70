from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StrictInt, WithJsonSchema, field_validator

from app.domain.deals import OPEN_STAGES, Stage
from app.schemas.common import RequestModel, ResponseModel, omitted

# Only open stages can be "late" (validated below); the schema lists them.
OpenStage = Annotated[Stage, WithJsonSchema({"type": "string", "enum": [stage.value for stage in OPEN_STAGES]})]


class SettingsUpdate(RequestModel):
    max_improvements_per_observation: StrictInt = omitted(ge=1, le=10, examples=[3])
    review_due_days: StrictInt = omitted(ge=1, le=90, examples=[7])
    late_stages: list[OpenStage] = omitted(
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
