from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from app.schemas import acme
from app.schemas.common import Page, RequestModel, ResponseModel, examples, trimmed
from app.schemas.expand import MemberId, Members


class ApiKeyCreate(RequestModel):
    model_config = examples({"label": "HubSpot sync"})

    label: trimmed(200) | None = Field(default=None, examples=["HubSpot sync"])


class ApiKeyPublic(ResponseModel):
    model_config = examples(acme.HUBSPOT_SYNC_KEY)

    id: uuid.UUID
    member_id: MemberId
    prefix: str = Field(examples=["dc_1a2b3c4d"], description="The key's first characters, to recognise it")
    label: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    members: Members = None


class ApiKeyCreated(ApiKeyPublic):
    model_config = examples({**acme.HUBSPOT_SYNC_KEY, "api_key": acme.API_KEY})

    api_key: str = Field(
        description="The secret key. It is shown only in this response; store it now.",
        examples=["dc_1a2b3c4d_0cRkJ6m2Yw8dY3WzZl2oQ9uXb4e1sT7aVnH5pK3jLq0"],
    )


class ApiKeyPage(Page[ApiKeyPublic]):
    members: Members = None
