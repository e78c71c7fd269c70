"""Authentication: an API key becomes the member it acts as, in one query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.db.reads import Reads
from app.domain.api_keys import hash_key, looks_like_key
from app.domain.errors import Unauthenticated
from app.domain.members import Actor, MemberRole


@dataclass(frozen=True, slots=True)
class Caller:
    """A request's API key, not yet checked, as its lookup hash; and the reads that check it
    (in the same statement as the read they serve)."""

    reads: Reads
    key_hash: str

    @classmethod
    def of(cls, reads: Reads, token: str | None) -> Caller:
        """401 at once when there is no key, or something that is not shaped like one."""
        if not token or not looks_like_key(token):
            raise Unauthenticated()
        return cls(reads, hash_key(token))


@dataclass(frozen=True, slots=True)
class AuthContext:
    actor: Actor
    row: Any  # the member's columns, the key id and the organisation's name


async def authenticate(caller: Caller) -> AuthContext:
    """One round trip, outside any transaction: the key, its member and organisation."""
    row = await caller.reads.members.by_key(caller.key_hash)
    if row is None:
        raise Unauthenticated()
    return context_of(row)


def context_of(row: Any) -> AuthContext:
    """The authenticated caller from the key's member row (``ACTOR_BY_KEY``'s columns)."""
    actor = Actor(
        member_id=row.id,
        organization_id=row.organization_id,
        role=MemberRole(row.role),
        manager_id=row.manager_id,
        api_key_id=row.api_key_id,
    )
    return AuthContext(actor=actor, row=row)
