from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field, StrictBool

from app.schemas import acme
from app.schemas.common import Code, Label, Page, RequestModel, ResponseModel, examples, omitted


class SkillCreate(RequestModel):
    model_config = examples({"code": "negotiation", "label": "Negotiation"})

    code: Code
    label: Label = Field(examples=["Negotiation"])


class SkillUpdate(RequestModel):
    model_config = examples({"label": "Negotiation and pricing"})

    label: Label = omitted()
    active: StrictBool = omitted(description="Inactive entries stay on old records but cannot be used anew")


class SkillPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.SKILL_ID,
            "code": "negotiation",
            "label": "Negotiation",
            "active": True,
            "version": 1,
            "created_at": acme.ORG_CREATED,
            "updated_at": acme.ORG_CREATED,
        }
    )

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
    model_config = examples({"code": "price", "label": "Price", "suggested_skills": ["negotiation", "closing"]})

    code: Code = Field(examples=["price"])
    label: Label = Field(examples=["Price"])
    suggested_skills: list[Code] = Field(
        default_factory=list,
        max_length=20,
        description="Skill codes a loss for this reason points at",
        examples=[["negotiation", "closing"]],
    )


class LossReasonUpdate(RequestModel):
    model_config = examples({"suggested_skills": ["negotiation"]})

    label: Label = omitted()
    suggested_skills: list[Code] = omitted(max_length=20)
    active: StrictBool = omitted(description="Inactive reasons stay on old records but cannot be used anew")


class LossReasonPublic(SkillPublic):
    model_config = examples(
        {
            "id": acme.LOSS_REASON_ID,
            "code": "price",
            "label": "Price",
            "active": True,
            "suggested_skills": ["negotiation", "closing"],
            "version": 1,
            "created_at": acme.ORG_CREATED,
            "updated_at": acme.ORG_CREATED,
        }
    )

    suggested_skills: list[str]


class LossReasonPage(Page[LossReasonPublic]):
    pass
