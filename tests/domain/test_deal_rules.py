"""Strategy and suggestion rules: the seller owns the strategy, others suggest, the owner decides."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.domain.deals import (
    SELF_OWNER,
    Access,
    ensure_can_create_for,
    ensure_can_suggest,
    ensure_can_write_strategy,
    ensure_owner_decides,
    ensure_owner_is_seller,
    sees_deal,
)
from app.domain.errors import DomainError, Forbidden, OwnerDecides, StrategyOwnedBySeller
from app.domain.members import Actor, MemberRole

R = MemberRole
OWNER = uuid.uuid4()


@dataclass(frozen=True)
class DealStub:
    """A minimal DealLike."""

    owner_id: uuid.UUID = OWNER
    stage: str = "negotiation"


def actor(role: MemberRole = R.seller, member_id: uuid.UUID | None = None) -> Actor:
    return Actor(
        member_id=member_id or uuid.uuid4(),
        organization_id=uuid.uuid4(),
        role=role,
        manager_id=None,
        api_key_id=uuid.uuid4(),
    )


OWNER_ACCESS = Access(is_owner=True, in_owner_line=False)
IN_LINE = Access(is_owner=False, in_owner_line=True)
OUTSIDE = Access(is_owner=False, in_owner_line=False)


# --- Access -----------------------------------------------------------------


def test_access_knows_the_owner_and_the_owners_line() -> None:
    manager_id = uuid.uuid4()
    assert Access.of(actor(member_id=OWNER), DealStub(), []) == OWNER_ACCESS
    assert Access.of(actor(R.manager, manager_id), DealStub(), [uuid.uuid4(), manager_id]) == IN_LINE
    assert Access.of(actor(R.manager), DealStub(), [uuid.uuid4()]) == OUTSIDE


# --- ensure_can_write_strategy ------------------------------------------------


def test_the_owner_writes_the_strategy() -> None:
    ensure_can_write_strategy(actor(member_id=OWNER), DealStub())


@pytest.mark.parametrize("role", list(MemberRole))
def test_nobody_but_the_owner_writes_the_strategy(role: MemberRole) -> None:
    with pytest.raises(StrategyOwnedBySeller) as info:
        ensure_can_write_strategy(actor(role), DealStub())
    assert info.value.code == "strategy_owned_by_seller"
    assert isinstance(info.value, Forbidden)


# --- ensure_can_suggest -------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "access", "is_coach"),
    [
        (R.manager, IN_LINE, False),
        (R.head_of_sales, OUTSIDE, False),
        (R.head_of_sales, IN_LINE, False),
        (R.seller, OUTSIDE, True),
        (R.manager, OUTSIDE, True),
    ],
)
def test_managers_in_line_heads_of_sales_and_coaches_suggest(role: MemberRole, access: Access, is_coach: bool) -> None:
    ensure_can_suggest(actor(role), access, is_coach)


@pytest.mark.parametrize(
    ("role", "access", "is_coach"),
    [
        (R.seller, OWNER_ACCESS, False),  # the owner edits the strategy instead
        (R.seller, OWNER_ACCESS, True),
        (R.seller, OUTSIDE, False),  # a peer, even one assigned as observer
        (R.manager, OUTSIDE, False),  # a manager outside the line and not coaching
        (R.admin, OUTSIDE, False),
        (R.admin, OUTSIDE, True),
        (R.integration, OUTSIDE, False),
        (R.integration, OUTSIDE, True),
    ],
)
def test_everyone_else_may_not_suggest(role: MemberRole, access: Access, is_coach: bool) -> None:
    with pytest.raises(Forbidden) as info:
        ensure_can_suggest(actor(role), access, is_coach)
    assert info.value.code == "forbidden"


# --- ensure_owner_decides -----------------------------------------------------


def test_the_owner_decides() -> None:
    ensure_owner_decides(actor(member_id=OWNER), DealStub())


@pytest.mark.parametrize("role", list(MemberRole))
def test_nobody_else_decides(role: MemberRole) -> None:
    with pytest.raises(OwnerDecides) as info:
        ensure_owner_decides(actor(role), DealStub())
    assert info.value.code == "owner_decides"
    assert isinstance(info.value, Forbidden)


@pytest.mark.parametrize(
    ("role", "is_owner", "assigned", "owner_in_line", "sees"),
    [
        (R.seller, True, False, False, True),
        (R.seller, False, True, False, True),
        (R.seller, False, False, True, False),  # a line is a manager's, never a seller's
        (R.seller, False, False, False, False),
        (R.manager, False, False, True, True),
        (R.manager, False, True, False, True),
        (R.manager, False, False, False, False),
        (R.head_of_sales, False, False, False, True),
        (R.admin, False, False, False, True),
        (R.integration, False, False, False, True),
    ],
)
def test_who_sees_a_deal(role: MemberRole, is_owner: bool, assigned: bool, owner_in_line: bool, sees: bool) -> None:
    assert sees_deal(actor(role), is_owner=is_owner, assigned=assigned, owner_in_line=owner_in_line) is sees


@pytest.mark.parametrize("role", list(MemberRole))
def test_only_the_self_owner_role_creates_its_own_deal_with_nothing_to_look_up(role: MemberRole) -> None:
    """SELF_OWNER is what the one-statement creation checks in SQL (the caller is the owner, in
    that role): for it, and for it alone, the owner rules hold for the caller's own deal."""
    actor = Actor(member_id=uuid.uuid4(), organization_id=uuid.uuid4(), role=role, manager_id=None, api_key_id=None)
    try:
        ensure_owner_is_seller(actor.as_owner())
        ensure_can_create_for(actor, actor.member_id, manages_owner=False)
    except DomainError:
        allowed = False
    else:
        allowed = True
    assert allowed == (role == SELF_OWNER)
