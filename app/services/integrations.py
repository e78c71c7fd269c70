"""CRM integrations (admin only): configure one per provider, and see the inbox of what it sent.
Receiving is app/services/crm_inbox.py; applying, app/services/inbox_applier.py."""

from __future__ import annotations

from typing import Any

from app.db.models import Integration, Member
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.errors import AccountIdTaken
from app.domain.ids import uuid7
from app.domain.integrations import (
    PROVIDER_NAMES,
    InboxOutcome,
    Provider,
    ensure_credentials,
    ensure_loss_reason_field,
    ensure_loss_reason_map,
    ensure_owner_map,
)
from app.domain.members import Actor, MemberRole, ensure_admin
from app.domain.versioning import ensure_version
from app.schemas.integrations import IntegrationUpdate
from app.services.pagination import PageRequest, PageResult, after_id, build_page

INBOX = "integration_events"
# What the configuration's events name as changed: never the credentials' values.
_CONFIG_FIELDS = (
    "enabled",
    "account_id",
    "stage_map",
    "owner_map",
    "loss_reason_map",
    "default_currency",
    "loss_reason_field",
)


async def get_integration(uow: UnitOfWork, actor: Actor, provider: Provider) -> Integration | None:
    """The provider's integration, or None before it is first saved."""
    ensure_admin(actor)
    return await uow.integrations.get(actor.organization_id, provider)


async def put_integration(
    uow: UnitOfWork, actor: Actor, provider: Provider, data: IntegrationUpdate, if_match: frozenset[int] | None
) -> Integration:
    """Save the whole configuration; the first save also creates the integration's member."""
    ensure_admin(actor)
    sent_credentials = None if data.credentials is None else data.credentials.model_dump()
    credentials = None if sent_credentials is None else ensure_credentials(provider, sent_credentials)
    ensure_loss_reason_field(provider, data.loss_reason_field)
    owner_map = {crm_user: member_id for crm_user, member_id in data.owner_map.items()}
    async with uow:
        integration = await uow.integrations.get(actor.organization_id, provider, for_update=True)
        ensure_version(0 if integration is None else integration.version, if_match)
        if integration is None and credentials is None:
            ensure_credentials(provider, {})  # the first save needs them: refused, naming each
        members = await uow.members.owners(actor.organization_id, actor.member_id, owner_map.values())
        ensure_owner_map(owner_map, members)
        reasons = await uow.catalogs.loss_reasons(actor.organization_id, data.loss_reason_map.values())
        ensure_loss_reason_map(data.loss_reason_map, {code for code, r in reasons.items() if r.active})
        if await uow.integrations.account_taken(provider, data.account_id, actor.organization_id):
            raise AccountIdTaken(f"Another organisation's {PROVIDER_NAMES[provider]} integration uses this account_id.")

        config: dict[str, Any] = {
            "enabled": data.enabled,
            "account_id": data.account_id,
            "stage_map": {key: str(stage) for key, stage in data.stage_map.items()},
            "owner_map": {key: str(member_id) for key, member_id in owner_map.items()},
            "loss_reason_map": dict(data.loss_reason_map),
            "default_currency": data.default_currency,
            "loss_reason_field": data.loss_reason_field,
        }
        now = utcnow()
        if integration is None:
            member = await _create_member(uow, actor, provider)
            integration = Integration(
                organization_id=actor.organization_id,
                provider=provider,
                member_id=member.id,
                credentials=credentials or {},
                created_at=now,
                updated_at=now,
                **config,
            )
            uow.add(integration)
            await uow.flush(conflict=AccountIdTaken())
            await _event(uow, actor, integration, "created", {"fields": sorted(config)})
            await uow.commit()
            return integration

        changed = sorted(key for key in _CONFIG_FIELDS if getattr(integration, key) != config[key])
        credentials_changed = credentials is not None and credentials != integration.credentials
        if not changed and not credentials_changed:
            return integration
        for key, value in config.items():
            setattr(integration, key, value)
        if credentials_changed:
            integration.credentials = credentials or {}
        integration.version += 1
        integration.updated_at = now
        await uow.flush(conflict=AccountIdTaken())
        data_changed: dict[str, Any] = {"fields": changed}
        if credentials_changed:
            data_changed["credentials_changed"] = True
        await _event(uow, actor, integration, "updated", data_changed)
        await uow.commit()
    return integration


async def _create_member(uow: UnitOfWork, actor: Actor, provider: Provider) -> Member:
    """The integration's own member: the CRM's writes are its writes, recorded like anyone's."""
    member_id = uuid7()
    member = Member(
        id=member_id,
        organization_id=actor.organization_id,
        name=f"{PROVIDER_NAMES[provider]} integration",
        email=f"{provider.value}-integration-{member_id.hex[-12:]}@integrations.dealcoach.invalid",
        role=MemberRole.integration,
    )
    uow.add(member)
    await uow.flush()
    await uow.events.append(
        organization_id=actor.organization_id,
        type="member.created",
        actor_id=actor.member_id,
        subject_type="member",
        subject_id=member.id,
        data={"role": member.role, "manager_id": None},
    )
    return member


async def list_events(
    uow: UnitOfWork, actor: Actor, provider: Provider, page: PageRequest, outcome: InboxOutcome | None
) -> PageResult[Any]:
    """What the provider sent, newest first."""
    ensure_admin(actor)
    rows = await uow.integrations.list_page(
        actor.organization_id, provider, outcome=outcome, after=after_id(INBOX, page), limit=page.limit + 1
    )
    return build_page(INBOX, page, rows)


async def _event(uow: UnitOfWork, actor: Actor, integration: Integration, verb: str, data: dict[str, Any]) -> None:
    await uow.events.record(
        actor,
        f"integration.{verb}",
        subject_type="integration",
        subject_id=integration.id,
        data={"provider": integration.provider, **data},
    )
