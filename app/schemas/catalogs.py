from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field, StrictBool

from app.schemas.common import Code, Label, Page, RequestModel, ResponseModel, omitted


class SkillCreate(RequestModel):
    code: Code
    label: Label = Field(examples=["Negotiation"])


class SkillUpdate(RequestModel):
    label: Label = omitted()
    active: StrictBool = omitted(description="Inactive entries stay on old records but cannot be used anew")


class SkillPublic(ResponseModel):
    id: uuid.UUID
    code: str
    label: str
    active: bool
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class SkillPage(Page[SkillPublic]):
    pass


class LossReasonCreate(RequestModel):
    code: Code = Field(examples=["price"])
    label: Label = Field(examples=["Price"])
    suggested_skills: list[Code] = Field(
        default_factory=list,
        max_length=20,
        description="Skill codes a loss for this reason points at",
        examples=[["negotiation", "closing"]],
    )


class LossReasonUpdate(RequestModel):
    label: Label = omitted()
    suggested_skills: list[Code] = omitted(max_length=20)
    active: StrictBool = omitted(description="Inactive reasons stay on old records but cannot be used anew")


class LossReasonPublic(SkillPublic):
    suggested_skills: list[str]


class LossReasonPage(Page[LossReasonPublic]):
    pass
