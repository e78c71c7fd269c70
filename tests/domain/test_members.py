"""Members: reporting-line rules, admin checks and key-management permissions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.domain.errors import Forbidden, InvalidReportingLine
from app.domain.members import (
    Actor,
    MemberRole,
    ensure_admin,
    ensure_can_manage_keys_of,
    ensure_reporting_line,
)

R = MemberRole


@dataclass(frozen=True)
class Node:
    """A minimal LineNode."""

    role: MemberRole
    active: bool = True
    id: uuid.UUID = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.id is None:
            object.__setattr__(self, "id", uuid.uuid4())


def check(
    *,
    member_id: uuid.UUID | None = None,
    role: MemberRole = R.seller,
    active: bool = True,
    manager: Node | None = None,
    manager_chain: list[uuid.UUID] | tuple[uuid.UUID, ...] = (),
    has_reports: bool = False,
) -> None:
    ensure_reporting_line(
        member_id=member_id or uuid.uuid4(),
        role=role,
        active=active,
        manager=manager,
        manager_chain=manager_chain,
        has_reports=has_reports,
    )


# --- ensure_reporting_line ---------------------------------------------------


@pytest.mark.parametrize("role", [R.seller, R.manager, R.head_of_sales])
@pytest.mark.parametrize("manager_role", [R.manager, R.head_of_sales])
def test_line_roles_may_report_to_an_active_line_manager(role: MemberRole, manager_role: MemberRole) -> None:
    check(role=role, manager=Node(manager_role), manager_chain=[uuid.uuid4()])


@pytest.mark.parametrize("manager_role", [R.seller, R.admin, R.integration])
def test_manager_must_be_a_manager_or_head_of_sales(manager_role: MemberRole) -> None:
    with pytest.raises(InvalidReportingLine, match="manager or head_of_sales"):
        check(role=R.seller, manager=Node(manager_role))


@pytest.mark.parametrize("manager_role", [R.manager, R.head_of_sales])
def test_manager_must_be_active(manager_role: MemberRole) -> None:
    with pytest.raises(InvalidReportingLine, match="inactive"):
        check(role=R.seller, manager=Node(manager_role, active=False))


def test_reporting_to_oneself_is_a_cycle() -> None:
    me = uuid.uuid4()
    with pytest.raises(InvalidReportingLine, match="cycle"):
        check(member_id=me, role=R.manager, manager=Node(R.manager, id=me))


@pytest.mark.parametrize("position", [0, 1, 2])
def test_member_in_the_managers_chain_is_a_cycle(position: int) -> None:
    me = uuid.uuid4()
    chain = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
    chain[position] = me
    with pytest.raises(InvalidReportingLine, match="cycle"):
        check(member_id=me, role=R.manager, manager=Node(R.manager), manager_chain=chain)


def test_manager_chain_may_be_any_iterable() -> None:
    me = uuid.uuid4()
    with pytest.raises(InvalidReportingLine, match="cycle"):
        ensure_reporting_line(
            member_id=me,
            role=R.manager,
            active=True,
            manager=Node(R.head_of_sales),
            manager_chain=(x for x in [uuid.uuid4(), me]),
            has_reports=False,
        )


@pytest.mark.parametrize("role", [R.admin, R.integration])
def test_roles_outside_lines_have_no_manager(role: MemberRole) -> None:
    with pytest.raises(InvalidReportingLine, match="has no manager"):
        check(role=role, manager=Node(R.manager))


@pytest.mark.parametrize("role", list(MemberRole))
@pytest.mark.parametrize("active", [True, False])
def test_no_manager_is_fine_for_any_role(role: MemberRole, active: bool) -> None:
    check(role=role, active=active, manager=None)


@pytest.mark.parametrize("new_role", [R.seller, R.admin, R.integration])
def test_member_with_reports_cannot_leave_the_manager_roles(new_role: MemberRole) -> None:
    with pytest.raises(InvalidReportingLine, match="has reports"):
        check(role=new_role, has_reports=True)


@pytest.mark.parametrize("role", [R.manager, R.head_of_sales])
def test_member_with_reports_cannot_be_deactivated(role: MemberRole) -> None:
    with pytest.raises(InvalidReportingLine, match="has reports"):
        check(role=role, active=False, has_reports=True)


@pytest.mark.parametrize("role", [R.manager, R.head_of_sales])
@pytest.mark.parametrize("with_manager", [False, True])
def test_member_with_reports_may_stay_a_line_manager(role: MemberRole, with_manager: bool) -> None:
    check(role=role, has_reports=True, manager=Node(R.head_of_sales) if with_manager else None)


def test_deactivating_a_member_without_reports_is_fine() -> None:
    check(role=R.manager, active=False, has_reports=False)


# --- Actor, ensure_admin, ensure_can_manage_keys_of --------------------------


def actor(role: MemberRole, member_id: uuid.UUID | None = None) -> Actor:
    return Actor(
        member_id=member_id or uuid.uuid4(),
        organization_id=uuid.uuid4(),
        role=role,
        manager_id=None,
        api_key_id=uuid.uuid4(),
    )


@pytest.mark.parametrize("role", list(MemberRole))
def test_actor_is_admin_only_for_admins(role: MemberRole) -> None:
    assert actor(role).is_admin is (role is R.admin)


@pytest.mark.parametrize(
    ("role", "whole_org"),
    [(R.seller, False), (R.manager, False), (R.head_of_sales, True), (R.admin, True), (R.integration, True)],
)
def test_actor_sees_whole_org(role: MemberRole, whole_org: bool) -> None:
    assert actor(role).sees_whole_org is whole_org


def test_actor_is_immutable() -> None:
    a = actor(R.seller)
    with pytest.raises(AttributeError):
        a.role = R.admin  # type: ignore[misc]


def test_ensure_admin_accepts_admin() -> None:
    ensure_admin(actor(R.admin))


@pytest.mark.parametrize("role", [r for r in MemberRole if r is not R.admin])
def test_ensure_admin_refuses_everyone_else(role: MemberRole) -> None:
    with pytest.raises(Forbidden):
        ensure_admin(actor(role))


def test_admin_manages_anyones_keys() -> None:
    ensure_can_manage_keys_of(actor(R.admin), uuid.uuid4())


@pytest.mark.parametrize("role", list(MemberRole))
def test_member_manages_own_keys(role: MemberRole) -> None:
    me = uuid.uuid4()
    ensure_can_manage_keys_of(actor(role, me), me)


@pytest.mark.parametrize("role", [r for r in MemberRole if r is not R.admin])
def test_non_admin_cannot_manage_someone_elses_keys(role: MemberRole) -> None:
    with pytest.raises(Forbidden):
        ensure_can_manage_keys_of(actor(role), uuid.uuid4())
