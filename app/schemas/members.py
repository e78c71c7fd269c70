from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool, StringConstraints

from app.domain.members import MemberRole
from app.schemas import acme
from app.schemas.common import TOKEN_CHAR, Name, Page, Ref, RequestModel, ResponseModel, examples, omitted
from app.schemas.expand import MemberId, Members

# No whitespace or control character anywhere, so an address is taken as sent or refused, never
# trimmed into another one.
Email = Annotated[
    str,
    StringConstraints(max_length=320, pattern=rf"^[^@{TOKEN_CHAR}]+@[^@{TOKEN_CHAR}]+\.[^@{TOKEN_CHAR}]+$"),
    AfterValidator(str.lower),
    Field(examples=["sam.seller@example.com"], description="Unique per organisation, case-insensitive"),
]


class MemberCreate(RequestModel):
    model_config = examples(
        {
            "name": "Sam Seller",
            "email": "sam.seller@acme.example",
            "role": "seller",
            "manager_id": acme.MIA_ID,
            "active": True,
        }
    )

    name: Name = Field(examples=["Sam Seller"])
    email: Email
    role: MemberRole = Field(examples=["seller"])
    manager_id: uuid.UUID | None = Field(
        default=None, description="The manager or head_of_sales this member reports to"
    )
    active: StrictBool = True


class MemberUpdate(RequestModel):
    """Fields to change; omitted fields stay as they are."""

    model_config = examples({"manager_id": acme.HANNA_ID})

    # Non-nullable fields default to None only to mean "omitted": an explicit null is refused.
    name: Name = omitted()
    email: Email = omitted()
    role: MemberRole = omitted()
    manager_id: uuid.UUID | None = omitted(description="null removes the manager")
    active: StrictBool = omitted()


class MemberPublic(ResponseModel):
    model_config = examples(acme.SAM_MEMBER)

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    email: str
    role: MemberRole
    manager_id: MemberId | None
    active: bool
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    members: Members = None


class MemberPage(Page[MemberPublic]):
    members: Members = None


class MePublic(MemberPublic):
    model_config = examples(
        {**acme.SAM_MEMBER, "organization": {"id": acme.ORG_ID, "name": "Acme"}, "api_key_id": acme.KEY_ID}
    )

    organization: Ref
    api_key_id: uuid.UUID | None = Field(
        description="The key this request was made with; null when signed in with a token from the "
        "organisation's identity provider"
    )
