"""Coaching analytics: who may see whose figures."""

from __future__ import annotations

import uuid

from app.domain.errors import Forbidden
from app.domain.members import Actor, MemberRole


def coaching_scope(actor: Actor, manager_id: uuid.UUID | None) -> uuid.UUID | None:
    """Heads of sales see every manager (or the one asked for); a manager sees only
    themself; nobody else reads coaching figures. Returns the one manager to report on,
    or None for all."""
    if actor.role == MemberRole.head_of_sales:
        return manager_id
    if actor.role == MemberRole.manager:
        if manager_id is not None and manager_id != actor.member_id:
            raise Forbidden("A manager sees only their own coaching figures.")
        return actor.member_id
    raise Forbidden("Coaching figures are for managers and heads of sales.")
