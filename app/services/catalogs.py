"""Catalog use cases: every member reads the catalogs; admins edit them."""

from __future__ import annotations

import enum
from typing import Any

from app.db.models import LossReason, Skill
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.catalogs import ensure_known_skills
from app.domain.changes import diff
from app.domain.errors import CodeTaken, NotFound
from app.domain.members import Actor, ensure_admin
from app.domain.versioning import ensure_version
from app.schemas.common import RequestModel
from app.services.pagination import PageRequest, PageResult, build_page

Entry = Skill | LossReason


class Catalog(enum.Enum):
    """The organisation's editable catalogs."""

    skills = "skills"
    loss_reasons = "loss_reasons"


_MODEL: dict[Catalog, type[Skill] | type[LossReason]] = {Catalog.skills: Skill, Catalog.loss_reasons: LossReason}

_SUBJECT: dict[type[Skill] | type[LossReason], str] = {Skill: "skill", LossReason: "loss_reason"}


async def list_entries(
    uow: UnitOfWork, actor: Actor, catalog: Catalog, page: PageRequest, active: bool | None
) -> PageResult[Entry]:
    model = _MODEL[catalog]
    listing = _SUBJECT[model] + "s"
    key = page.key(listing, 1)
    after = None if key is None else str(key[0])
    rows = await uow.catalogs.list_page(model, actor.organization_id, after=after, limit=page.limit + 1, active=active)
    return build_page(listing, page, rows, key=lambda e: [e.code])


async def get_entry(uow: UnitOfWork, actor: Actor, catalog: Catalog, code: str) -> Entry:
    model = _MODEL[catalog]
    entry = await uow.catalogs.get(model, actor.organization_id, code)
    if entry is None:
        raise NotFound(f"No {_SUBJECT[model].replace('_', ' ')} with this code.")
    return entry


async def _ensure_skills(uow: UnitOfWork, actor: Actor, fields: dict[str, Any]) -> None:
    skills = fields.get("suggested_skills")
    if skills:
        known = await uow.catalogs.active_skill_codes(actor.organization_id, skills)
        ensure_known_skills(skills, known)


async def create_entry(uow: UnitOfWork, actor: Actor, catalog: Catalog, data: RequestModel) -> Entry:
    model = _MODEL[catalog]
    ensure_admin(actor)
    fields = data.model_dump()
    async with uow:
        if await uow.catalogs.code_taken(model, actor.organization_id, fields["code"]):
            raise CodeTaken()
        await _ensure_skills(uow, actor, fields)
        if "suggested_skills" in fields:
            fields["suggested_skills"] = list(dict.fromkeys(fields["suggested_skills"]))
        entry = model(organization_id=actor.organization_id, **fields)
        uow.add(entry)
        await uow.flush(conflict=CodeTaken())
        await _record(uow, actor, model, entry, "created", fields)
        await uow.commit()
    return entry


async def update_entry(
    uow: UnitOfWork, actor: Actor, catalog: Catalog, code: str, data: RequestModel, if_match: frozenset[int] | None
) -> Entry:
    model = _MODEL[catalog]
    ensure_admin(actor)
    async with uow:
        entry = await get_entry(uow, actor, catalog, code)
        ensure_version(entry.version, if_match)
        changes = data.model_dump(exclude_unset=True)
        if "suggested_skills" in changes:
            changes["suggested_skills"] = list(dict.fromkeys(changes["suggested_skills"]))
        changed = diff({k: getattr(entry, k) for k in changes}, changes)
        if not changed:
            return entry
        await _ensure_skills(uow, actor, changes)
        for field, value in changes.items():
            setattr(entry, field, value)
        entry.version += 1
        entry.updated_at = utcnow()
        await uow.flush()
        await _record(uow, actor, model, entry, "updated", {"changes": changed})
        await uow.commit()
    return entry


async def _record(
    uow: UnitOfWork, actor: Actor, model: type[Entry], entry: Entry, verb: str, data: dict[str, Any]
) -> None:
    await uow.events.append(
        organization_id=actor.organization_id,
        type=f"{_SUBJECT[model]}.{verb}",
        actor_id=actor.member_id,
        subject_type=_SUBJECT[model],
        subject_id=entry.id,
        data={"code": entry.code, **{k: v for k, v in data.items() if k != "code"}},
    )
