"""HubSpot webhooks: the signature v3 that proves a batch comes from HubSpot, what a batch says,
and what a deal read from HubSpot's CRM API says, in our terms.

A batch is a JSON array of up to 100 events, each `{eventId, subscriptionId, portalId, appId,
occurredAt (ms), subscriptionType | eventType, attemptNumber, objectId, changeSource,
propertyName?, propertyValue?}`. `portalId` names the account (it routes the event to an
integration), `eventId` the event (the inbox is deduplicated on it), `subscriptionType`
(`deal.creation`, `deal.propertyChange`, `deal.deletion`, `contact.creation`, ...) what happened
to what. HubSpot's events are thin: the deal's current properties are read back from the CRM API
(app/services/hubspot_api.py) before they are applied.

Signature v3 (HubSpot, "Validating requests"): `X-HubSpot-Signature-v3` is base64 of
HMAC-SHA256, keyed with the app's client secret, of the UTF-8 string method + request URI + raw
body + the `X-HubSpot-Request-Timestamp` value (epoch milliseconds); a timestamp older than five
minutes is refused. The URI is the one HubSpot called (scheme, host, path and query) with the
URL-encoded characters HubSpot's table lists decoded (the `?` that starts the query is kept).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from app.domain.errors import NotProviderFormat
from app.domain.integrations import CrmDeal, CrmEvent, storable

MAX_BATCH = 100
MAX_SIGNATURE_AGE_MS = 5 * 60 * 1000
MAX_ID_LENGTH = 100
DEAL = "deal"
DEAL_ACTIONS = ("creation", "propertyChange", "deletion")

# The deal properties a deal event reads back (GET /crm/v3/objects/deals/{id}?properties=...).
DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "closedate",
    "dealstage",
    "pipeline",
    "hubspot_owner_id",
    "closed_lost_reason",
    "hs_lastmodifieddate",
)
# HubSpot's default pipeline names its closing stages so; other pipelines' go through the stage map.
CLOSED_WON, CLOSED_LOST = "closedwon", "closedlost"

# The URL-encoded characters HubSpot decodes in the URI before it signs (signature v3).
_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ENCODED = re.compile("|".join(_DECODED), re.IGNORECASE)


def signed_uri(uri: str) -> str:
    """The request URI as HubSpot signs it: the characters of its table decoded, nothing else."""
    return _ENCODED.sub(lambda match: _DECODED[match.group(0).upper()], uri)


def signature_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), on the raw body bytes."""
    message = method.upper().encode() + signed_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def signature_matches(
    client_secret: str,
    *,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: dt.datetime,
) -> bool:
    """A request is HubSpot's when its v3 signature is this secret's (compared in constant time)
    and its timestamp is no older than five minutes (nor more than five minutes ahead)."""
    expected = signature_v3(client_secret, method, uri, body, timestamp or "")
    try:
        sent = base64.b64decode((signature or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        sent = b""
    authentic = hmac.compare_digest(sent, base64.b64decode(expected))
    return authentic and fresh(timestamp, now)


def fresh(timestamp: str | None, now: dt.datetime) -> bool:
    """Whether an `X-HubSpot-Request-Timestamp` (epoch ms) is within five minutes of now."""
    if timestamp is None or not timestamp.isdigit() or len(timestamp) > 16:
        return False
    age = now.timestamp() * 1000 - int(timestamp)
    return -MAX_SIGNATURE_AGE_MS <= age <= MAX_SIGNATURE_AGE_MS


def accounts_of(body: Any) -> list[str]:
    """The portals a batch names, in order: each chooses the integration whose client secret must
    have signed it. Anything that is not a HubSpot batch (a JSON array of up to 100 event
    objects, each with a `portalId`) is refused."""
    if not isinstance(body, list) or not body:
        raise NotProviderFormat("A HubSpot webhook batch is a non-empty JSON array of events.")
    if len(body) > MAX_BATCH:
        raise NotProviderFormat(f"A HubSpot batch holds at most {MAX_BATCH} events; this one holds {len(body)}.")
    if not storable(body):
        raise NotProviderFormat("The body holds NUL characters or is nested too deeply.")
    if not all(isinstance(event, dict) for event in body):
        raise NotProviderFormat("Every event of a HubSpot batch is a JSON object.")
    return list(dict.fromkeys(_id(event, "portalId", index) for index, event in enumerate(body)))


def read_event(event: dict[str, Any], index: int) -> CrmEvent:
    """One event of an (authenticated) batch; refused when it is not HubSpot's format."""
    kind = event.get("subscriptionType", event.get("eventType"))
    if not isinstance(kind, str) or "." not in kind or len(kind) > 96:
        raise NotProviderFormat(f"Event {index}: `subscriptionType` (or `eventType`) names object.action.")
    object_type, _, action = kind.partition(".")
    object_id = _id(event, "objectId", index) if event.get("objectId") is not None else None
    return CrmEvent(
        event_id=f"{_id(event, 'portalId', index)}:{_id(event, 'eventId', index)}",
        account_id=_id(event, "portalId", index),
        action=action[:32],
        object_type=object_type[:64],
        object_id=object_id,
        timestamp=_millis(event.get("occurredAt"), f"Event {index}: `occurredAt`"),
        is_deal_event=object_type == DEAL and action in DEAL_ACTIONS and object_id is not None,
    )


def deal_of(properties: Mapping[str, Any], stage_map: Mapping[str, str], portal: str) -> CrmDeal:
    """What HubSpot's CRM API says of a deal (its `properties`), in a CRM's terms: the stage key is
    `pipeline:dealstage` when the stage map has it, else `dealstage`; the default pipeline's
    `closedwon` / `closedlost` close the deal unless the map says otherwise. HubSpot names no
    account on a deal (companies are associations): a new deal is named after the portal."""
    stage, pipeline = _text(properties.get("dealstage")), _text(properties.get("pipeline"))
    key = f"{pipeline}:{stage}" if pipeline and f"{pipeline}:{stage}" in stage_map else stage
    status = None
    if key not in stage_map:
        status = {CLOSED_WON: "won", CLOSED_LOST: "lost"}.get(stage or "")
    amount = _text(properties.get("amount"))
    close_date = _text(properties.get("closedate"))
    return CrmDeal(
        title=_text(properties.get("dealname")),
        account_name=f"HubSpot account {portal}",
        value=amount or None,
        value_sent="amount" in properties,
        currency=_text(properties.get("deal_currency_code")) or None,
        expected_close_date=close_date or None,
        expected_close_date_sent="closedate" in properties,
        stage=key,
        status=status,
        lost_reason=_text(properties.get("closed_lost_reason")) or None,
        owner=_text(properties.get("hubspot_owner_id")) or None,
    )


def modified_at(properties: Mapping[str, Any]) -> dt.datetime | None:
    """`hs_lastmodifieddate`: when the state read was last changed in HubSpot (None if unreadable)."""
    value = properties.get("hs_lastmodifieddate")
    if not isinstance(value, str) or not value:
        return None
    try:
        if value.isdigit():
            return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _id(event: dict[str, Any], key: str, index: int) -> str:
    value = event.get(key)
    ok = isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != ""
    if not ok or len(str(value)) > MAX_ID_LENGTH:
        raise NotProviderFormat(f"Event {index}: `{key}` must be an integer or a string.")
    return str(value)


def _text(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else None


def _millis(value: Any, what: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
        except (ValueError, OverflowError, OSError):
            pass
    raise NotProviderFormat(f"{what} must be epoch milliseconds.")
