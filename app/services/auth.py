"""Authentication: an API key, or a token from the organisation's identity provider, becomes
the member it acts as, in one query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

from app.db.reads import Reads
from app.domain.api_keys import hash_key, looks_like_key
from app.domain.errors import Unauthenticated
from app.domain.members import Actor, MemberRole
from app.domain.oidc import SignedIn, looks_like_token
from app.services.oidc import IdentityProviders


@dataclass(frozen=True, slots=True)
class Caller:
    """A request's credential and the reads that check it (in the same statement as the read
    they serve): an API key, not yet checked, as its lookup hash; or a token, already verified,
    as the organisation's issuer and audience and the email it names (not yet matched to a
    member)."""

    reads: Reads
    credential: str | SignedIn
    member: Any = None  # its member's row when already read for this request (an idempotent POST's claim)

    @classmethod
    def of(cls, reads: Reads, token: str | None) -> Caller:
        """An API key's caller; 401 at once when there is no key, or something that is not
        shaped like one."""
        if not token or not looks_like_key(token):
            raise Unauthenticated()
        return cls(reads, hash_key(token))


def is_sign_in_token(token: str | None) -> TypeGuard[str]:
    """Whether a bearer token is a token from an identity provider (else: an API key, or nothing
    acceptable)."""
    return token is not None and looks_like_token(token) and not looks_like_key(token)


async def sign_in(
    reads: Reads, providers: IdentityProviders, token: str, *, signed_in: SignedIn | None = None
) -> Caller:
    """The caller of a token from an organisation's identity provider, verified here (or given as
    ``signed_in`` when that was done already); its member is found by the read it serves."""
    return Caller(reads, signed_in or await providers.sign_in(token))


@dataclass(frozen=True, slots=True)
class AuthContext:
    actor: Actor
    row: Any  # the member's columns, the key id (None for a token) and the organisation's name


async def authenticate(caller: Caller) -> AuthContext:
    """One round trip, outside any transaction: the caller's member and organisation (none when
    the request read them already)."""
    row = caller.member if caller.member is not None else await caller.reads.members.of(caller.credential)
    if row is None:
        raise unknown(caller)
    return context_of(row)


def unknown(caller: Caller) -> Unauthenticated:
    """The refusal of a credential that names no active member."""
    if isinstance(caller.credential, SignedIn):
        return Unauthenticated("The token's email names no active member of the organisation.")
    return Unauthenticated()


def context_of(row: Any) -> AuthContext:
    """The authenticated caller from its member row (``ACTOR_BY_KEY``'s columns)."""
    actor = Actor(
        member_id=row.id,
        organization_id=row.organization_id,
        role=MemberRole(row.role),
        manager_id=row.manager_id,
        api_key_id=row.api_key_id,
    )
    return AuthContext(actor=actor, row=row)


def actor_of(row: Any) -> Actor:
    """The caller found beside a row it reads (app/db/repositories/auth.py ``actor_columns``)."""
    return Actor(
        member_id=row.actor_id,
        organization_id=row.actor_organization_id,
        role=MemberRole(row.actor_role),
        manager_id=row.actor_manager_id,
        api_key_id=row.actor_api_key_id,
    )
