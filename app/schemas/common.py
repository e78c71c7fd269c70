"""Shared HTTP contract pieces: strict request models, pages, references."""

from __future__ import annotations

import copy
import datetime as dt
import re
import typing
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
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
    return None if _fine_json(data) else _first_json_problem(data)


def _fine_json(data: Any) -> bool:
    """Whether _first_json_problem would find nothing, the common case, found faster: the same
    checks, but the strings are gathered and checked together (a batch of 500 records holds some
    5,000), not one by one in the walk's order, which decides the problem reported."""
    texts: list[str] = []
    keep = texts.append
    stack: list[tuple[Any, int]] = [(data, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        if isinstance(value, str):
            keep(value)
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_JSON_DEPTH or len(value) > MAX_JSON_ITEMS:
            return False
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, str):
                keep(item)
            elif isinstance(item, (dict, list)):
                push((item, depth + 1))
        if isinstance(value, dict):
            texts.extend(key for key in value if isinstance(key, str))
    # A NUL or a lone surrogate in one string is one in them all joined (code points never merge).
    return not _unstorable("".join(texts))


def _first_json_problem(data: Any) -> tuple[str, str] | None:
    """The first problem of a parsed JSON body in the order of one walk over it, or None."""
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


# What the schema says of the text _inspect_json refuses: no string of a request body holds NUL.
NO_NUL = r"^[^\x00]*$"
# The characters str.strip() removes, spelt out: `\s` means other sets in ECMA-262 (the schema's
# regex dialect), in Python's re and in pydantic's Rust engine (they differ on U+0085, U+001C-U+001F
# and U+FEFF), and a fuzzer finds every such difference.
WHITESPACE = r"\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Text that is trimmed and must not end up empty: a character other than whitespace, and no NUL.
NOT_BLANK = rf"^[^\x00]*[^\x00{WHITESPACE}][^\x00]*$"
# A character of a token (an email's parts, an external id): no whitespace, control character or BOM.
TOKEN_CHAR = rf"\x00-\x1f\x7f-\x9f\ufeff{WHITESPACE}"


def _storable_text(schema: dict[str, Any], model: type) -> None:
    """Declare NO_NUL on every string of a request body that no pattern, format or enum bounds
    already (those never admit NUL), so that clients and fuzzers see the rule the model enforces."""
    for node in schema.get("properties", {}).values():
        _declare_no_nul(node)


def _declare_no_nul(node: Any) -> None:
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not node.keys() & {"pattern", "format", "enum", "const"}:
        node["pattern"] = NO_NUL
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key, []):
            _declare_no_nul(sub)
    for key in ("items", "additionalProperties"):
        _declare_no_nul(node.get(key))


def required_in_schema(*names: str) -> Any:
    """A request model's ``json_schema_extra``: these fields are required in the schema, though
    the model reads their absence as empty so that a rule answers it with its own problem code."""

    def extra(schema: dict[str, Any], model: type) -> None:
        _storable_text(schema, model)
        required = schema.setdefault("required", [])
        required.extend(name for name in names if name not in required)

    return extra


@dataclass(frozen=True, eq=False)
class Examples:
    """A model's ``json_schema_extra``: realistic values of the whole model, shown in /docs and in
    generated SDKs (tests/test_openapi_examples.py validates each against the schema). Setting it
    replaces the base's ``json_schema_extra``, so a request model's own (``_storable_text``, or
    ``required_in_schema``) is applied here too."""

    values: tuple[dict[str, Any], ...]
    then: Any = None

    def __call__(self, schema: dict[str, Any], model: type) -> None:
        if self.then is not None:
            self.then(schema, model)
        elif issubclass(model, RequestModel):
            _storable_text(schema, model)
        schema["examples"] = copy.deepcopy(list(self.values))


def examples(*values: dict[str, Any], then: Any = None) -> ConfigDict:
    """``model_config`` of a model shown with ``values``; ``then`` is a ``json_schema_extra`` it also
    applies (``required_in_schema(...)``)."""
    return ConfigDict(json_schema_extra=Examples(values, then))


@dataclass(frozen=True)
class AlsoInSchema:
    """Annotation metadata: keywords added to a type's JSON schema, for a rule that the service
    enforces with its own problem code rather than pydantic with `validation_error`."""

    keywords: dict[str, Any]

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.keywords.items())))

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {**handler(schema), **self.keywords}


class RequestModel(BaseModel):
    """A request body: unknown (and read-only) fields are refused, text must be storable, and
    the JSON is bounded in depth and size."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_storable_text)

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


def _sent_at_most(max_length: int) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > max_length:
            raise PydanticCustomError(
                "string_too_long", "String should have at most {max_length} characters", {"max_length": max_length}
            )
        return value

    return BeforeValidator(check)


def trimmed(max_length: int, *, min_length: int = 0) -> Any:
    """Text kept without its surrounding whitespace. The schema's bounds hold for the text as
    sent: at most ``max_length`` characters, whitespace included, and with ``min_length`` not
    blank (NOT_BLANK), so a schema-valid value is never refused once trimmed, nor an over-long
    one accepted because its excess was whitespace."""
    pattern = NOT_BLANK if min_length else None
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length, pattern=pattern),
        _sent_at_most(max_length),  # outermost: it sees the text as sent
    ]


Name = trimmed(200, min_length=1)
Label = trimmed(200, min_length=1)
Code = Annotated[
    str,
    StringConstraints(max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$"),
    Field(description="snake_case code, unique per organisation", examples=["negotiation"]),
]
ShortText = Annotated[str, StringConstraints(max_length=2000)]

T = TypeVar("T")


def _page_examples(schema: dict[str, Any], model: type) -> None:
    """A page's example: its item model's first example, on a page with more to come."""
    (item,) = typing.get_args(model.model_fields["items"].annotation)  # type: ignore[attr-defined]
    extra = (
        item.model_config.get("json_schema_extra") if isinstance(item, type) and issubclass(item, BaseModel) else None
    )
    if isinstance(extra, Examples):
        schema["examples"] = [{"items": copy.deepcopy(list(extra.values[:1])), "next_cursor": EXAMPLE_CURSOR}]


# What `next_cursor` looks like (opaque to clients).
EXAMPLE_CURSOR = (
    "WyIyMDI2LTExLTAzVDE0OjAwOjAwWiIsIjAxYTEyYjRjLThlYzAtNzg2Yy04NDQ2LWNkMzA3NTYyOTg2NiJd.LXEWQrcmsEQBYnyp-6wy9Q"
)


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_examples)

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page", examples=[None]
    )


class Ref(ResponseModel):
    model_config = examples({"id": "01a0f67a-3800-70e6-b39c-d5c48f9356c7", "name": "Acme"})

    id: uuid.UUID
    name: str
