"""Pipedrive webhooks v2: what its `{meta, data, previous}` body says, read into our terms.

Pipedrive signs nothing; a webhook carries the HTTP Basic auth its subscription was created
with (`http_auth_user`, `http_auth_password`), which must be the integration's credentials.
`meta.id` names the event (the inbox is deduplicated on it), `meta.company_id` the account,
`meta.entity` / `meta.action` / `meta.entity_id` what happened to what, and `meta.timestamp`
when. A deal's `data` holds its state after the event (`title`, `value`, `currency`,
`expected_close_date`, `stage_id`, `status` open | won | lost, `lost_reason`, `owner_id`,
`org_id`); on delete the object may be in `previous` only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from typing import Any

from app.domain.errors import NotProviderFormat
from app.domain.integrations import MAX_DEPTH, CrmDeal, CrmEvent, storable

ACTIONS = ("create", "change", "delete")
DEAL = "deal"
MAX_ID_LENGTH = 200


def account_of(body: Any) -> str:
    """The Pipedrive company a body names (``meta.company_id``): it chooses the integration whose
    credentials must authenticate it. Anything without one is not Pipedrive's format."""
    if not storable(body):
        raise NotProviderFormat(f"The body holds NUL characters or is nested deeper than {MAX_DEPTH} levels.")
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict):
        raise NotProviderFormat("A Pipedrive webhooks v2 body is an object with `meta`, `data` and `previous`.")
    return _id(meta, "company_id")


def read_event(body: dict[str, Any]) -> CrmEvent:
    """The event a (authenticated) body carries; refused when it is not Pipedrive's webhooks v2 format."""
    meta = body["meta"]
    for key in ("data", "previous"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise NotProviderFormat(f"`{key}` must be an object or null.")
    action, entity = meta.get("action"), meta.get("entity")
    if not isinstance(action, str) or not isinstance(entity, str) or not action or not entity:
        raise NotProviderFormat("`meta.action` and `meta.entity` are required strings (webhooks v2).")
    entity_id = _id(meta, "entity_id") if meta.get("entity_id") is not None else None
    return CrmEvent(
        event_id=_id(meta, "id"),
        account_id=_id(meta, "company_id"),
        action=action[:32],
        object_type=entity[:64],
        object_id=entity_id,
        timestamp=_timestamp(meta.get("timestamp")),
        is_deal_event=entity == DEAL and action in ACTIONS,
    )


def deal_of(body: dict[str, Any]) -> CrmDeal:
    """What a deal event says about the deal: its state in ``data`` (``previous`` on a delete)."""
    data = body.get("data") or body.get("previous") or {}
    org_name = data.get("org_name")
    org_id = data.get("org_id")
    account_name = org_name if isinstance(org_name, str) and org_name.strip() else None
    if account_name is None and _scalar(org_id):
        account_name = f"Pipedrive organization {org_id}"
    value = data.get("value")
    owner = data.get("owner_id", data.get("user_id"))
    if isinstance(owner, dict):  # webhooks v1 sent the user as an object
        owner = owner.get("id")
    return CrmDeal(
        title=_text(data.get("title")),
        account_name=account_name,
        value=None if value is None or isinstance(value, bool) else str(value),
        value_sent="value" in data,
        currency=_text(data.get("currency")),
        expected_close_date=_text(data.get("expected_close_date")),
        expected_close_date_sent="expected_close_date" in data,
        stage=None if data.get("stage_id") is None else str(data.get("stage_id")),
        status=_text(data.get("status")),
        lost_reason=_text(data.get("lost_reason")),
        owner=None if not _scalar(owner) else str(owner),
    )


def basic_auth_matches(header: str | None, username: str, password: str) -> bool:
    """Whether an Authorization header carries these Basic credentials (compared in constant time)."""
    scheme, _, encoded = (header or "").partition(" ")
    sent_user, sent_password = "", ""
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = ""
        sent_user, _, sent_password = decoded.partition(":")
    user_ok = hmac.compare_digest(sent_user.encode(), username.encode())
    password_ok = hmac.compare_digest(sent_password.encode(), password.encode())
    return scheme.lower() == "basic" and user_ok and password_ok


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != ""


def _id(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key)
    if not _scalar(value) or len(str(value)) > MAX_ID_LENGTH:
        raise NotProviderFormat(f"`meta.{key}` must be a string or an integer (webhooks v2).")
    return str(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _timestamp(value: Any) -> dt.datetime | None:
    """``meta.timestamp``: RFC 3339 text, or unix seconds (milliseconds when that large)."""
    if value is None:
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = value / 1000 if value > 10**11 else value
            return dt.datetime.fromtimestamp(seconds, dt.UTC)
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise NotProviderFormat("`meta.timestamp` must be an RFC 3339 timestamp or unix seconds.")
