"""Organisation settings: read by every member, changed by admins."""

from __future__ import annotations

from app.db.models import Organization
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.changes import diff
from app.domain.errors import OidcIssuerTaken
from app.domain.members import Actor, ensure_admin
from app.domain.oidc import ensure_issuer_allowed, ensure_issuer_has_audience
from app.domain.versioning import ensure_version
from app.schemas.org_settings import SettingsUpdate


async def get_settings(uow: UnitOfWork, actor: Actor, *, for_update: bool = False) -> Organization:
    return await uow.organizations.get(actor.organization_id, for_update=for_update)


async def update_settings(
    uow: UnitOfWork,
    actor: Actor,
    data: SettingsUpdate,
    if_match: frozenset[int] | None,
    *,
    allow_insecure_oidc: bool = False,
) -> Organization:
    ensure_admin(actor)
    if data.oidc_issuer is not None:
        ensure_issuer_allowed(data.oidc_issuer, allow_insecure=allow_insecure_oidc)
    async with uow:
        org = await get_settings(uow, actor, for_update=True)
        ensure_version(org.version, if_match)
        changes = data.model_dump(mode="json", exclude_unset=True)
        changed = diff({k: getattr(org, k) for k in changes}, changes)
        if not changed:
            return org
        ensure_issuer_has_audience(
            changes.get("oidc_issuer", org.oidc_issuer), changes.get("oidc_audience", org.oidc_audience)
        )
        issuer = changes.get("oidc_issuer")
        if (
            "oidc_issuer" in changed
            and issuer is not None
            and await uow.organizations.issuer_taken(issuer, exclude=org.id)
        ):
            raise OidcIssuerTaken()
        for field, value in changes.items():
            setattr(org, field, value)
        org.version += 1
        org.updated_at = utcnow()
        await uow.flush(conflict=OidcIssuerTaken())
        await uow.events.append(
            organization_id=org.id,
            type="settings.updated",
            actor_id=actor.member_id,
            subject_type="organization",
            subject_id=org.id,
            data={"changes": changed},
        )
        await uow.commit()
    return org
