"""The event feed: org-wide roles read everything; others read the events of what they see."""

from __future__ import annotations

import uuid

from app.db.models import Event
from app.db.uow import UnitOfWork
from app.domain.errors import InvalidCursor
from app.domain.members import Actor
from app.services.access import visible_deal
from app.services.pagination import PageRequest, PageResult, build_page

LISTING = "events"


async def list_events(
    uow: UnitOfWork,
    actor: Actor,
    page: PageRequest,
    *,
    after_seq: int,
    types: list[str] | None,
    deal_id: uuid.UUID | None,
    history: bool = False,
) -> PageResult[Event]:
    key = page.key(LISTING, 1)
    if key is not None:
        (seq,) = key
        if not isinstance(seq, int):
            raise InvalidCursor()
        after_seq = max(after_seq, seq)
    rows = await uow.events.list_feed(
        organization_id=actor.organization_id,
        after_seq=after_seq,
        limit=page.limit + 1,
        types=types,
        deal_id=deal_id,
        visible_to=None if history else actor,
        org_level=actor.sees_whole_org or history,
    )
    return build_page(LISTING, page, rows, key=lambda e: [e.seq])


async def deal_history(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, page: PageRequest) -> PageResult[Event]:
    """One deal's events, oldest first, for whoever can see the deal."""
    deal = await visible_deal(uow, actor, deal_id)
    return await list_events(uow, actor, page, after_seq=0, types=None, deal_id=deal.id, history=True)
