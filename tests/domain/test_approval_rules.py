"""Approval rules: the owner asks their line, the approver decides once, terms never change,
and a reversal after an offer went out needs the owner's consent."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest

from app.domain.approvals import (
    ApprovalStatus,
    ensure_approver_in_line,
    ensure_can_request,
    ensure_decision,
    ensure_new_approval,
    ensure_reliance,
    ensure_revocation,
    refuse_change,
)
from app.domain.errors import (
    ApprovalNotApproved,
    ApprovalNotPending,
    ApprovalReliedUpon,
    ApprovedTermsImmutable,
    ApproverNotInLine,
    Conflict,
    DealClosed,
    Forbidden,
    MissingFields,
    OwnerDecides,
)
from app.domain.members import Actor, MemberRole

R = MemberRole
S = ApprovalStatus
OWNER = uuid.uuid4()
APPROVER = uuid.uuid4()
NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)


@dataclass
class Deal:
    owner_id: uuid.UUID = OWNER
    stage: str = "negotiation"


@dataclass
class Member:
    id: uuid.UUID
    role: MemberRole
    active: bool = True


@dataclass
class ApprovalStub:
    status: str = S.approved
    approver_id: uuid.UUID = APPROVER
    relied_on_at: dt.datetime | None = None


def actor(role: MemberRole, member_id: uuid.UUID | None = None) -> Actor:
    return Actor(
        member_id=member_id or uuid.uuid4(),
        organization_id=uuid.uuid4(),
        role=role,
        manager_id=None,
        api_key_id=uuid.uuid4(),
    )


OWNER_ACTOR = actor(R.seller, OWNER)
APPROVER_ACTOR = actor(R.manager, APPROVER)


# --- requesting ---------------------------------------------------------------


def test_only_the_owner_requests() -> None:
    ensure_can_request(OWNER_ACTOR, Deal())
    for role in R:
        with pytest.raises(Forbidden) as caught:
            ensure_can_request(actor(role), Deal())
        assert caught.value.code == "forbidden"


@pytest.mark.parametrize("role", [R.manager, R.head_of_sales])
def test_an_active_manager_or_head_of_sales_in_the_line_approves(role: MemberRole) -> None:
    approver = Member(uuid.uuid4(), role)
    ensure_approver_in_line(approver, [uuid.uuid4(), approver.id])


@pytest.mark.parametrize(
    "approver",
    [
        None,
        Member(uuid.uuid4(), R.manager),  # outside the line
        Member(APPROVER, R.seller),  # a peer, not a manager
        Member(APPROVER, R.admin),
        Member(APPROVER, R.integration),
        Member(APPROVER, R.manager, active=False),
    ],
    ids=["unknown", "outside_line", "seller", "admin", "integration", "inactive"],
)
def test_anyone_else_is_not_in_the_line(approver: Member | None) -> None:
    with pytest.raises(ApproverNotInLine) as caught:
        ensure_approver_in_line(approver, [APPROVER])
    assert caught.value.code == "approver_not_in_line"


def test_a_new_approval_checks_owner_then_open_deal_then_line() -> None:
    manager = Member(APPROVER, R.manager)
    ensure_new_approval(OWNER_ACTOR, Deal(), manager, [APPROVER])
    with pytest.raises(Forbidden):
        ensure_new_approval(actor(R.manager, APPROVER), Deal(stage="closed_won"), None, [])
    with pytest.raises(DealClosed):
        ensure_new_approval(OWNER_ACTOR, Deal(stage="closed_lost"), None, [])
    with pytest.raises(ApproverNotInLine):
        ensure_new_approval(OWNER_ACTOR, Deal(), Member(uuid.uuid4(), R.manager), [APPROVER])


# --- deciding -----------------------------------------------------------------


def test_the_approver_decides_a_pending_request() -> None:
    ensure_decision(APPROVER_ACTOR, ApprovalStub(status=S.pending))


@pytest.mark.parametrize("who", [OWNER_ACTOR, actor(R.head_of_sales), actor(R.admin), actor(R.manager)])
def test_nobody_but_the_approver_decides(who: Actor) -> None:
    with pytest.raises(Forbidden) as caught:
        ensure_decision(who, ApprovalStub(status=S.pending))
    assert caught.value.code == "forbidden"


@pytest.mark.parametrize("status", [S.approved, S.rejected, S.revoked])
def test_a_decision_is_taken_once(status: ApprovalStatus) -> None:
    with pytest.raises(ApprovalNotPending):
        ensure_decision(APPROVER_ACTOR, ApprovalStub(status=status))


# --- terms never change -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (S.approved, "approved_terms_immutable"),
        (S.pending, "conflict"),
        (S.rejected, "approval_not_pending"),
        (S.revoked, "approval_not_pending"),
    ],
)
def test_every_change_is_refused(status: ApprovalStatus, code: str) -> None:
    with pytest.raises(Conflict) as caught:
        refuse_change(ApprovalStub(status=status))
    assert caught.value.code == code
    if status == S.approved:
        assert isinstance(caught.value, ApprovedTermsImmutable)


# --- reliance -----------------------------------------------------------------


def test_the_owner_relies_on_an_approved_approval_once() -> None:
    assert ensure_reliance(OWNER_ACTOR, ApprovalStub(), Deal()) is True
    assert ensure_reliance(OWNER_ACTOR, ApprovalStub(relied_on_at=NOW), Deal()) is False


@pytest.mark.parametrize("who", [APPROVER_ACTOR, actor(R.head_of_sales), actor(R.admin), actor(R.seller)])
def test_only_the_owner_relies(who: Actor) -> None:
    with pytest.raises(OwnerDecides):
        ensure_reliance(who, ApprovalStub(), Deal())


@pytest.mark.parametrize("status", [S.pending, S.rejected, S.revoked])
def test_only_an_approved_approval_is_relied_upon(status: ApprovalStatus) -> None:
    with pytest.raises(ApprovalNotApproved):
        ensure_reliance(OWNER_ACTOR, ApprovalStub(status=status), Deal())


# --- revocation ---------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_revoking_needs_a_reason(reason: str | None) -> None:
    with pytest.raises(MissingFields) as caught:
        ensure_revocation(APPROVER_ACTOR, ApprovalStub(), Deal(), reason)
    assert caught.value.code == "validation_error"
    assert caught.value.fields[0].path == ("reason",)


def test_the_approver_or_a_head_of_sales_revokes_before_reliance() -> None:
    ensure_revocation(APPROVER_ACTOR, ApprovalStub(), Deal(), "budget withdrawn")
    ensure_revocation(actor(R.head_of_sales), ApprovalStub(), Deal(), "budget withdrawn")


@pytest.mark.parametrize("who", [OWNER_ACTOR, actor(R.manager), actor(R.admin), actor(R.integration)])
def test_nobody_else_revokes_before_reliance(who: Actor) -> None:
    with pytest.raises(Forbidden) as caught:
        ensure_revocation(who, ApprovalStub(), Deal(), "budget withdrawn")
    assert caught.value.code == "forbidden"


@pytest.mark.parametrize("status", [S.pending, S.rejected, S.revoked])
def test_only_an_approved_approval_is_revoked(status: ApprovalStatus) -> None:
    with pytest.raises(ApprovalNotApproved):
        ensure_revocation(APPROVER_ACTOR, ApprovalStub(status=status), Deal(), "budget withdrawn")


def test_once_relied_upon_only_the_owner_revokes() -> None:
    relied = ApprovalStub(relied_on_at=NOW)
    ensure_revocation(OWNER_ACTOR, relied, Deal(), "customer agreed to new terms")
    for who in (APPROVER_ACTOR, actor(R.head_of_sales), actor(R.admin)):
        with pytest.raises(ApprovalReliedUpon) as caught:
            ensure_revocation(who, relied, Deal(), "budget withdrawn")
        assert caught.value.code == "approval_relied_upon"
