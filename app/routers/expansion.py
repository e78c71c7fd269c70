"""`?expand=members` on reads: the response with the members it names (app/schemas/expand.py says
which fields name members and where the map goes), looked up in one query whatever its size."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from app.domain.members import Actor
from app.schemas.expand import Expand, MemberRef, member_ids
from app.services import members
from app.services.auth import Caller

M = TypeVar("M", bound=BaseModel)


async def expanded(uow: Any, actor: Actor, model: M, expand: Collection[Expand] | None) -> M:
    """``model`` (an object or a page) with what ``expand`` asks for; as it was otherwise. ``uow``
    is the request's unit of work: the lookup runs on its connection."""
    if expand and Expand.members in expand:
        rows = await members.member_refs(uow, actor, member_ids(model))
        model.members = {row.id: MemberRef(id=row.id, name=row.name, role=row.role) for row in rows}  # type: ignore[attr-defined]
    return model


async def plain_members(
    caller: Caller, organization_id: uuid.UUID | None, ids: Iterable[uuid.UUID | None]
) -> dict[str, Any]:
    """The ``members`` map of a hot read's plain document: member id -> {id, name, role}."""
    rows = await members.read_member_refs(caller, organization_id, ids)
    return {str(row.id): {"id": row.id, "name": row.name, "role": row.role} for row in rows}
