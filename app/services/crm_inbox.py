"""The CRM inbox: an inbound event is stored once (deduplicated on the provider's event id) and
answered at once; the inbox applier (app/services/inbox_applier.py) applies it later, as the
integration's member, through the same deal code as `PUT /v1/deals/by-external-ref/...`.

A replayed provider event (Pipedrive's `meta.id`, HubSpot's `portalId:eventId`, a Salesforce notification's `Id`) is not stored twice: the sender is answered 200
with the entry stored the first time (`duplicate: true`), and nothing is applied again. The
`duplicate` outcome is kept for providers whose events carry no identity of their own.
"""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as defused

from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain import hubspot, pipedrive, salesforce
from app.domain.deals import DealEdit
from app.domain.errors import DomainError, InvalidSignature, NotProviderFormat
from app.domain.ids import uuid7
from app.domain.integrations import (
    APPLIED_OUTCOMES,
    PROVIDER_NAMES,
    CrmDeal,
    CrmEvent,
    InboxOutcome,
    IntegrationMaps,
    Provider,
    deal_edit,
    is_deletion,
    resolve_owner,
)
from app.domain.members import Actor, MemberRole
from app.services import deals as deal_service
from app.services.deal_batch import DealBatch
from app.services.hubspot_api import HubSpotClient

# The applier acts as the integration's member, with no API key: this names none.
NO_API_KEY = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class Receipt:
    id: uuid.UUID
    provider_event_id: str
    outcome: InboxOutcome
    duplicate: bool


def _xml(raw: bytes) -> ElementTree.Element:
    """Well-formed XML that declares no DTD, entity or external reference: refused before any is
    expanded or fetched (defusedxml)."""
    try:
        root: ElementTree.Element = defused.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise NotProviderFormat("DTDs and entities are refused: an Outbound Message declares none.") from None
    except (ElementTree.ParseError, ValueError):
        raise NotProviderFormat("The body is not well-formed XML.") from None
    return root


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise NotProviderFormat("The body is not JSON.") from None


async def receive_pipedrive(uow: UnitOfWork, raw: bytes, authorization: str | None) -> Receipt:
    """Store one Pipedrive webhook, once, if its Basic auth is the credentials of the integration its
    company routes to (401 invalid_signature otherwise, nothing stored)."""
    body = _json(raw)
    account_id = pipedrive.account_of(body)
    async with uow:
        integration = await _authenticated(
            uow,
            Provider.pipedrive,
            account_id,
            lambda credentials: pipedrive.basic_auth_matches(
                authorization, str(credentials.get("username", "")), str(credentials.get("password", ""))
            ),
        )
        event = pipedrive.read_event(body)
        [receipt] = await _store(uow, Provider.pipedrive, [(integration, event, body)])
        await uow.commit()
    return receipt


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What HubSpot's signature v3 covers: the method, the URI it called, the raw body; and the
    signature and timestamp headers."""

    method: str
    uri: str
    body: bytes
    signature: str | None
    timestamp: str | None


async def receive_hubspot(uow: UnitOfWork, request: SignedRequest) -> list[Receipt]:
    """Store a HubSpot webhook batch, each event once, if every portal it names routes to an enabled
    integration whose client secret signed it, less than five minutes ago (401 invalid_signature
    otherwise, nothing stored)."""
    body = _json(request.body)
    portals = hubspot.accounts_of(body)
    now = utcnow()
    async with uow:
        integrations = {}
        for portal in portals:
            integration = await uow.integrations.by_account(Provider.hubspot, portal)
            secret = None if integration is None else integration.credentials.get("client_secret")
            signed = secret is not None and hubspot.signature_matches(
                str(secret),
                method=request.method,
                uri=request.uri,
                body=request.body,
                timestamp=request.timestamp,
                signature=request.signature,
                now=now,
            )
            if integration is None or not integration.enabled or not signed:
                raise InvalidSignature(
                    "No enabled HubSpot integration of this portal signed this request in the last five minutes."
                )
            integrations[portal] = integration
        events = [hubspot.read_event(event, index) for index, event in enumerate(body)]
        receipts = await _store(
            uow,
            Provider.hubspot,
            [(integrations[e.account_id], e, payload) for e, payload in zip(events, body, strict=True)],
        )
        await uow.commit()
    return receipts


async def _store(uow: UnitOfWork, provider: Provider, events: list[tuple[Any, CrmEvent, Any]]) -> list[Receipt]:
    """Store events of their integrations once each: a deal event pending, anything else ignored."""
    now = utcnow()
    # Ids in the order the events came: one CRM object's events are applied in id order, and
    # UUIDv7s made within one millisecond are not ordered unless sorted.
    ids = sorted(uuid7() for _ in events)
    rows = [
        {
            "id": event_id,
            "organization_id": integration.organization_id,
            "integration_id": integration.id,
            "provider": provider.value,
            "provider_event_id": event.event_id,
            "received_at": now,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "provider_timestamp": event.timestamp,
            "payload": payload,
            "outcome": (InboxOutcome.pending if event.is_deal_event else InboxOutcome.ignored).value,
            "attempts": 0,
            "next_attempt_at": now,
            "applied_at": None if event.is_deal_event else now,
        }
        for event_id, (integration, event, payload) in zip(ids, events, strict=True)
    ]
    stored = await uow.integrations.store(rows)
    return [
        Receipt(stored_id, event.event_id, outcome, duplicate=not first)
        for (stored_id, outcome, first), (_, event, _) in zip(stored, events, strict=True)
    ]


async def receive_salesforce(uow: UnitOfWork, raw: bytes, token: str | None) -> list[Receipt]:
    """Store each notification of one Salesforce Outbound Message, once, if the endpoint's token is
    the credential of the integration its OrganizationId routes to (401 invalid_signature otherwise,
    nothing stored). All of the message's notifications are stored together, or none."""
    message = salesforce.read_message(_xml(raw))
    async with uow:
        integration = await _authenticated(
            uow,
            Provider.salesforce,
            message.organization_id,
            lambda credentials: salesforce.token_matches(token, str(credentials.get("token", ""))),
        )
        events = [
            (
                integration,
                CrmEvent(
                    event_id=notification.notification_id,
                    account_id=message.organization_id,
                    action=salesforce.ACTION,
                    object_type=notification.sobject_type,
                    object_id=notification.object_id,
                    timestamp=notification.timestamp,
                    is_deal_event=notification.is_opportunity,
                ),
                notification.payload(message),
            )
            for notification in message.notifications
        ]
        receipts = await _store(uow, Provider.salesforce, events)
        await uow.commit()
    return receipts


async def _authenticated(
    uow: UnitOfWork, provider: Provider, account_id: str, authentic: Callable[[Mapping[str, Any]], bool]
) -> Any:
    """The enabled integration an inbound event's account routes to, if the event proves it comes
    from it (checked even when there is none, so that no answer says which accounts exist)."""
    integration = await uow.integrations.by_account(provider, account_id)
    credentials = {} if integration is None else integration.credentials
    proven = authentic(credentials)
    if integration is None or not integration.enabled or not credentials or not proven:
        name = PROVIDER_NAMES[provider]
        raise InvalidSignature(f"No enabled {name} integration of this account accepts these credentials.")
    return integration


# --- applying -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: InboxOutcome
    deal_id: uuid.UUID | None = None
    problem: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class DealState:
    """What an event says the deal is now: from its payload (Pipedrive) or read back from the CRM
    (HubSpot, whose events are thin); None for a deletion, or a deal the CRM no longer has."""

    crm: CrmDeal | None
    observed_at: dt.datetime | None = None  # when the CRM last changed the state read back
    gone: bool = False


async def read_state(row: Any, hubspot_api: HubSpotClient) -> DealState:
    """The deal state an event applies; reading HubSpot may raise CrmUnavailable (try again later)."""
    provider = Provider(row.provider)
    if is_deletion(provider, row.action) or row.object_id is None:
        return DealState(None)
    if provider == Provider.pipedrive:
        return DealState(pipedrive.deal_of(row.payload))
    if provider == Provider.salesforce:
        return DealState(salesforce.deal_of(row.payload, row.loss_reason_field))
    read = await hubspot_api.read_deal(row.object_id, str(row.credentials.get("access_token", "")))
    if read.properties is None:
        return DealState(None, gone=True)
    crm = hubspot.deal_of(read.properties, row.stage_map, row.account_id)
    return DealState(crm, hubspot.modified_at(read.properties))


def _actor(row: Any) -> Actor:
    """The integration's member, acting on an event of its integration."""
    return Actor(
        member_id=row.member_id,
        organization_id=row.organization_id,
        role=MemberRole.integration,
        manager_id=None,
        api_key_id=NO_API_KEY,
    )


def upserts(row: Any, state: DealState) -> bool:
    """Whether an event upserts a deal the CRM has (what ``apply_upserts`` applies); a deletion, an
    event naming no object and a deal gone from the CRM are applied by ``apply_event``."""
    return row.object_id is not None and state.crm is not None and not is_deletion(Provider(row.provider), row.action)


async def apply_upserts(uow: UnitOfWork, events: list[tuple[Any, DealState]]) -> int:
    """Apply claimed events of one integration, each upserting a deal (``upserts``), set-based in one
    transaction with their outcomes (app/services/deal_batch.py: the rules of
    `PUT /v1/deals/by-external-ref`, record by record, a handful of statements for them all). Each
    event's outcome is the one ``apply_event`` records for it alone: an event a rule refuses leaves
    nothing behind but its outcome. The claim gives one event per CRM object at most. How many
    were still pending (the others another applier finished)."""
    first = events[0][0]
    assert all(row.integration_id == first.integration_id and upserts(row, state) for row, state in events)
    actor, provider, now = _actor(first), Provider(first.provider), utcnow()
    async with uow:
        taken = await uow.integrations.take_many([row.id for row, _ in events])
        events = [(row, state) for row, state in events if row.id in taken]
        if not events:
            return 0
        batch = DealBatch(actor, now)
        await batch.load_deals(uow, [(row.provider, row.object_id) for row, _ in events])
        last = await uow.integrations.last_applied_many(
            first.organization_id, first.provider, [row.object_id for row, _ in events]
        )
        owners = {row.id: _mapped_owner(row, state) for row, state in events}
        await batch.load_owners(uow, {owner for owner in owners.values() if owner is not None})
        finished: list[dict[str, Any]] = []
        planned: list[tuple[Any, DealState, DealEdit, dict[str, str] | None]] = []
        for row, state in events:
            crm, deal_id = state.crm, batch.existing(row.provider, row.object_id)
            assert crm is not None
            if _stale(last.get(row.object_id), row, state):
                finished.append(_outcome(row, InboxOutcome.unchanged, deal_id))
                continue
            mapped = owners[row.id]
            owner = resolve_owner(crm.owner, row.owner_map, None if mapped is None else batch.owners.get(mapped))
            owner_problem = (
                None if owner is None or owner.problem is None else _owner_problem(owner.problem, crm.owner, provider)
            )
            if owner_problem is not None and deal_id is None:
                finished.append(_outcome(row, InboxOutcome.rejected, None, owner_problem))
                continue
            maps = IntegrationMaps(row.stage_map, row.loss_reason_map, row.default_currency)
            owner_id = None if owner is None else owner.member_id
            edit = deal_edit(crm, maps, owner_id=owner_id, provider=provider, new=deal_id is None)
            planned.append((row, state, edit, owner_problem))
        await batch.load_loss_reasons(uow, {edit.loss.reason_code for _, _, edit, _ in planned if edit.loss})
        results = [
            batch.apply_edit(n, row.provider, row.object_id, edit) for n, (row, _, edit, _) in enumerate(planned)
        ]
        await batch.write(uow, results)
        for (row, state, _, owner_problem), result in zip(planned, results, strict=True):
            at = _newest(row.provider_timestamp, state.observed_at)
            if result.error is not None:
                deal_id = batch.existing(row.provider, row.object_id)
                if deal_id is None:  # another transaction created it meanwhile (external_ref_taken)
                    deal_id = await uow.deals.deal_id_by_ref(row.organization_id, row.provider, row.object_id)
                finished.append(_outcome(row, InboxOutcome.rejected, deal_id, _problem(result.error)))
            elif owner_problem is not None:
                finished.append(_outcome(row, InboxOutcome.rejected, result.deal_id, owner_problem, at))
            elif result.outcome == "unchanged":
                finished.append(_outcome(row, InboxOutcome.unchanged, result.deal_id))
            else:
                finished.append(_outcome(row, InboxOutcome.applied, result.deal_id, None, at))
        await uow.integrations.finish_many(finished, now=now)
        await uow.commit()
    return len(events)


def _mapped_owner(row: Any, state: DealState) -> uuid.UUID | None:
    """The member the integration's owner map names for the event's CRM owner, if any."""
    owner = None if state.crm is None else state.crm.owner
    mapped = None if owner is None else row.owner_map.get(owner)
    return None if mapped is None else uuid.UUID(mapped)


def _stale(last: dt.datetime | None, row: Any, state: DealState) -> bool:
    """Older (by the provider's time) than what the deal already reflects."""
    return last is not None and any(
        t is not None and _utc(t) < last for t in (row.provider_timestamp, state.observed_at)
    )


def _outcome(
    row: Any,
    outcome: InboxOutcome,
    deal_id: uuid.UUID | None,
    problem: dict[str, str] | None = None,
    provider_timestamp: dt.datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": row.id,
        "outcome": outcome,
        "deal_id": deal_id,
        "problem": problem,
        "provider_timestamp": provider_timestamp,
    }


async def apply_event(uow: UnitOfWork, row: Any, state: DealState) -> bool:
    """Apply one claimed inbox event in one transaction with its outcome, so it is applied once;
    a rule that refuses it leaves nothing behind but the outcome. False when it was no longer
    pending (another applier finished it)."""
    actor = _actor(row)
    refused: DomainError | None = None
    at = _newest(row.provider_timestamp, state.observed_at)
    async with uow:
        if not await uow.integrations.take(row.id):
            return False
        try:
            result = await _apply(uow, actor, row, state)
        except DomainError as exc:
            refused = exc
        else:
            await uow.integrations.finish(
                row.id,
                result.outcome,
                now=utcnow(),
                deal_id=result.deal_id,
                problem=result.problem,
                provider_timestamp=at if result.outcome in APPLIED_OUTCOMES else None,
            )
            await uow.commit()
            return True
    # Refused: the deal's writes were rolled back with the transaction; record why.
    async with uow:
        deal_id = await uow.deals.deal_id_by_ref(row.organization_id, row.provider, row.object_id or "")
        await uow.integrations.finish(
            row.id, InboxOutcome.rejected, now=utcnow(), deal_id=deal_id, problem=_problem(refused)
        )
        await uow.commit()
    return True


async def _apply(uow: UnitOfWork, actor: Actor, row: Any, state: DealState) -> Applied:
    provider = Provider(row.provider)
    external_id = row.object_id
    if external_id is None:
        return Applied(InboxOutcome.ignored)
    last = await uow.integrations.last_applied_at(row.organization_id, row.provider, external_id)
    deal_id = await uow.deals.deal_id_by_ref(row.organization_id, row.provider, external_id)
    if _stale(last, row, state):
        return Applied(InboxOutcome.unchanged, deal_id)
    if is_deletion(provider, row.action):
        if deal_id is None:
            return Applied(InboxOutcome.ignored)
        await deal_service.record_deleted_in_crm(uow, actor, deal_id, row.provider, external_id)
        return Applied(InboxOutcome.applied, deal_id)
    if state.crm is None:
        detail = f"{PROVIDER_NAMES[provider]} has no deal {external_id} any more; a deletion event records it."
        return Applied(InboxOutcome.ignored, deal_id, {"code": "not_in_crm", "detail": detail})

    crm = state.crm
    owner_member = None
    mapped = row.owner_map.get(crm.owner) if crm.owner is not None else None
    if mapped is not None:
        owner_member = await uow.members.get(row.organization_id, uuid.UUID(mapped))
    owner = resolve_owner(crm.owner, row.owner_map, owner_member)
    owner_problem = None if owner is None or owner.problem is None else owner.problem
    if owner_problem is not None and deal_id is None:
        return Applied(InboxOutcome.rejected, None, _owner_problem(owner_problem, crm.owner, provider))
    maps = IntegrationMaps(row.stage_map, row.loss_reason_map, row.default_currency)
    edit = deal_edit(
        crm, maps, owner_id=None if owner is None else owner.member_id, provider=provider, new=deal_id is None
    )
    view, outcome = await deal_service.upsert_as_integration(uow, actor, row.provider, external_id, edit)
    if owner_problem is not None:
        return Applied(InboxOutcome.rejected, view.deal.id, _owner_problem(owner_problem, crm.owner, provider))
    return Applied(InboxOutcome.unchanged if outcome == "unchanged" else InboxOutcome.applied, view.deal.id)


def _owner_problem(code: str, crm_owner: str | None, provider: Provider) -> dict[str, str]:
    name = PROVIDER_NAMES[provider]
    if code == "unknown_owner":
        detail = f"{name} user {crm_owner} maps to no member: add them to the integration's owner_map."
    else:
        detail = f"{name} user {crm_owner} maps to a member who is not an active seller; the deal keeps its owner."
    return {"code": code, "detail": detail}


def _problem(error: DomainError | None) -> dict[str, str]:
    assert error is not None
    return {"code": error.code, "detail": error.detail}


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _newest(*times: dt.datetime | None) -> dt.datetime | None:
    known = [_utc(t) for t in times if t is not None]
    return max(known) if known else None
