"""The queries that turn an API key, or a verified sign-in token, into the member it acts as."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKey, Member, Organization
from app.domain.oidc import SignedIn

# Key, member and organisation in one round trip: auth is on every request's path
# (run by app/db/repositories/reads.py, in autocommit).
ACTOR_BY_KEY = (
    sa.select(
        ApiKey.__table__.c.id.label("api_key_id"),
        *Member.__table__.c,
        Organization.__table__.c.name.label("organization_name"),
    )
    .select_from(ApiKey.__table__)
    .join(Member.__table__, Member.__table__.c.id == ApiKey.__table__.c.member_id)
    .join(Organization.__table__, Organization.__table__.c.id == Member.__table__.c.organization_id)
    .where(
        ApiKey.__table__.c.key_hash == sa.bindparam("key_hash"),
        ApiKey.__table__.c.revoked_at.is_(None),
        Member.__table__.c.active.is_(True),
    )
)


# A verified token's member: the active member, with the token's email, of the organisation whose
# identity provider issued the token for the audience it was verified for. The same columns as
# ACTOR_BY_KEY, with no key. The organisation's settings are read again here, in the statement that
# authenticates: a token verified just before an admin changed them acts as nobody.
ACTOR_BY_TOKEN = (
    sa.select(
        sa.null().label("api_key_id"),
        *Member.__table__.c,
        Organization.__table__.c.name.label("organization_name"),
    )
    .select_from(Organization.__table__)
    .join(Member.__table__, Member.__table__.c.organization_id == Organization.__table__.c.id)
    .where(
        Organization.__table__.c.oidc_issuer == sa.bindparam("issuer"),
        Organization.__table__.c.oidc_audience == sa.bindparam("audience"),
        Member.__table__.c.email == sa.bindparam("email"),
        Member.__table__.c.active.is_(True),
    )
)


def actor_statement(credential: str | SignedIn) -> sa.Select[Any]:
    """The statement that reads the caller's member row: an API key by its hash
    (``ACTOR_BY_KEY``), a token by what it was verified for (``ACTOR_BY_TOKEN``)."""
    return ACTOR_BY_KEY if isinstance(credential, str) else ACTOR_BY_TOKEN


def actor_columns(me: sa.CTE) -> list[sa.Label[Any]]:
    """What makes an Actor (app/services/auth.py ``actor_of``), from ``actor_statement`` as ``me``,
    labelled apart from the columns of a row read beside it."""
    return [
        me.c.id.label("actor_id"),
        me.c.organization_id.label("actor_organization_id"),
        me.c.role.label("actor_role"),
        me.c.manager_id.label("actor_manager_id"),
        me.c.api_key_id.label("actor_api_key_id"),
    ]


def actor_params(credential: str | SignedIn) -> dict[str, Any]:
    """The parameters that name the caller in the statements that authenticate it."""
    if isinstance(credential, str):
        return {"key_hash": credential}
    return {"issuer": credential.issuer, "audience": credential.audience, "email": credential.email}


_MEMBER_BY_KEY = sa.select(ApiKey.__table__.c.member_id).where(
    ApiKey.__table__.c.key_hash == sa.bindparam("key_hash"), ApiKey.__table__.c.revoked_at.is_(None)
)


async def find_member_id_by_key(session: AsyncSession, key_hash: str) -> Any | None:
    return (await session.execute(_MEMBER_BY_KEY, {"key_hash": key_hash})).scalar_one_or_none()
