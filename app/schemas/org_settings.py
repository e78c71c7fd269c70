from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StrictInt, WithJsonSchema, field_validator

from app.domain.deals import OPEN_STAGES, Stage
from app.domain.oidc import MAX_AUDIENCE_LENGTH, MAX_ISSUER_LENGTH
from app.schemas.common import RequestModel, ResponseModel, examples, omitted, trimmed

# Only open stages can be "late" (validated below); the schema lists them.
OpenStage = Annotated[Stage, WithJsonSchema({"type": "string", "enum": [stage.value for stage in OPEN_STAGES]})]


OidcIssuer = Annotated[
    trimmed(MAX_ISSUER_LENGTH, min_length=1), Field(examples=["https://login.example.com/realms/acme"])
]
OidcAudience = Annotated[trimmed(MAX_AUDIENCE_LENGTH, min_length=1), Field(examples=["dealcoach"])]


class SettingsUpdate(RequestModel):
    model_config = examples(
        {
            "review_due_days": 7,
            "late_stages": ["proposal", "negotiation"],
            "oidc_issuer": "https://login.acme.example/realms/acme",
            "oidc_audience": "dealcoach",
        }
    )

    max_improvements_per_observation: StrictInt = omitted(ge=1, le=10, examples=[3])
    review_due_days: StrictInt = omitted(ge=1, le=90, examples=[7])
    late_stages: list[OpenStage] = omitted(
        max_length=len(OPEN_STAGES),
        description="Open stages in which a manager's first involvement counts as late",
        examples=[["negotiation"]],
    )
    oidc_issuer: OidcIssuer | None = omitted(
        description="Sign-in with the organisation's identity provider (OpenID Connect): its issuer URL, "
        "exactly as its tokens' `iss`; its keys are found from `{issuer}/.well-known/openid-configuration`. "
        "A token it signs for `oidc_audience` acts as the organisation's active member with the token's "
        "`email` (`email_verified` not false). https only, unless the service runs with "
        "`DEALCOACH_OIDC_ALLOW_INSECURE=true` (422 `oidc_issuer_not_allowed`); one organisation per issuer "
        "(409 `oidc_issuer_taken`); null turns sign-in with tokens off"
    )
    oidc_audience: OidcAudience | None = omitted(
        description="The audience (`aud`) the identity provider's tokens must be for: the identifier the "
        "provider gives Dealcoach (a client id, or an API's identifier). Required while `oidc_issuer` is set "
        "(422 `validation_error`)"
    )

    @field_validator("late_stages")
    @classmethod
    def _open_and_unique(cls, stages: list[Stage]) -> list[Stage]:
        if any(stage not in OPEN_STAGES for stage in stages):
            raise ValueError("late stages must be open stages")
        return sorted(set(stages), key=OPEN_STAGES.index)


class SettingsPublic(ResponseModel):
    model_config = examples(
        {
            "max_improvements_per_observation": 3,
            "review_due_days": 7,
            "late_stages": ["proposal", "negotiation"],
            "oidc_issuer": "https://login.acme.example/realms/acme",
            "oidc_audience": "dealcoach",
            "version": 3,
            "updated_at": "2026-02-10T08:45:00Z",
        }
    )

    max_improvements_per_observation: int
    review_due_days: int
    late_stages: list[Stage]
    oidc_issuer: str | None = Field(
        description="The identity provider members sign in with (a token's `iss`); null: API keys only"
    )
    oidc_audience: str | None = Field(description="The audience (`aud`) its tokens must be for")
    version: int
    updated_at: dt.datetime = Field(description="When the settings last changed")
