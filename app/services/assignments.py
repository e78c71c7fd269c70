"""Roles on deals: the owner requests help, others propose themselves, the right person decides."""

from __future__ import annotations

import uuid
from typing import Any

from app.db.models import Assignment, Deal, Member
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.assignments import (
    AssignmentRole,
    AssignmentStatus,
    ensure_can_decide,
    ensure_can_end,
    ensure_new_assignment,
)
from app.domain.errors import AssignmentExists, NotFound
from app.domain.members import Actor
from app.schemas.assignments import AssignmentCreate
from app.services.access import ensure_sees_through_deal, visible_deal
from app.services.involvement import record_involvement
from app.services.pagination import PageRequest, PageResult, after_id, build_page

LISTING = "assignments"


async def create_assignment(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, data: AssignmentCreate) -> Assignment:
    async with uow:
        deal = await visible_deal(uow, actor, deal_id, for_update=True)
        member = await uow.members.get(actor.organization_id, data.member_id)
        status = ensure_new_assignment(actor, deal, str(data.role), member)
        assert member is not None
        assignment = await open_assignment(uow, actor, deal, member, AssignmentRole(data.role), data.purpose, status)
        await uow.commit()
    return assignment


async def open_assignment(
    uow: UnitOfWork,
    actor: Actor,
    deal: Deal,
    member: Member,
    role: AssignmentRole,
    purpose: str | None,
    status: AssignmentStatus,
) -> Assignment:
    """Create a requested or proposed assignment, noting the member's involvement."""
    if await uow.assignments.open_exists(deal.id, member.id, role):
        raise AssignmentExists()
    late = await record_involvement(uow, deal, member, "assignment")
    assignment = Assignment(
        organization_id=deal.organization_id,
        deal_id=deal.id,
        member_id=member.id,
        role=role,
        purpose=purpose,
        status=status,
        requested_by=actor.member_id,
        late_involvement=late,
    )
    uow.add(assignment)
    await uow.flush()
    await _event(
        uow, actor, assignment, str(status), {"member_id": str(member.id), "role": str(role), "late_involvement": late}
    )
    return assignment


async def get_assignment(uow: UnitOfWork, actor: Actor, assignment_id: uuid.UUID) -> Assignment:
    """An assignment is visible to its assignee and to whoever sees its deal."""
    assignment = await uow.assignments.get(actor.organization_id, assignment_id)
    if assignment is None:
        raise NotFound("No assignment with this id.")
    await ensure_sees_through_deal(uow, actor, assignment.deal_id, named=[assignment.member_id], what="assignment")
    return assignment


async def list_deal_assignments(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, page: PageRequest, status: AssignmentStatus | None
) -> PageResult[Assignment]:
    deal = await visible_deal(uow, actor, deal_id)
    rows = await uow.assignments.list_page(
        actor.organization_id,
        deal_id=deal.id,
        status=status,
        after=after_id(LISTING, page),
        limit=page.limit + 1,
    )
    return build_page(LISTING, page, rows)


async def list_my_assignments(
    uow: UnitOfWork,
    actor: Actor,
    page: PageRequest,
    status: AssignmentStatus | None,
    deal_id: uuid.UUID | None = None,
) -> PageResult[Assignment]:
    rows = await uow.assignments.list_page(
        actor.organization_id,
        member_id=actor.member_id,
        deal_id=deal_id,
        status=status,
        after=after_id(LISTING, page),
        limit=page.limit + 1,
    )
    return build_page(LISTING, page, rows)


async def accept_assignment(uow: UnitOfWork, actor: Actor, assignment_id: uuid.UUID) -> Assignment:
    return await _decide(uow, actor, assignment_id, AssignmentStatus.active, "accepted")


async def decline_assignment(uow: UnitOfWork, actor: Actor, assignment_id: uuid.UUID) -> Assignment:
    return await _decide(uow, actor, assignment_id, AssignmentStatus.declined, "declined")


async def end_assignment(uow: UnitOfWork, actor: Actor, assignment_id: uuid.UUID) -> Assignment:
    async with uow:
        assignment, deal = await _load(uow, actor, assignment_id)
        ensure_can_end(actor, assignment, deal)
        assignment.status = AssignmentStatus.ended
        assignment.ended_at = utcnow()
        assignment.version += 1
        await uow.flush()
        await _event(uow, actor, assignment, "ended", {"member_id": str(assignment.member_id)})
        await uow.commit()
    return assignment


async def _decide(
    uow: UnitOfWork, actor: Actor, assignment_id: uuid.UUID, status: AssignmentStatus, verb: str
) -> Assignment:
    async with uow:
        assignment, deal = await _load(uow, actor, assignment_id)
        ensure_can_decide(actor, assignment, deal)
        assignment.status = status
        assignment.decided_at = utcnow()
        assignment.version += 1
        await uow.flush()
        await _event(
            uow, actor, assignment, verb, {"member_id": str(assignment.member_id), "role": str(assignment.role)}
        )
        await uow.commit()
    return assignment


async def _load(uow: UnitOfWork, actor: Actor, assignment_id: uuid.UUID) -> tuple[Assignment, Deal]:
    """The assignment, re-read under a row lock so two decisions cannot both apply."""
    visible = await get_assignment(uow, actor, assignment_id)
    assignment = await uow.assignments.lock(visible.id)
    deal = await uow.get(Deal, assignment.deal_id)
    assert deal is not None
    return assignment, deal


async def _event(uow: UnitOfWork, actor: Actor, assignment: Assignment, verb: str, data: dict[str, Any]) -> None:
    await uow.events.record(
        actor,
        f"assignment.{verb}",
        subject_type="assignment",
        subject_id=assignment.id,
        deal_id=assignment.deal_id,
        data=data,
    )
