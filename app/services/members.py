"""Member use cases: admins manage members; everyone in the organisation reads them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from app.db.models import Member
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.changes import diff
from app.domain.errors import EmailTaken, InvalidReportingLine, NotFound
from app.domain.ids import uuid7
from app.domain.members import Actor, MemberRole, ensure_admin, ensure_reporting_line
from app.domain.versioning import ensure_version
from app.schemas.members import MemberCreate, MemberUpdate
from app.services.auth import Caller
from app.services.pagination import PageRequest, PageResult, after_id, build_page

LISTING = "members"


async def get_member(uow: UnitOfWork, actor: Actor, member_id: uuid.UUID) -> Member:
    member = await uow.members.get(actor.organization_id, member_id)
    if member is None:
        raise NotFound("No member with this id.")
    return member


async def read_member(uow: UnitOfWork, actor: Actor, member_id: uuid.UUID) -> Any:
    """A member as a plain row, for reading only."""
    row = await uow.members.get_row(actor.organization_id, member_id)
    if row is None:
        raise NotFound("No member with this id.")
    return row


async def list_members(
    uow: UnitOfWork,
    actor: Actor,
    page: PageRequest,
    *,
    role: MemberRole | None = None,
    manager_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> PageResult[Any]:
    rows = await uow.members.list_page(
        actor.organization_id,
        after=after_id(LISTING, page),
        limit=page.limit + 1,
        role=role,
        manager_id=manager_id,
        active=active,
    )
    return build_page(LISTING, page, rows)


async def _ensure_line(
    uow: UnitOfWork,
    actor: Actor,
    *,
    member_id: uuid.UUID,
    role: MemberRole,
    active: bool,
    manager_id: uuid.UUID | None,
    has_reports: bool,
) -> None:
    manager = None
    chain: list[uuid.UUID] = []
    if manager_id is not None:
        manager = await uow.members.get(actor.organization_id, manager_id)
        if manager is None:
            raise InvalidReportingLine("manager_id points to an unknown member.")
        chain = await uow.members.manager_chain(actor.organization_id, manager_id)
    ensure_reporting_line(
        member_id=member_id,
        role=role,
        active=active,
        manager=manager,
        manager_chain=chain,
        has_reports=has_reports,
    )


async def create_member(uow: UnitOfWork, actor: Actor, data: MemberCreate) -> Member:
    ensure_admin(actor)
    async with uow:
        await uow.members.lock_reporting_lines(actor.organization_id)
        member_id = uuid7()
        await _ensure_line(
            uow,
            actor,
            member_id=member_id,
            role=data.role,
            active=data.active,
            manager_id=data.manager_id,
            has_reports=False,
        )
        if await uow.members.email_taken(actor.organization_id, data.email):
            raise EmailTaken()
        member = Member(id=member_id, organization_id=actor.organization_id, **data.model_dump())
        uow.add(member)
        await uow.flush(conflict=EmailTaken())
        await uow.events.append(
            organization_id=actor.organization_id,
            type="member.created",
            actor_id=actor.member_id,
            subject_type="member",
            subject_id=member.id,
            data={"role": member.role, "manager_id": _str(member.manager_id)},
        )
        await uow.commit()
    return member


async def update_member(
    uow: UnitOfWork, actor: Actor, member_id: uuid.UUID, data: MemberUpdate, if_match: frozenset[int] | None
) -> Member:
    ensure_admin(actor)
    async with uow:
        await uow.members.lock_reporting_lines(actor.organization_id)
        member = await get_member(uow, actor, member_id)
        ensure_version(member.version, if_match)
        changes = data.model_dump(exclude_unset=True)
        before = {field: getattr(member, field) for field in changes}
        changed = diff(before, changes)
        if not changed:
            return member
        if {"role", "manager_id", "active"} & changed.keys():
            role = MemberRole(changes.get("role", member.role))
            active = changes.get("active", member.active)
            await _ensure_line(
                uow,
                actor,
                member_id=member.id,
                role=role,
                active=active,
                manager_id=changes.get("manager_id", member.manager_id),
                has_reports=await uow.members.has_active_reports(member.id),
            )
        if "email" in changed and await uow.members.email_taken(
            actor.organization_id, changes["email"], exclude=member.id
        ):
            raise EmailTaken()
        for field, value in changes.items():
            setattr(member, field, value)
        member.version += 1
        member.updated_at = utcnow()
        await uow.flush(conflict=EmailTaken())
        await uow.events.append(
            organization_id=actor.organization_id,
            type="member.updated",
            actor_id=actor.member_id,
            subject_type="member",
            subject_id=member.id,
            data={"changes": changed},
        )
        await uow.commit()
    return member


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


# --- what `?expand=members` shows of the members a response names ----------------------


async def member_refs(uow: UnitOfWork, actor: Actor, ids: Iterable[uuid.UUID | None]) -> list[Any]:
    """Id, name and role of these members of the actor's organisation, in id order: one query,
    none when there are no ids."""
    wanted = _wanted(ids)
    return await uow.members.refs(actor.organization_id, wanted) if wanted else []


async def read_member_refs(
    caller: Caller, organization_id: uuid.UUID | None, ids: Iterable[uuid.UUID | None]
) -> list[Any]:
    """``member_refs`` for a hot read, outside any transaction; ``organization_id`` (the one the
    read found the caller's key in) is None only when there are no ids (an empty page)."""
    wanted = _wanted(ids)
    if not wanted or organization_id is None:
        return []
    return list(await caller.reads.members.refs(organization_id, wanted))


def _wanted(ids: Iterable[uuid.UUID | None]) -> list[uuid.UUID]:
    return sorted({uuid.UUID(str(i)) for i in ids if i is not None})
