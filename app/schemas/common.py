"""Shared HTTP contract pieces: strict request models, pages, references."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# NUL and lone surrogates cannot be stored as text (PostgreSQL refuses them), so
# they are invalid input rather than a server error.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _has_unstorable_text(value: Any) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_unstorable_text(k) or _has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable_text(v) for v in value)
    return False


class RequestModel(BaseModel):
    """A request body: unknown (and read-only) fields are refused, text must be storable."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        if _has_unstorable_text(data):
            raise ValueError("text must not contain NUL characters or unpaired surrogates")
        return data


def omitted(**kwargs: Any) -> Any:
    """A PATCH field: absent means "unchanged"; the spec shows no misleading null default."""

    def _drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(default=None, json_schema_extra=_drop_default, **kwargs)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Text that reaches SQL through a query or path parameter: NUL can never be stored or compared.
SafeText = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$"),
    Field(description="snake_case code, unique per organisation", examples=["negotiation"]),
]
ShortText = Annotated[str, StringConstraints(max_length=2000)]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page", examples=[None]
    )


class Ref(ResponseModel):
    id: uuid.UUID
    name: str
