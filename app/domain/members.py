"""Members, roles and reporting lines: who may do what in an organisation."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from app.domain.errors import Forbidden, InvalidReportingLine


class MemberRole(enum.StrEnum):
    seller = "seller"
    manager = "manager"
    head_of_sales = "head_of_sales"
    admin = "admin"
    integration = "integration"


# Roles whose members can have reports.
LINE_MANAGER_ROLES = frozenset({MemberRole.manager, MemberRole.head_of_sales})
# Roles that take part in a reporting line.
LINE_ROLES = frozenset({MemberRole.seller, *LINE_MANAGER_ROLES})
# Roles that see the whole organisation.
ORG_WIDE_ROLES = frozenset({MemberRole.head_of_sales, MemberRole.admin, MemberRole.integration})


@dataclass(frozen=True, slots=True)
class Actor:
    """The member an API key (or a token from the organisation's identity provider) acts as,
    for the length of one request."""

    member_id: uuid.UUID
    organization_id: uuid.UUID
    role: MemberRole
    manager_id: uuid.UUID | None
    api_key_id: uuid.UUID | None  # None when signed in with a token

    @property
    def is_admin(self) -> bool:
        return self.role is MemberRole.admin

    @property
    def sees_whole_org(self) -> bool:
        return self.role in ORG_WIDE_ROLES

    def as_owner(self) -> OwnerFacts:
        """The acting member as a deal's would-be owner: active (authentication found it so), and
        not in its own line."""
        return OwnerFacts(self.member_id, self.role, active=True, in_line=False)


@dataclass(frozen=True, slots=True)
class OwnerFacts:
    """What the owner rules read about a member named as a deal's owner."""

    id: uuid.UUID
    role: MemberRole
    active: bool
    in_line: bool


class LineNode(Protocol):
    """What a reporting-line rule reads about a member."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def role(self) -> MemberRole: ...
    @property
    def active(self) -> bool: ...


def ensure_admin(actor: Actor) -> None:
    """Only admins manage members, keys, catalogs and settings."""
    if not actor.is_admin:
        raise Forbidden("Only an admin may do this.")


def ensure_can_manage_keys_of(actor: Actor, member_id: uuid.UUID) -> None:
    """Admins manage every member's keys; a member may see their own."""
    if not actor.is_admin and actor.member_id != member_id:
        raise Forbidden("Only an admin or the key's own member may do this.")


def ensure_reporting_line(
    *,
    member_id: uuid.UUID,
    role: MemberRole,
    active: bool,
    manager: LineNode | None,
    manager_chain: Iterable[uuid.UUID],
    has_reports: bool,
) -> None:
    """A member's line is valid: a seller or manager reports to an active manager or
    head of sales, nobody reports to themselves through the chain, other roles stand
    outside lines, and nobody is left reporting to someone who is no longer a manager.

    ``manager_chain`` lists the proposed manager's own managers, nearest first.
    """
    if has_reports and (role not in LINE_MANAGER_ROLES or not active):
        raise InvalidReportingLine(
            "This member has reports; move them to another manager before changing the role or deactivating the member."
        )
    if manager is None:
        return
    if role not in LINE_ROLES:
        raise InvalidReportingLine(f"A member with role {role.value} has no manager.")
    if manager.id == member_id or member_id in set(manager_chain):
        raise InvalidReportingLine("The reporting line would form a cycle.")
    if manager.role not in LINE_MANAGER_ROLES:
        raise InvalidReportingLine("manager_id must point to a manager or head_of_sales.")
    if not manager.active:
        raise InvalidReportingLine("manager_id points to an inactive member.")
