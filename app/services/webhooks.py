"""Webhook endpoints (admin only): register, change, rotate the secret, ping, and see and
retry deliveries. Sending is the dispatcher's job (app/services/webhook_dispatcher.py)."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from app.db.models import WebhookDelivery, WebhookEndpoint
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.changes import diff
from app.domain.errors import DeliveryNotFailed, NotFound
from app.domain.ids import uuid7
from app.domain.members import Actor, ensure_admin
from app.domain.versioning import ensure_version
from app.domain.webhooks import (
    PING,
    PREVIOUS_SECRET_GRACE,
    DeliveryStatus,
    ensure_addresses_allowed,
    ensure_known_event_types,
    ensure_secret_valid,
    new_secret,
    parse_target,
)
from app.schemas.webhooks import WebhookEndpointCreate, WebhookEndpointUpdate
from app.services.pagination import PageRequest, PageResult, after_id, build_page

ENDPOINTS = "webhook_endpoints"
DELIVERIES = "webhook_deliveries"
RESOLVE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a host resolves to, without blocking the event loop; none when it does not.
    An IP literal is its own address: no resolver round trip (a thread hop per attempt)."""
    if (literal := _ip_literal(host)) is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=RESOLVE_TIMEOUT)
    except (OSError, TimeoutError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@functools.lru_cache(maxsize=4096)
def _ip_literal(host: str) -> str | None:
    """The address a host names when it is an IP literal (parsed once: a literal never changes)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def ensure_url_allowed(url: str, *, allow_private: bool) -> None:
    """An https URL whose host resolves to public addresses only (checked again before each attempt)."""
    target = parse_target(url, allow_private=allow_private)
    ensure_addresses_allowed(await resolve(target.host, target.port), allow_private=allow_private)


async def create_endpoint(
    uow: UnitOfWork, actor: Actor, data: WebhookEndpointCreate, *, allow_private: bool
) -> EndpointWithSecret:
    ensure_admin(actor)
    patterns = ensure_known_event_types(data.event_types)
    if data.secret is not None:
        ensure_secret_valid(data.secret)
    await ensure_url_allowed(data.url, allow_private=allow_private)
    secret = data.secret or new_secret()
    async with uow:
        endpoint = WebhookEndpoint(
            organization_id=actor.organization_id,
            url=data.url,
            event_types=patterns,
            description=data.description,
            secret=secret,
        )
        uow.add(endpoint)
        await uow.flush()
        await uow.webhooks.replace_subscriptions(endpoint)
        await _event(uow, actor, endpoint, "created", {"url": endpoint.url, "event_types": patterns})
        await uow.commit()
    return EndpointWithSecret(endpoint, secret)


async def list_endpoints(uow: UnitOfWork, actor: Actor, page: PageRequest) -> PageResult[WebhookEndpoint]:
    ensure_admin(actor)
    rows = await uow.webhooks.list_endpoints(
        actor.organization_id, after=after_id(ENDPOINTS, page), limit=page.limit + 1
    )
    return build_page(ENDPOINTS, page, rows)


async def get_endpoint(
    uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> WebhookEndpoint:
    ensure_admin(actor)
    endpoint = await uow.webhooks.get_endpoint(actor.organization_id, endpoint_id, for_update=for_update)
    if endpoint is None:
        raise NotFound("No webhook endpoint with this id.")
    return endpoint


async def update_endpoint(
    uow: UnitOfWork,
    actor: Actor,
    endpoint_id: uuid.UUID,
    data: WebhookEndpointUpdate,
    if_match: frozenset[int] | None,
    *,
    allow_private: bool,
) -> WebhookEndpoint:
    ensure_admin(actor)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "event_types" in changes:
        changes["event_types"] = ensure_known_event_types(changes["event_types"])
    if "url" in changes:
        await ensure_url_allowed(changes["url"], allow_private=allow_private)
    async with uow:
        endpoint = await get_endpoint(uow, actor, endpoint_id, for_update=True)
        ensure_version(endpoint.version, if_match)
        changed = diff({k: getattr(endpoint, k) for k in changes}, changes)
        reactivated = changes.get("active") is True and endpoint.disabled_reason is not None
        if not changed and not reactivated:
            return endpoint
        resumed = changes.get("active") is True and not endpoint.active
        for key, value in changes.items():
            setattr(endpoint, key, value)
        if changes.get("active") is True:
            endpoint.disabled_reason = None
            endpoint.failing_since = None
        endpoint.version += 1
        endpoint.updated_at = utcnow()
        await uow.flush()
        await uow.webhooks.replace_subscriptions(endpoint)
        if resumed:  # what waited while it was inactive is due now
            await uow.webhooks.resume_deliveries(endpoint.id, endpoint.updated_at)
        await _event(uow, actor, endpoint, "updated", {"changes": changed})
        await uow.commit()
    return endpoint


async def delete_endpoint(uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID) -> None:
    async with uow:
        endpoint = await get_endpoint(uow, actor, endpoint_id, for_update=True)
        await _event(uow, actor, endpoint, "deleted", {"url": endpoint.url})
        await uow.webhooks.delete_endpoint(endpoint)
        await uow.commit()


async def rotate_secret(uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID) -> EndpointWithSecret:
    """A new secret signs from now on; the previous one signs beside it for 24 hours."""
    async with uow:
        endpoint = await get_endpoint(uow, actor, endpoint_id, for_update=True)
        now = utcnow()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = now + PREVIOUS_SECRET_GRACE
        endpoint.secret = secret = new_secret()
        endpoint.version += 1
        endpoint.updated_at = now
        await uow.flush()
        await _event(uow, actor, endpoint, "secret_rotated", {})
        await uow.commit()
    return EndpointWithSecret(endpoint, secret)


async def ping(uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID) -> WebhookDelivery:
    """A `webhook.ping` for this endpoint alone: it is not an event of the feed."""
    async with uow:
        endpoint = await get_endpoint(uow, actor, endpoint_id)
        now = utcnow()
        ping_id = uuid7()
        data = {"endpoint_id": str(endpoint.id), "ping_id": str(ping_id)}
        delivery = WebhookDelivery(
            organization_id=endpoint.organization_id,
            endpoint_id=endpoint.id,
            event_id=ping_id,
            event_seq=0,
            event_type=PING,
            deal_id=None,
            payload={"type": PING, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data},
            next_attempt_at=now,
            created_at=now,
        )
        uow.add(delivery)
        await uow.flush()
        await uow.commit()
    return delivery


async def list_deliveries(
    uow: UnitOfWork, actor: Actor, endpoint_id: uuid.UUID, page: PageRequest, status: DeliveryStatus | None
) -> PageResult[Any]:
    endpoint = await get_endpoint(uow, actor, endpoint_id)
    rows = await uow.webhooks.list_deliveries(
        endpoint.id, status=status, after=after_id(DELIVERIES, page), limit=page.limit + 1
    )
    return build_page(DELIVERIES, page, rows)


async def retry_delivery(uow: UnitOfWork, actor: Actor, delivery_id: uuid.UUID) -> WebhookDelivery:
    """A failed delivery is attempted again now (one more attempt)."""
    ensure_admin(actor)
    async with uow:
        delivery = await uow.webhooks.get_delivery(actor.organization_id, delivery_id, for_update=True)
        if delivery is None:
            raise NotFound("No webhook delivery with this id.")
        if delivery.status != DeliveryStatus.failed:
            raise DeliveryNotFailed()
        delivery.status = DeliveryStatus.pending
        delivery.next_attempt_at = utcnow()
        delivery.leased_until = None
        await uow.flush()
        await uow.commit()
    return delivery


async def _event(uow: UnitOfWork, actor: Actor, endpoint: WebhookEndpoint, verb: str, data: dict[str, Any]) -> None:
    await uow.events.append(
        organization_id=actor.organization_id,
        type=f"webhook_endpoint.{verb}",
        actor_id=actor.member_id,
        subject_type="webhook_endpoint",
        subject_id=endpoint.id,
        data=data,
    )
