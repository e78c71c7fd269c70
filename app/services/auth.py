"""Authentication: an API key becomes the member it acts as, in one query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.repositories import auth as repo
from app.domain.api_keys import hash_key, looks_like_key
from app.domain.errors import Unauthenticated
from app.domain.members import Actor, MemberRole


@dataclass(frozen=True, slots=True)
class AuthContext:
    actor: Actor
    row: sa.Row[Any]  # the member's columns, the key id and the organisation's name


async def authenticate(engine: AsyncEngine, token: str | None) -> AuthContext:
    """One round trip: the key, its member and organisation, outside any transaction."""
    if not token or not looks_like_key(token):
        raise Unauthenticated()
    row = await repo.find_actor_row(engine, hash_key(token))
    if row is None:
        raise Unauthenticated()
    actor = Actor(
        member_id=row.id,
        organization_id=row.organization_id,
        role=MemberRole(row.role),
        manager_id=row.manager_id,
        api_key_id=row.api_key_id,
    )
    return AuthContext(actor=actor, row=row)
