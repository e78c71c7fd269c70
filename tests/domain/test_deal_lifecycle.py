"""Deal rules: who owns, who creates for whom, what a closed deal accepts, losses and transfers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.domain.deals import (
    Access,
    Stage,
    check_new_deal,
    check_update,
    ensure_can_create_for,
    ensure_deal_open,
    ensure_owner_is_seller,
    is_late,
)
from app.domain.errors import (
    DealClosed,
    Forbidden,
    LossReasonRequired,
    LossRequiresClosedLost,
    OwnerMustBeSeller,
    TransferReasonRequired,
)
from app.domain.members import Actor, MemberRole

R = MemberRole
OWNER = Access(is_owner=True, in_owner_line=False)
LINE = Access(is_owner=False, in_owner_line=True)
NONE = Access(is_owner=False, in_owner_line=False)


def actor(role: MemberRole, member_id: uuid.UUID | None = None) -> Actor:
    return Actor(
        member_id=member_id or uuid.uuid4(),
        organization_id=uuid.uuid4(),
        role=role,
        manager_id=None,
        api_key_id=uuid.uuid4(),
    )


@dataclass
class MemberStub:
    role: MemberRole
    active: bool = True


def test_only_an_active_seller_owns() -> None:
    ensure_owner_is_seller(MemberStub(R.seller))
    for stub in (
        MemberStub(R.manager),
        MemberStub(R.head_of_sales),
        MemberStub(R.admin),
        MemberStub(R.integration),
        MemberStub(R.seller, active=False),
        None,
    ):
        with pytest.raises(OwnerMustBeSeller):
            ensure_owner_is_seller(stub)


def test_who_creates_for_whom() -> None:
    seller_id = uuid.uuid4()
    ensure_can_create_for(actor(R.seller, seller_id), seller_id, manages_owner=False)
    ensure_can_create_for(actor(R.manager), seller_id, manages_owner=True)
    for role in (R.head_of_sales, R.admin, R.integration):
        ensure_can_create_for(actor(role), seller_id, manages_owner=False)
    with pytest.raises(Forbidden):
        ensure_can_create_for(actor(R.seller), seller_id, manages_owner=False)
    with pytest.raises(Forbidden):
        ensure_can_create_for(actor(R.manager), seller_id, manages_owner=False)


def _update(who: Actor, access: Access, stage: Stage, **kw):  # type: ignore[no-untyped-def]
    args = {
        "new_stage": None,
        "changes_other_fields": False,
        "transfers": False,
        "transfer_reason": None,
        "loss_given": False,
        **kw,
    }
    return check_update(who, access, stage=stage, **args)


def test_open_deal_edits_by_owner_line_and_leadership() -> None:
    for who, access in (
        (actor(R.seller), OWNER),
        (actor(R.manager), LINE),
        (actor(R.head_of_sales), NONE),
        (actor(R.admin), NONE),
        (actor(R.integration), NONE),
    ):
        assert _update(who, access, Stage.discovery, changes_other_fields=True) is None
    for who in (actor(R.seller), actor(R.manager)):
        with pytest.raises(Forbidden):
            _update(who, NONE, Stage.discovery, changes_other_fields=True)


def test_moving_between_open_stages() -> None:
    change = _update(actor(R.seller), OWNER, Stage.discovery, new_stage=Stage.negotiation)
    assert change is not None and not change.closes and not change.reopens


def test_losing_needs_a_loss_and_a_loss_needs_losing() -> None:
    with pytest.raises(LossReasonRequired):
        _update(actor(R.seller), OWNER, Stage.proposal, new_stage=Stage.closed_lost)
    change = _update(actor(R.seller), OWNER, Stage.proposal, new_stage=Stage.closed_lost, loss_given=True)
    assert change is not None and change.closes and change.loses
    with pytest.raises(LossRequiresClosedLost):
        _update(actor(R.seller), OWNER, Stage.proposal, new_stage=Stage.closed_won, loss_given=True)
    with pytest.raises(LossRequiresClosedLost):
        _update(actor(R.seller), OWNER, Stage.proposal, loss_given=True)


@pytest.mark.parametrize("closed", [Stage.closed_won, Stage.closed_lost])
def test_a_closed_deal_accepts_only_a_reopen(closed: Stage) -> None:
    other = Stage.closed_lost if closed == Stage.closed_won else Stage.closed_won
    for kw in (
        {"changes_other_fields": True},
        {"new_stage": other, "loss_given": other == Stage.closed_lost},
        {"transfers": True, "transfer_reason": "x"},
    ):
        with pytest.raises(DealClosed):
            _update(actor(R.seller), OWNER, closed, **kw)
    change = _update(actor(R.seller), OWNER, closed, new_stage=Stage.proposal, changes_other_fields=True)
    assert change is not None and change.reopens


@pytest.mark.parametrize(
    ("who", "access", "allowed"),
    [
        (R.seller, OWNER, True),
        (R.manager, LINE, True),
        (R.head_of_sales, NONE, True),
        (R.admin, NONE, False),
        (R.integration, NONE, False),
        (R.manager, NONE, False),
    ],
)
def test_reopening_is_for_the_owner_and_their_line(who: MemberRole, access: Access, allowed: bool) -> None:
    if allowed:
        assert _update(actor(who), access, Stage.closed_lost, new_stage=Stage.negotiation) is not None
    else:
        with pytest.raises(Forbidden):
            _update(actor(who), access, Stage.closed_lost, new_stage=Stage.negotiation)


def test_a_transfer_needs_a_reason() -> None:
    for reason in (None, "", "   "):
        with pytest.raises(TransferReasonRequired):
            _update(actor(R.manager), LINE, Stage.discovery, transfers=True, transfer_reason=reason)
    _update(actor(R.manager), LINE, Stage.discovery, transfers=True, transfer_reason="Territory change")


def test_new_deals_and_losses() -> None:
    check_new_deal(Stage.prospecting, loss_given=False)
    check_new_deal(Stage.closed_lost, loss_given=True)
    with pytest.raises(LossReasonRequired):
        check_new_deal(Stage.closed_lost, loss_given=False)
    with pytest.raises(LossRequiresClosedLost):
        check_new_deal(Stage.discovery, loss_given=True)


@dataclass
class DealStub:
    owner_id: uuid.UUID
    stage: str


def test_closed_deals_take_no_strategy() -> None:
    ensure_deal_open(DealStub(uuid.uuid4(), "proposal"))
    with pytest.raises(DealClosed):
        ensure_deal_open(DealStub(uuid.uuid4(), "closed_won"))


def test_late_stages_come_from_the_settings() -> None:
    assert is_late("negotiation", ["negotiation"])
    assert not is_late("prospecting", ["negotiation"])
    assert is_late("proposal", ["proposal", "negotiation"])
