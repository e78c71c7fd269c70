"""API keys: admins issue and revoke them; a member sees their own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.db.models import ApiKey
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.api_keys import generate_key
from app.domain.errors import NotFound
from app.domain.members import Actor, ensure_admin, ensure_can_manage_keys_of
from app.schemas.api_keys import ApiKeyCreate
from app.services.members import get_member
from app.services.pagination import PageRequest, PageResult, after_id, build_page

LISTING = "api_keys"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str


async def issue_key(uow: UnitOfWork, actor: Actor, member_id: uuid.UUID, data: ApiKeyCreate) -> IssuedKey:
    async with uow:
        member = await get_member(uow, actor, member_id)
        ensure_admin(actor)
        new = generate_key()
        key = ApiKey(
            organization_id=actor.organization_id,
            member_id=member.id,
            prefix=new.prefix,
            key_hash=new.key_hash,
            label=data.label,
        )
        uow.add(key)
        await uow.flush()
        await uow.events.append(
            organization_id=actor.organization_id,
            type="api_key.created",
            actor_id=actor.member_id,
            subject_type="api_key",
            subject_id=key.id,
            data={"member_id": str(member.id), "prefix": key.prefix, "label": key.label},
        )
        await uow.commit()
    return IssuedKey(key=key, secret=new.secret)


async def list_keys(uow: UnitOfWork, actor: Actor, member_id: uuid.UUID, page: PageRequest) -> PageResult[ApiKey]:
    member = await get_member(uow, actor, member_id)
    ensure_can_manage_keys_of(actor, member.id)
    rows = await uow.api_keys.list_page(member.id, after=after_id(LISTING, page), limit=page.limit + 1)
    return build_page(LISTING, page, rows)


async def get_key(uow: UnitOfWork, actor: Actor, key_id: uuid.UUID) -> ApiKey:
    """Keys are visible to admins and to the member they act as; to others they do not exist."""
    key = await uow.api_keys.get(actor.organization_id, key_id)
    if key is None or not (actor.is_admin or key.member_id == actor.member_id):
        raise NotFound("No API key with this id.")
    return key


async def revoke_key(uow: UnitOfWork, actor: Actor, key_id: uuid.UUID) -> None:
    """An admin-only write: anyone else is refused before the key is looked up, so the answer
    says nothing about which keys exist."""
    ensure_admin(actor)
    async with uow:
        key = await get_key(uow, actor, key_id)
        if key.revoked_at is not None:
            return  # revoking twice is the same as once
        key.revoked_at = utcnow()
        await uow.flush()
        await uow.events.append(
            organization_id=actor.organization_id,
            type="api_key.revoked",
            actor_id=actor.member_id,
            subject_type="api_key",
            subject_id=key.id,
            data={"member_id": str(key.member_id), "prefix": key.prefix},
        )
        await uow.commit()
