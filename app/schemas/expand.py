"""`?expand=members`: the members a response names, by id, so a screen needs no extra lookups.

A field that names a member is declared ``MemberId`` (``owner_id: MemberId``). A response that
names members declares ``members: Members``: absent unless the read was asked to expand them,
then a map from every member id the response names (its items' and nested objects' included) to
``{id, name, role}``. A single object carries the map itself; a page carries one map for all its
items (the items carry none). ``member_ids`` finds what to look up, so adding a ``MemberId`` field
is all it takes for it to be expanded.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from app.domain.members import MemberRole
from app.schemas import acme
from app.schemas.common import ResponseModel, examples


class Expand(enum.StrEnum):
    """What a read can include besides the object: `members`, the members it names."""

    members = "members"


class _NamesMember:
    """Annotation metadata: the field holds a member's id."""

    def __repr__(self) -> str:
        return "NAMES_MEMBER"


NAMES_MEMBER = _NamesMember()
MemberId = Annotated[uuid.UUID, NAMES_MEMBER]


class MemberRef(ResponseModel):
    model_config = examples(acme.SAM)

    id: uuid.UUID
    name: str = Field(examples=["Sam Seller"])
    role: MemberRole


def _absent(value: Any) -> bool:
    return value is None


Members = Annotated[
    dict[uuid.UUID, MemberRef] | None,
    Field(
        exclude_if=_absent,
        description="Present only when the read asks for `expand=members`: every member the response "
        "names (owner, author, reviewer, approver, observer, assignee, requester, actor, ..., in nested "
        "objects too), by id, as `{id, name, role}`. A page carries one map for all its items, which "
        "carry none themselves.",
    ),
]


def member_ids(value: Any) -> set[uuid.UUID]:
    """Every member id a response model (or a list of them) names, nested objects included."""
    found: set[uuid.UUID] = set()
    _collect(value, found)
    return found


def _collect(value: Any, found: set[uuid.UUID]) -> None:
    if isinstance(value, BaseModel):
        for name, direct in _member_fields(type(value)):
            item = getattr(value, name)
            if not direct:
                _collect(item, found)
            elif item is not None:
                found.add(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)


@functools.cache
def _member_fields(model: type[BaseModel]) -> tuple[tuple[str, bool], ...]:
    """The fields of ``model`` that name a member (True) or hold objects that do (False)."""
    fields = []
    for name, info in model.model_fields.items():
        if _names_member(info):
            fields.append((name, True))
        elif any(_member_fields(nested) for nested in _models_in(info.annotation)):
            fields.append((name, False))
    return tuple(fields)


def names_members(model: type[BaseModel]) -> bool:
    """Whether instances of ``model`` can name members (directly or in nested objects)."""
    return bool(_member_fields(model))


def _names_member(info: FieldInfo) -> bool:
    return NAMES_MEMBER in info.metadata or _annotated_with_marker(info.annotation)


def _annotated_with_marker(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        return NAMES_MEMBER in annotation.__metadata__ or _annotated_with_marker(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_annotated_with_marker(arg) for arg in typing.get_args(annotation))
    return False


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's value can hold: itself, or inside a list or an optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (list, tuple, typing.Union, types.UnionType):
        return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
    return []
