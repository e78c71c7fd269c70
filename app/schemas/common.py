"""Shared HTTP contract pieces: strict request models, pages, references."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

# NUL and lone surrogates cannot be stored as text (PostgreSQL refuses them), so
# they are invalid input rather than a server error.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _unstorable(text: str) -> bool:
    # Most text is ASCII: two C-speed checks spare it the regex.
    return "\x00" in text or (not text.isascii() and _UNSTORABLE.search(text) is not None)


# API.md Limits: JSON nested deeper than this, or a list (or object) with more items, is refused
# before any field is validated, so a hostile body costs one walk, not a pydantic error per item.
MAX_JSON_DEPTH = 32
MAX_JSON_ITEMS = 1000


def _inspect_json(data: Any) -> tuple[str, str] | None:
    """Why a parsed JSON body cannot be accepted, or None: one iterative walk (no recursion,
    whatever the depth) over containers and strings."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        if isinstance(value, str):
            if _unstorable(value):
                return _UNSTORABLE_TEXT
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                return _TOO_DEEP
            if len(value) > MAX_JSON_ITEMS:
                return _TOO_MANY
            if isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(key, str) and _unstorable(key):
                        return _UNSTORABLE_TEXT
                    push((item, depth + 1))
            else:
                for item in value:
                    push((item, depth + 1))
    return None


# Validation context for a part of a request body already inspected whole: not walked again.
JSON_INSPECTED = "json_inspected"

_UNSTORABLE_TEXT = ("unstorable_text", "Text must not contain NUL characters or unpaired surrogates")
_TOO_DEEP = ("json_too_deep", f"JSON must not be nested deeper than {MAX_JSON_DEPTH} levels")
_TOO_MANY = ("json_too_many_items", f"A JSON list or object must not have more than {MAX_JSON_ITEMS} items")


class RequestModel(BaseModel):
    """A request body: unknown (and read-only) fields are refused, text must be storable, and
    the JSON is bounded in depth and size."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _bounded_storable_json(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context is not None and info.context.get(JSON_INSPECTED):
            return data  # a part of a body that was inspected whole (the records of a batch)
        problem = _inspect_json(data)
        if problem is not None:
            raise PydanticCustomError(*problem)
        return data


def omitted(**kwargs: Any) -> Any:
    """A PATCH field: absent means "unchanged"; the spec shows no misleading null default."""

    def _drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(default=None, json_schema_extra=_drop_default, **kwargs)


# Dates and timestamps arrive as ISO 8601 text only. Pydantic's lax mode would also read a number
# (or a string of digits: every query value is a string) as seconds since 1970, so `0` became
# 1970-01-01; these types refuse anything but the ISO shape before pydantic parses it.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _iso_date_text(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value  # built in Python, not read off the wire
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise PydanticCustomError("iso_date", "Input should be an ISO 8601 date string, YYYY-MM-DD")


def _iso_datetime_text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value  # built in Python, not read off the wire
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        return value
    raise PydanticCustomError(
        "iso_datetime", "Input should be an RFC 3339 timestamp string with an offset, e.g. 2026-11-03T14:00:00Z"
    )


def _in_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("the time is out of range in UTC") from None


# THE date of every request: `YYYY-MM-DD` text (query strings and bodies alike).
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_text)]
# THE timestamp of every request: RFC 3339 text with an offset (a time without one is refused),
# stored and answered in UTC whatever offset the client sent.
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime_text), AfterValidator(_in_utc)]


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Text that reaches SQL through a query or path parameter: NUL can never be stored or compared.
SafeText = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Code = Annotated[
    str,
    StringConstraints(max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$"),
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
