"""Deal access, the one home of "who sees this deal and how they relate to it".

Every service that works on something attached to a deal (strategy, assignments, calls,
approvals, reviews, history) asks here, so the visibility rule has one implementation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from app.db.models import Deal
from app.db.uow import UnitOfWork
from app.domain.deals import Access
from app.domain.errors import NotFound
from app.domain.members import Actor

NO_SUCH_DEAL = "No deal with this id."


async def visible_deal(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, *, for_update: bool = False) -> Deal:
    """The deal if the actor may see it; otherwise it does not exist (404)."""
    deal = await uow.deals.get_visible(actor, deal_id, for_update=for_update)
    if deal is None:
        raise NotFound(NO_SUCH_DEAL)
    return deal


async def ensure_sees_through_deal(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, *, named: Iterable[uuid.UUID], what: str
) -> None:
    """Something on a deal (a call, an assignment, an approval) is visible to the members it
    names and to whoever sees the deal; to anyone else it does not exist."""
    if actor.member_id in set(named):
        return
    try:
        await visible_deal(uow, actor, deal_id)
    except NotFound:
        raise NotFound(f"No {what} with this id.") from None


async def deal_access(uow: UnitOfWork, actor: Actor, deal: Deal) -> Access:
    """How the actor relates to the deal: its owner, or in the owner's management line."""
    chain = await uow.members.manager_chain(actor.organization_id, deal.owner_id)
    return Access.of(actor, deal, chain[1:])
