"""Salesforce Outbound Messages: what a SOAP 1.1 `notifications` message says, read into our terms.

An Outbound Message (sent by a workflow rule or a flow) is a SOAP envelope whose body is
`notifications` (namespace http://soap.sforce.com/2005/09/outbound) with `OrganizationId`,
`ActionId`, `SessionId`, `EnterpriseUrl`, `PartnerUrl` and 1 to 100 `Notification`s, each an `Id`
(the notification's: the inbox is deduplicated on it; Salesforce resends a notification until it is
acknowledged) and an `sObject` (`xsi:type="sf:Opportunity"`) holding the fields the message was set
up to send, in the namespace urn:sobject.enterprise.soap.sforce.com. The listener answers a
`notificationsResponse` whose `Ack` is `true`.

Salesforce signs nothing: the endpoint URL carries the integration's token (`?token=`).

The XML is parsed by the service without DTDs or entities (defusedxml): a document declaring any is
refused before anything is expanded or fetched, so an entity bomb or an external entity costs nothing.
"""

from __future__ import annotations

import datetime as dt
import hmac
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from app.domain.errors import NotProviderFormat
from app.domain.integrations import DEFAULT_LOSS_REASON_FIELD, CrmDeal

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

OPPORTUNITY = "Opportunity"
ACTION = "upsert"  # an Outbound Message states the object's fields now: it creates or changes the deal
MAX_NOTIFICATIONS = 100  # the WSDL's maxOccurs
MAX_ID_LENGTH = 200
MAX_FIELDS = 500
MAX_FIELD_NAME = 100

MEDIA_TYPES = ("text/xml", "application/soap+xml")


@dataclass(frozen=True, slots=True)
class SalesforceNotification:
    """One `Notification`, as the inbox stores it (``payload``)."""

    notification_id: str
    sobject_type: str
    object_id: str | None
    timestamp: dt.datetime | None
    fields: dict[str, str | None] = field(default_factory=dict)

    @property
    def is_opportunity(self) -> bool:
        return self.sobject_type == OPPORTUNITY and self.object_id is not None

    def payload(self, message: SalesforceMessage) -> dict[str, Any]:
        return {
            "organization_id": message.organization_id,
            "action_id": message.action_id,
            "notification_id": self.notification_id,
            "sobject_type": self.sobject_type,
            "fields": self.fields,
        }


@dataclass(frozen=True, slots=True)
class SalesforceMessage:
    organization_id: str
    action_id: str | None
    notifications: tuple[SalesforceNotification, ...]


def read_message(root: ElementTree.Element) -> SalesforceMessage:
    """The `notifications` an Outbound Message carries (its XML parsed without DTDs or entities, by
    app/services/crm_inbox.py); refused (``NotProviderFormat``) when it is not a `notifications`
    envelope."""
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise NotProviderFormat("The body is not a SOAP 1.1 envelope.")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    notifications = None if body is None else body.find(f"{{{OUTBOUND}}}notifications")
    if notifications is None:
        raise NotProviderFormat("The SOAP body holds no Outbound Message `notifications`.")
    organization_id = _id(_text(notifications, "OrganizationId"), "OrganizationId")
    action_id = _text(notifications, "ActionId")
    items = notifications.findall(f"{{{OUTBOUND}}}Notification")
    if not items or len(items) > MAX_NOTIFICATIONS:
        raise NotProviderFormat(f"An Outbound Message holds 1 to {MAX_NOTIFICATIONS} `Notification`s.")
    return SalesforceMessage(
        organization_id=organization_id,
        action_id=None if action_id is None else action_id[:MAX_ID_LENGTH],
        notifications=tuple(_notification(item) for item in items),
    )


def _notification(item: ElementTree.Element) -> SalesforceNotification:
    notification_id = _id(_text(item, "Id"), "Notification/Id")
    sobject = item.find(f"{{{OUTBOUND}}}sObject")
    if sobject is None:
        raise NotProviderFormat("Each `Notification` holds an `sObject`.")
    sobject_type = (sobject.get(f"{{{XSI}}}type") or "").rpartition(":")[2]
    if not sobject_type:
        raise NotProviderFormat("Each `sObject` names its type (`xsi:type`, e.g. `sf:Opportunity`).")
    fields: dict[str, str | None] = {}
    for child in sobject:
        namespace, _, name = child.tag.rpartition("}")
        if namespace.lstrip("{") != SOBJECT or not name or len(name) > MAX_FIELD_NAME or len(child):
            continue  # only the sObject's own scalar fields
        fields[name] = None if child.get(f"{{{XSI}}}nil") == "true" else (child.text or "")
        if len(fields) > MAX_FIELDS:
            raise NotProviderFormat(f"An `sObject` holds at most {MAX_FIELDS} fields.")
    object_id = fields.get("Id")
    if object_id is not None and (not object_id.strip() or len(object_id) > MAX_ID_LENGTH):
        raise NotProviderFormat("`sObject/Id` must be a Salesforce id.")
    return SalesforceNotification(
        notification_id=notification_id,
        sobject_type=sobject_type[:64],
        object_id=object_id,
        timestamp=_timestamp(fields.get("LastModifiedDate")),
        fields=fields,
    )


def deal_of(payload: Mapping[str, Any], loss_reason_field: str | None) -> CrmDeal:
    """What an Opportunity notification says about the deal. `IsClosed` and `IsWon` say whether it
    is won or lost (else `StageName`, through the stage map); the lost reason is the value of the
    integration's loss-reason field. An Outbound Message sends only the Opportunity's own fields: the
    account is named by its `AccountId`."""
    fields: Mapping[str, Any] = payload.get("fields") or {}
    closed, won = _boolean(fields.get("IsClosed")), _boolean(fields.get("IsWon"))
    status = None
    if closed is True:
        status = "won" if won is True else "lost"
    elif closed is False:
        status = "open"
    elif won is True:
        status = "won"
    account = fields.get("AccountId")
    return CrmDeal(
        title=fields.get("Name"),
        account_name=f"Salesforce account {account}" if account else None,
        value=fields.get("Amount"),
        value_sent="Amount" in fields,
        currency=fields.get("CurrencyIsoCode"),
        expected_close_date=fields.get("CloseDate"),
        expected_close_date_sent="CloseDate" in fields,
        stage=fields.get("StageName"),
        status=status,
        lost_reason=fields.get(loss_reason_field or DEFAULT_LOSS_REASON_FIELD),
        owner=fields.get("OwnerId") or None,
    )


def token_matches(sent: str | None, token: str) -> bool:
    """Whether the endpoint URL's token is the integration's (compared in constant time)."""
    return hmac.compare_digest((sent or "").encode(), token.encode()) and bool(token)


# --- what Salesforce is answered ---------------------------------------------------------

_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}">\n'
    "  <soapenv:Body>\n{body}\n  </soapenv:Body>\n"
    "</soapenv:Envelope>\n"
)

ACK = _ENVELOPE.format(
    body=f'    <notificationsResponse xmlns="{OUTBOUND}">\n      <Ack>true</Ack>\n    </notificationsResponse>'
)


def soap_fault(code: str, detail: str, *, client: bool = True) -> str:
    """A SOAP 1.1 fault: Salesforce shows its `faultstring` as the delivery's failure reason; the
    `detail` names our problem `code`."""
    body = (
        "    <soapenv:Fault>\n"
        f"      <faultcode>soapenv:{'Client' if client else 'Server'}</faultcode>\n"
        f"      <faultstring>{escape(detail)}</faultstring>\n"
        f'      <detail><code xmlns="urn:dealcoach:problem">{escape(code)}</code></detail>\n'
        "    </soapenv:Fault>"
    )
    return _ENVELOPE.format(body=body)


def _text(parent: ElementTree.Element, name: str) -> str | None:
    found = parent.find(f"{{{OUTBOUND}}}{name}")
    return None if found is None or found.get(f"{{{XSI}}}nil") == "true" else (found.text or "").strip()


def _id(value: str | None, name: str) -> str:
    if not value or len(value) > MAX_ID_LENGTH:
        raise NotProviderFormat(f"`{name}` is required (a Salesforce id).")
    return value


def _boolean(value: Any) -> bool | None:
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    return None


def _timestamp(value: str | None) -> dt.datetime | None:
    """`LastModifiedDate`: xsd:dateTime (`2025-04-16T10:00:00.000Z`)."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise NotProviderFormat("`LastModifiedDate` must be an xsd:dateTime.") from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
