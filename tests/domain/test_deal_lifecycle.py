"""Deal rules: who owns, who creates for whom, what a closed deal takes, late stages (changes: test_deal_changes)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.domain.deals import ensure_can_create_for, ensure_deal_open, ensure_owner_is_seller, is_late
from app.domain.errors import DealClosed, Forbidden, OwnerMustBeSeller
from app.domain.members import Actor, MemberRole

R = MemberRole


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
