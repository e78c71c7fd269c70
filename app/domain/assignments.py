"""Roles on a deal: requested by the owner or proposed by others, and decided by the right person."""

from __future__ import annotations

import enum
import uuid
from typing import Protocol

from app.domain.deals import DealLike
from app.domain.errors import (
    AssignmentEnded,
    AssignmentNotPending,
    Forbidden,
    InvalidAssignee,
    OwnerDecides,
    OwnerNotAssignable,
)
from app.domain.members import Actor, MemberRole


class AssignmentRole(enum.StrEnum):
    coach = "coach"
    observer = "observer"
    executive_sponsor = "executive_sponsor"
    subject_matter_expert = "subject_matter_expert"
    sales_engineer = "sales_engineer"


class AssignmentStatus(enum.StrEnum):
    requested = "requested"  # the owner asked; the assignee decides
    proposed = "proposed"  # someone else offered; the owner decides
    active = "active"
    declined = "declined"
    ended = "ended"


OPEN_STATUSES = (AssignmentStatus.requested, AssignmentStatus.proposed, AssignmentStatus.active)
ASSIGNABLE_MEMBER_ROLES = (MemberRole.seller, MemberRole.manager, MemberRole.head_of_sales)


class Assignee(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def role(self) -> MemberRole: ...
    @property
    def active(self) -> bool: ...


class AssignmentLike(Protocol):
    @property
    def member_id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...


def ensure_new_assignment(actor: Actor, deal: DealLike, role: str, assignee: Assignee | None) -> AssignmentStatus:
    """Ownership is never assigned; roles go to active sales people; the owner's own
    assignment is a request, anyone else's a proposal the owner decides on."""
    if role == "owner" or (assignee is not None and assignee.id == deal.owner_id):
        raise OwnerNotAssignable()
    if actor.role == MemberRole.integration:
        raise Forbidden("Integrations write deal facts, not roles on deals.")
    if assignee is None or assignee.role not in ASSIGNABLE_MEMBER_ROLES or not assignee.active:
        raise InvalidAssignee()
    return AssignmentStatus.requested if actor.member_id == deal.owner_id else AssignmentStatus.proposed


def ensure_can_decide(actor: Actor, assignment: AssignmentLike, deal: DealLike) -> None:
    """A request is decided by its assignee, a proposal by the deal's owner."""
    if assignment.status == AssignmentStatus.requested:
        if actor.member_id != assignment.member_id:
            raise Forbidden("Only the requested member accepts or declines a request.")
    elif assignment.status == AssignmentStatus.proposed:
        if actor.member_id != deal.owner_id:
            raise OwnerDecides()
    else:
        raise AssignmentNotPending()


def ensure_can_end(actor: Actor, assignment: AssignmentLike, deal: DealLike) -> None:
    """The owner or the assignee ends an assignment (or withdraws a pending one)."""
    if actor.member_id not in (deal.owner_id, assignment.member_id):
        raise Forbidden("Only the deal's owner or the assignee ends an assignment.")
    if assignment.status not in OPEN_STATUSES:
        raise AssignmentEnded()


def next_step_role(member_role: MemberRole) -> AssignmentRole:
    """The role a next step's assignee is asked to take: managers coach, others lend expertise."""
    return (
        AssignmentRole.coach
        if member_role in (MemberRole.manager, MemberRole.head_of_sales)
        else (AssignmentRole.subject_matter_expert)
    )
