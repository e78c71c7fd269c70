from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import StringConstraints

from app.deps import ActorDep, Expansions, PageDep, UowDep
from app.errors import problem_responses
from app.http.routes import ApiRoute
from app.routers.expansion import expanded
from app.schemas.events import EventPage, EventPublic
from app.services import events as service

router = APIRouter(prefix="/v1", tags=["events"], route_class=ApiRoute)


@router.get("/events", response_model=EventPage, responses=problem_responses())
async def list_events(
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    after_seq: Annotated[int, Query(ge=0, le=2**62, description="Only events with a larger seq")] = 0,
    type: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=64)]] | None,
        Query(max_length=20, description="Event types to include, e.g. member.created"),
    ] = None,
    deal_id: uuid.UUID | None = None,
    expand: Expansions = None,
) -> EventPage:
    """The organisation's change feed in seq order (events the caller may see)."""
    result = await service.list_events(uow, actor, page, after_seq=after_seq, types=type, deal_id=deal_id)
    items = [EventPublic.model_validate(e) for e in result.items]
    return await expanded(uow, actor, EventPage(items=items, next_cursor=result.next_cursor), expand)
