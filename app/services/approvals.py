"""Sign-off on deal terms: the owner requests, the approver decides, the terms never change,
and a reversal is a visible act that an offer already sent holds back."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, NoReturn

from app.db.models import Approval, Deal
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.approvals import (
    ApprovalStatus,
    ensure_decision,
    ensure_new_approval,
    ensure_reliance,
    ensure_revocation,
    refuse_change,
)
from app.domain.errors import NotFound
from app.domain.members import Actor
from app.domain.versioning import ensure_version
from app.schemas.approvals import ApprovalCreate, ApprovalUpdate
from app.services.access import ensure_sees_through_deal, visible_deal
from app.services.pagination import PageRequest, PageResult, after_id, build_page

LISTING = "approvals"


async def create_approval(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, data: ApprovalCreate) -> Approval:
    async with uow:
        deal = await visible_deal(uow, actor, deal_id, for_update=True)
        chain = await uow.members.manager_chain(actor.organization_id, deal.owner_id)
        approver = await uow.members.get(actor.organization_id, data.approver_id)
        ensure_new_approval(actor, deal, approver, chain[1:])
        terms = [term.model_dump(mode="json") for term in data.terms]
        approval = Approval(
            organization_id=deal.organization_id,
            deal_id=deal.id,
            requested_by=actor.member_id,
            approver_id=data.approver_id,
            terms=terms,
            status=ApprovalStatus.pending,
        )
        uow.add(approval)
        await uow.flush()
        await _event(uow, actor, approval, "requested", {"approver_id": str(approval.approver_id), "terms": terms})
        await uow.commit()
    return approval


async def get_approval(uow: UnitOfWork, actor: Actor, approval_id: uuid.UUID) -> Approval:
    """An approval is visible to its approver and to whoever sees its deal."""
    approval = await uow.approvals.get(actor.organization_id, approval_id)
    if approval is None:
        raise NotFound("No approval with this id.")
    await ensure_sees_through_deal(uow, actor, approval.deal_id, named=[approval.approver_id], what="approval")
    return approval


async def list_deal_approvals(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, page: PageRequest, status: ApprovalStatus | None
) -> PageResult[Approval]:
    deal = await visible_deal(uow, actor, deal_id)
    rows = await uow.approvals.list_page(
        actor.organization_id,
        deal_id=deal.id,
        status=status,
        after=after_id(LISTING, page),
        limit=page.limit + 1,
    )
    return build_page(LISTING, page, rows)


async def approve_approval(uow: UnitOfWork, actor: Actor, approval_id: uuid.UUID, note: str | None) -> Approval:
    return await _decide(uow, actor, approval_id, ApprovalStatus.approved, note)


async def reject_approval(uow: UnitOfWork, actor: Actor, approval_id: uuid.UUID, note: str | None) -> Approval:
    return await _decide(uow, actor, approval_id, ApprovalStatus.rejected, note)


async def update_approval(
    uow: UnitOfWork, actor: Actor, approval_id: uuid.UUID, data: ApprovalUpdate, if_match: frozenset[int] | None
) -> NoReturn:
    """Every change is refused: terms have no write path after the request (a change is a new approval)."""
    async with uow:
        approval = await get_approval(uow, actor, approval_id)
        ensure_version(approval.version, if_match)
        refuse_change(approval)


async def rely_on_approval(uow: UnitOfWork, actor: Actor, approval_id: uuid.UUID) -> Approval:
    async with uow:
        approval, deal = await _load(uow, actor, approval_id)
        if ensure_reliance(actor, approval, deal):
            now = utcnow()
            approval.relied_on_at = now
            _touch(approval, now)
            await uow.flush()
            await _event(uow, actor, approval, "relied_upon", {"relied_on_at": now.isoformat()})
            await uow.commit()
    return approval


async def revoke_approval(uow: UnitOfWork, actor: Actor, approval_id: uuid.UUID, reason: str) -> Approval:
    async with uow:
        approval, deal = await _load(uow, actor, approval_id)
        ensure_revocation(actor, approval, deal, reason)
        now = utcnow()
        relied_upon = approval.relied_on_at is not None
        approval.status = ApprovalStatus.revoked
        approval.revoked_at = now
        approval.revoked_by = actor.member_id
        approval.revoke_reason = reason
        _touch(approval, now)
        await uow.flush()
        await _event(uow, actor, approval, "revoked", {"reason": reason, "relied_upon": relied_upon})
        await uow.commit()
    return approval


async def _decide(
    uow: UnitOfWork, actor: Actor, approval_id: uuid.UUID, status: ApprovalStatus, note: str | None
) -> Approval:
    async with uow:
        approval, _ = await _load(uow, actor, approval_id)
        ensure_decision(actor, approval)
        now = utcnow()
        approval.status = status
        approval.decision_note = note
        approval.decided_at = now
        _touch(approval, now)
        await uow.flush()
        await _event(uow, actor, approval, str(status), {"approver_id": str(approval.approver_id), "note": note})
        await uow.commit()
    return approval


async def _load(uow: UnitOfWork, actor: Actor, approval_id: uuid.UUID) -> tuple[Approval, Deal]:
    """The approval, re-read under a row lock so two decisions cannot both apply."""
    visible = await get_approval(uow, actor, approval_id)
    approval = await uow.approvals.lock(visible.id)
    deal = await uow.get(Deal, approval.deal_id)
    assert deal is not None
    return approval, deal


def _touch(approval: Approval, now: dt.datetime) -> None:
    approval.version += 1
    approval.updated_at = now


async def _event(uow: UnitOfWork, actor: Actor, approval: Approval, verb: str, data: dict[str, Any]) -> None:
    await uow.events.record(
        actor,
        f"approval.{verb}",
        subject_type="approval",
        subject_id=approval.id,
        deal_id=approval.deal_id,
        data=data,
    )
