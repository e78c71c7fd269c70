"""Assignment rules: ownership is never assigned; requests and proposals are decided by the right person."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.domain.assignments import (
    AssignmentRole,
    AssignmentStatus,
    ensure_can_decide,
    ensure_can_end,
    ensure_new_assignment,
    next_step_role,
)
from app.domain.errors import (
    AssignmentEnded,
    AssignmentNotPending,
    Forbidden,
    InvalidAssignee,
    OwnerDecides,
    OwnerNotAssignable,
)
from app.domain.members import Actor, MemberRole

R = MemberRole
OWNER = uuid.uuid4()


@dataclass
class Deal:
    owner_id: uuid.UUID = OWNER
    stage: str = "discovery"


@dataclass
class Member:
    id: uuid.UUID
    role: MemberRole
    active: bool = True


@dataclass
class AssignmentStub:
    member_id: uuid.UUID
    status: str


def actor(role: MemberRole, member_id: uuid.UUID | None = None) -> Actor:
    return Actor(
        member_id=member_id or uuid.uuid4(),
        organization_id=uuid.uuid4(),
        role=role,
        manager_id=None,
        api_key_id=uuid.uuid4(),
    )


def test_the_owner_requests_and_others_propose() -> None:
    helper = Member(uuid.uuid4(), R.manager)
    assert ensure_new_assignment(actor(R.seller, OWNER), Deal(), "coach", helper) is AssignmentStatus.requested
    assert ensure_new_assignment(actor(R.manager, helper.id), Deal(), "coach", helper) is AssignmentStatus.proposed
    assert ensure_new_assignment(actor(R.admin), Deal(), "sales_engineer", Member(uuid.uuid4(), R.seller)) is (
        AssignmentStatus.proposed
    )


def test_ownership_is_not_assignable() -> None:
    with pytest.raises(OwnerNotAssignable):
        ensure_new_assignment(actor(R.manager), Deal(), "owner", Member(uuid.uuid4(), R.manager))
    with pytest.raises(OwnerNotAssignable):
        ensure_new_assignment(actor(R.manager), Deal(), "coach", Member(OWNER, R.seller))


@pytest.mark.parametrize(
    "member",
    [
        Member(uuid.uuid4(), R.admin),
        Member(uuid.uuid4(), R.integration),
        Member(uuid.uuid4(), R.seller, active=False),
        None,
    ],
)
def test_roles_go_to_active_sales_people(member: Member | None) -> None:
    with pytest.raises(InvalidAssignee):
        ensure_new_assignment(actor(R.seller, OWNER), Deal(), "coach", member)


def test_integrations_assign_no_roles() -> None:
    with pytest.raises(Forbidden):
        ensure_new_assignment(actor(R.integration), Deal(), "coach", Member(uuid.uuid4(), R.manager))


def test_a_request_is_decided_by_its_assignee() -> None:
    assignee = uuid.uuid4()
    request = AssignmentStub(assignee, AssignmentStatus.requested)
    ensure_can_decide(actor(R.seller, assignee), request, Deal())
    for who in (actor(R.seller, OWNER), actor(R.manager), actor(R.admin)):
        with pytest.raises(Forbidden):
            ensure_can_decide(who, request, Deal())


def test_a_proposal_is_decided_by_the_owner() -> None:
    proposer = uuid.uuid4()
    proposal = AssignmentStub(proposer, AssignmentStatus.proposed)
    ensure_can_decide(actor(R.seller, OWNER), proposal, Deal())
    for who in (actor(R.manager, proposer), actor(R.head_of_sales), actor(R.admin)):
        with pytest.raises(OwnerDecides):
            ensure_can_decide(who, proposal, Deal())


@pytest.mark.parametrize("status", [AssignmentStatus.active, AssignmentStatus.declined, AssignmentStatus.ended])
def test_only_pending_assignments_are_decided(status: AssignmentStatus) -> None:
    with pytest.raises(AssignmentNotPending):
        ensure_can_decide(actor(R.seller, OWNER), AssignmentStub(uuid.uuid4(), status), Deal())


def test_the_owner_or_the_assignee_ends() -> None:
    assignee = uuid.uuid4()
    active = AssignmentStub(assignee, AssignmentStatus.active)
    ensure_can_end(actor(R.seller, OWNER), active, Deal())
    ensure_can_end(actor(R.manager, assignee), active, Deal())
    with pytest.raises(Forbidden):
        ensure_can_end(actor(R.head_of_sales), active, Deal())
    with pytest.raises(AssignmentEnded):
        ensure_can_end(actor(R.seller, OWNER), AssignmentStub(assignee, AssignmentStatus.ended), Deal())


def test_next_steps_ask_managers_to_coach_and_others_to_lend_expertise() -> None:
    assert next_step_role(R.manager) is AssignmentRole.coach
    assert next_step_role(R.head_of_sales) is AssignmentRole.coach
    assert next_step_role(R.seller) is AssignmentRole.subject_matter_expert
