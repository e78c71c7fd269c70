"""CRM integrations (webhooks in): providers, their configuration rules, and what becomes of an
inbound event. The CRM's rules never bypass ours: a CRM owner maps to a seller or nothing."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from app.domain.deals import UNSENT, DealEdit, Loss, Stage, Unsent
from app.domain.errors import FieldProblem, MissingFields, OwnerMustBeSeller, UnknownLossReason, UnknownMember
from app.domain.members import MemberRole
from app.domain.money import InvalidMoney, Money


class Provider(enum.StrEnum):
    hubspot = "hubspot"
    pipedrive = "pipedrive"
    salesforce = "salesforce"


PROVIDER_NAMES = {Provider.hubspot: "HubSpot", Provider.pipedrive: "Pipedrive", Provider.salesforce: "Salesforce"}

# What each provider needs to verify its inbound events (and, for HubSpot, to read deals back).
CREDENTIAL_FIELDS: dict[Provider, tuple[str, ...]] = {
    Provider.hubspot: ("client_secret", "access_token"),
    Provider.pipedrive: ("username", "password"),
    Provider.salesforce: ("token",),
}


class InboxOutcome(enum.StrEnum):
    pending = "pending"  # stored, not applied yet
    applied = "applied"  # the deal was created or changed
    unchanged = "unchanged"  # nothing to change, or older than what was already applied
    ignored = "ignored"  # not about a deal
    duplicate = "duplicate"  # the same provider event again (see app/services/crm_inbox.py)
    rejected = "rejected"  # a rule refused it (problem says which); an existing deal may still have changed


# Outcomes after which a deal reflects the event's time: later events of that deal must be newer.
APPLIED_OUTCOMES = (InboxOutcome.applied, InboxOutcome.rejected)

# The action each provider names a deal's deletion with: recorded (`deal.deleted_in_crm`), never done.
DELETION_ACTIONS = {Provider.hubspot: "deletion", Provider.pipedrive: "delete"}


def is_deletion(provider: Provider, action: str) -> bool:
    return DELETION_ACTIONS.get(provider) == action


@dataclass(frozen=True, slots=True)
class CrmEvent:
    """One inbound event, as the inbox stores it, whatever the provider."""

    event_id: str  # the provider's identity of the event: the inbox is deduplicated on it
    account_id: str
    action: str
    object_type: str
    object_id: str | None
    timestamp: dt.datetime | None
    is_deal_event: bool  # applied (pending) when true, else stored as ignored


MAX_DEPTH = 32


def storable(value: Any, depth: int = MAX_DEPTH) -> bool:
    """JSON the inbox can store: no NUL anywhere (PostgreSQL holds none), bounded nesting."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return depth > 0 and all(storable(k, depth) and storable(v, depth - 1) for k, v in value.items())
    if isinstance(value, list):
        return depth > 0 and all(storable(v, depth - 1) for v in value)
    return True


class HasRole(Protocol):
    @property
    def role(self) -> MemberRole: ...
    @property
    def active(self) -> bool: ...


def ensure_credentials(provider: Provider, credentials: Mapping[str, str | None]) -> dict[str, str]:
    """An integration's credentials are exactly what its provider needs: every field, no other."""
    needed = CREDENTIAL_FIELDS[provider]
    problems = [
        FieldProblem(("credentials", name), f"Field required for {PROVIDER_NAMES[provider]}", "missing")
        for name in needed
        if not credentials.get(name)
    ]
    problems += [
        FieldProblem(("credentials", name), f"Not a {PROVIDER_NAMES[provider]} credential", "extra_forbidden")
        for name, value in credentials.items()
        if name not in needed and value is not None
    ]
    if problems:
        raise MissingFields(f"{PROVIDER_NAMES[provider]} needs credentials {', '.join(needed)}.", fields=problems)
    return {name: str(credentials[name]) for name in needed}


# The Opportunity field holding the lost reason when a Salesforce integration names none (a custom
# field: Opportunity has no standard one).
DEFAULT_LOSS_REASON_FIELD = "Loss_Reason__c"


def loss_reason_field(provider: Provider, stored: str | None) -> str | None:
    """The field a Salesforce integration reads the lost reason from; None for other providers."""
    return (stored or DEFAULT_LOSS_REASON_FIELD) if provider == Provider.salesforce else None


def ensure_loss_reason_field(provider: Provider, loss_reason_field: str | None) -> None:
    """Only Salesforce names the field its lost reason is read from: the others send the reason."""
    if loss_reason_field is not None and provider != Provider.salesforce:
        raise MissingFields(
            f"{PROVIDER_NAMES[provider]} sends its lost reason itself: loss_reason_field is for Salesforce.",
            fields=[FieldProblem(("loss_reason_field",), "Only for Salesforce", "extra_forbidden")],
        )


def ensure_owner_map(owner_map: Mapping[str, uuid.UUID], members: Mapping[uuid.UUID, HasRole]) -> None:
    """Every CRM user maps to an active seller of the organisation: a CRM cannot make anyone
    else a deal's owner."""
    unknown = [
        FieldProblem(("owner_map", crm_user), "No member of the organisation has this id", "unknown_member")
        for crm_user, member_id in owner_map.items()
        if member_id not in members
    ]
    if unknown:
        raise UnknownMember("owner_map names unknown members; see errors.", fields=unknown)
    not_sellers = [
        FieldProblem(("owner_map", crm_user), "Maps to a member who is not an active seller", "owner_must_be_seller")
        for crm_user, member_id in owner_map.items()
        if members[member_id].role != MemberRole.seller or not members[member_id].active
    ]
    if not_sellers:
        raise OwnerMustBeSeller(
            "owner_map maps CRM users to members who are not sellers; see errors.", fields=not_sellers
        )


def ensure_loss_reason_map(loss_reason_map: Mapping[str, str], active_codes: set[str]) -> None:
    """Every CRM lost reason maps to an active code of the organisation's loss-reason catalog."""
    unknown = [
        FieldProblem(("loss_reason_map", crm_reason), f"{code!r} is not an active loss reason", "unknown_loss_reason")
        for crm_reason, code in loss_reason_map.items()
        if code not in active_codes
    ]
    if unknown:
        raise UnknownLossReason("loss_reason_map names unknown loss reasons; see errors.", fields=unknown)


@dataclass(frozen=True, slots=True)
class OwnerResolution:
    """Who a CRM owner is here: a seller's id, or why there is none."""

    member_id: uuid.UUID | None
    problem: str | None = None  # unknown_owner | owner_must_be_seller


def resolve_owner(
    crm_owner: str | None, owner_map: Mapping[str, str], member: HasRole | None
) -> OwnerResolution | None:
    """A CRM owner maps to an active seller; one mapped to nobody, or to anyone else, is refused.
    None when the event names no owner. ``member`` is the member the map names, if any."""
    if crm_owner is None:
        return None
    mapped = owner_map.get(crm_owner)
    if mapped is None or member is None:
        return OwnerResolution(None, "unknown_owner")
    if member.role != MemberRole.seller or not member.active:
        return OwnerResolution(None, "owner_must_be_seller")
    return OwnerResolution(uuid.UUID(mapped))


# --- what a CRM says about a deal, in our terms ----------------------------------------

# The loss reason of a CRM loss whose reason maps to no code: the CRM's text goes in the detail.
FALLBACK_LOSS_REASON = "other"
MAX_LOSS_DETAIL = 2000


@dataclass(frozen=True, slots=True)
class CrmDeal:
    """A deal as a CRM event states it, in the CRM's own terms (ids and texts)."""

    title: str | None = None
    account_name: str | None = None
    value: str | None = None  # decimal text
    value_sent: bool = False
    currency: str | None = None
    expected_close_date: str | None = None  # YYYY-MM-DD
    expected_close_date_sent: bool = False
    stage: str | None = None  # the CRM's stage id
    status: str | None = None  # open | won | lost
    lost_reason: str | None = None
    owner: str | None = None  # the CRM's user id


@dataclass(frozen=True, slots=True)
class IntegrationMaps:
    """An integration's maps, as stored."""

    stage_map: Mapping[str, str]
    loss_reason_map: Mapping[str, str]
    default_currency: str | None


def deal_edit(
    crm: CrmDeal, maps: IntegrationMaps, *, owner_id: uuid.UUID | None, provider: Provider, new: bool
) -> DealEdit:
    """The upsert a CRM deal event means: its facts, its stage (won and lost by status, open stages
    through the stage map; an unmapped stage keeps ours), a loss with a mapped reason or `other` and
    the CRM's text, and the owner when it maps to a seller. A CRM's placeholder account name (it
    sends none) names a new deal's account only."""
    stage = _stage(crm, maps)
    loss = None
    if stage == Stage.closed_lost:
        code = maps.loss_reason_map.get(crm.lost_reason or "")
        detail = None if code is not None else (crm.lost_reason or "")[:MAX_LOSS_DETAIL].strip() or None
        loss = Loss(code or FALLBACK_LOSS_REASON, None, detail)
    return DealEdit(
        name=_name(crm.title),
        account_name=_name(crm.account_name) if new else None,
        amount=_amount(crm, maps),
        expected_close_date=_date(crm),
        stage=stage,
        owner_id=owner_id,
        transfer_reason=f"Owner changed in {PROVIDER_NAMES[provider]}",
        loss=loss,
    )


def _stage(crm: CrmDeal, maps: IntegrationMaps) -> Stage | None:
    if crm.status == "won":
        return Stage.closed_won
    if crm.status == "lost":
        return Stage.closed_lost
    mapped = maps.stage_map.get(crm.stage or "")
    return None if mapped is None else Stage(mapped)


def _name(text: str | None) -> str | None:
    text = (text or "").strip()[:200]
    return text or None


def _amount(crm: CrmDeal, maps: IntegrationMaps) -> Money | None | Unsent:
    if not crm.value_sent:
        return UNSENT
    if crm.value is None:
        return None
    currency = crm.currency or maps.default_currency
    if currency is None:
        return UNSENT  # an amount in no known currency is not taken
    try:
        value = Decimal(crm.value)
        if not value.is_finite() or value < 0:
            raise InvalidOperation
        return Money.parse(format(value.normalize(), "f"), currency)
    except (InvalidOperation, InvalidMoney, ValueError):
        raise MissingFields(
            f"The amount {crm.value} {currency} is not one we can hold.",
            fields=[FieldProblem(("data", "value"), "Not an amount in this currency", "invalid_amount")],
        ) from None


def _date(crm: CrmDeal) -> dt.date | None | Unsent:
    if not crm.expected_close_date_sent:
        return UNSENT
    if crm.expected_close_date is None:
        return None
    try:
        return dt.date.fromisoformat(crm.expected_close_date[:10])
    except ValueError:
        return UNSENT
