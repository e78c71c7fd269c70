"""Creating an organisation with its first admin and key (the `dealcoach bootstrap` command)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.db.models import ApiKey, Member, Organization
from app.db.uow import UnitOfWork
from app.domain.api_keys import generate_key
from app.domain.members import MemberRole
from app.domain.org_settings import (
    DEFAULT_LATE_STAGES,
    DEFAULT_MAX_IMPROVEMENTS_PER_OBSERVATION,
    DEFAULT_REVIEW_DUE_DAYS,
)
from app.schemas.members import MemberCreate


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    organization_id: uuid.UUID
    member_id: uuid.UUID
    api_key: str


async def bootstrap_organization(uow: UnitOfWork, *, org_name: str, admin_email: str, admin_name: str) -> Bootstrapped:
    admin = MemberCreate(name=admin_name, email=admin_email, role=MemberRole.admin)
    async with uow:
        org = Organization(
            name=org_name,
            max_improvements_per_observation=DEFAULT_MAX_IMPROVEMENTS_PER_OBSERVATION,
            review_due_days=DEFAULT_REVIEW_DUE_DAYS,
            late_stages=[str(s) for s in DEFAULT_LATE_STAGES],
        )
        uow.add(org)
        await uow.flush()
        await uow.events.create_sequence(org.id)
        member = Member(organization_id=org.id, **admin.model_dump())
        uow.add(member)
        await uow.flush()  # the tables have no ORM relationships to order inserts by
        uow.catalogs.seed_defaults(org.id)
        new = generate_key()
        uow.add(
            ApiKey(
                organization_id=org.id, member_id=member.id, prefix=new.prefix, key_hash=new.key_hash, label="bootstrap"
            )
        )
        await uow.flush()
        await uow.events.append(
            organization_id=org.id,
            type="organization.created",
            actor_id=None,
            subject_type="organization",
            subject_id=org.id,
            data={"name": org.name},
        )
        await uow.events.append(
            organization_id=org.id,
            type="member.created",
            actor_id=None,
            subject_type="member",
            subject_id=member.id,
            data={"role": member.role, "manager_id": None},
        )
        await uow.commit()
    return Bootstrapped(organization_id=org.id, member_id=member.id, api_key=new.secret)
