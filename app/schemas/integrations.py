"""CRM integrations: their configuration, and the inbox of the events they sent."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import Field, StrictBool, StringConstraints

from app.domain.deals import Stage
from app.domain.integrations import InboxOutcome, Provider
from app.domain.money import CURRENCIES
from app.schemas import acme
from app.schemas.common import Code, Page, RequestModel, ResponseModel, examples

MAX_MAP_ENTRIES = 500

CrmKey = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00]+$")]
LossReasonField = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
Currency = Annotated[
    str,
    StringConstraints(max_length=3),
    Field(description="ISO 4217 code", examples=["EUR"], json_schema_extra={"enum": sorted(CURRENCIES)}),
]


class Credentials(RequestModel):
    """What the provider needs: HubSpot `client_secret` and `access_token`, Pipedrive `username`
    and `password` (the HTTP Basic auth its webhooks send), Salesforce `token`. Write-only."""

    model_config = examples(acme.HUBSPOT_CREDENTIALS)

    client_secret: Secret | None = None
    access_token: Secret | None = None
    username: Secret | None = None
    password: Secret | None = None
    token: Secret | None = None


class IntegrationUpdate(RequestModel):
    """The whole configuration; `credentials` may be left out to keep the stored ones (they are
    needed the first time)."""

    model_config = examples(
        {
            "enabled": True,
            "account_id": "12882925",
            "credentials": acme.HUBSPOT_CREDENTIALS,
            **acme.HUBSPOT_MAPPING,
        }
    )

    enabled: StrictBool = True
    account_id: Annotated[
        str,
        StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00\s]+$"),
        Field(
            description="The CRM account its events name (HubSpot `portalId`, Pipedrive `meta.company_id`, "
            "Salesforce `OrganizationId`); one organisation per account and provider",
            examples=["12882925"],
        ),
    ]
    credentials: Credentials | None = Field(default=None, description="Write-only; never shown again")
    stage_map: dict[CrmKey, Stage] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description="CRM stage (or pipeline-stage) id → our stage",
        examples=[{"1": "prospecting", "2": "qualification", "5": "negotiation"}],
    )
    owner_map: dict[CrmKey, uuid.UUID] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description="CRM user id → an active seller's member id",
        examples=[{"18487521": "0190c8a4-6f1e-7000-8000-000000000001"}],
    )
    loss_reason_map: dict[CrmKey, Code] = Field(
        default_factory=dict,
        max_length=MAX_MAP_ENTRIES,
        description="CRM lost reason → a loss-reason code of the catalog; an unmapped one closes as `other`",
        examples=[{"Too expensive": "price"}],
    )
    default_currency: Currency | None = Field(
        default=None, description="The currency of an amount the CRM sends without one"
    )
    loss_reason_field: LossReasonField | None = Field(
        default=None,
        description="Salesforce only: the Opportunity field whose value is the lost reason (its API name; "
        "`Loss_Reason__c` when left out). Other providers send their lost reason themselves",
        examples=["Loss_Reason__c"],
    )


class IntegrationPublic(ResponseModel):
    model_config = examples(
        {
            "provider": "hubspot",
            "enabled": True,
            "account_id": "12882925",
            **acme.HUBSPOT_MAPPING,
            "loss_reason_field": None,
            "member_id": acme.CRM_MEMBER_ID,
            "credentials_set": True,
            "version": 2,
            "updated_at": "2026-10-02T09:10:00Z",
        }
    )

    provider: Provider
    enabled: bool
    account_id: str | None = Field(description="null before the integration is first saved")
    stage_map: dict[str, Stage]
    owner_map: dict[str, uuid.UUID]
    loss_reason_map: dict[str, str]
    default_currency: str | None
    loss_reason_field: str | None = Field(
        default=None, description="Salesforce: the Opportunity field read as the lost reason; null for other providers"
    )
    member_id: uuid.UUID | None = Field(description="The `integration` member the CRM's writes are made as")
    credentials_set: bool = Field(description="Whether credentials are stored (they are never shown)")
    version: int = Field(description="0 before the integration is first saved")
    updated_at: dt.datetime | None


class InboxProblem(ResponseModel):
    model_config = examples({"code": "owner_must_be_seller", "detail": "A deal's owner must be an active seller"})

    code: str = Field(examples=["owner_must_be_seller"])
    detail: str


class InboundEventPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.INBOX_ID,
            "provider_event_id": "12882925:4126395061",
            "received_at": "2026-11-05T16:04:58Z",
            "action": "change",
            "object_type": "deal",
            "object_id": "8812739",
            "provider_timestamp": "2026-11-05T16:04:55Z",
            "outcome": "applied",
            "problem": None,
            "deal_id": acme.DEAL_ID,
        }
    )

    id: uuid.UUID
    provider_event_id: str
    received_at: dt.datetime
    action: str = Field(
        examples=["change"], description="The provider's action (Pipedrive: create, change, delete; Salesforce: upsert)"
    )
    object_type: str = Field(examples=["deal"], description="Pipedrive's entity, Salesforce's sObject type")
    object_id: str | None = Field(description="The CRM's id of the object", examples=["8812739"])
    provider_timestamp: dt.datetime | None = Field(description="When the CRM says it happened")
    outcome: InboxOutcome
    problem: InboxProblem | None
    deal_id: uuid.UUID | None


class InboundEventPage(Page[InboundEventPublic]):
    pass


class InboundReceipt(ResponseModel):
    """What a CRM is answered once its event is stored (before it is applied)."""

    model_config = examples(acme.INBOUND_RECEIPT)

    id: uuid.UUID = Field(description="The inbox entry")
    provider_event_id: str
    outcome: InboxOutcome = Field(description="`pending` until the inbox applier has applied it")
    duplicate: bool = Field(description="true when this provider event was already stored: nothing new is stored")


class InboundBatchReceipt(ResponseModel):
    """What HubSpot is answered once its batch is stored: each event's receipt, in the batch's order."""

    model_config = examples({"items": [acme.INBOUND_RECEIPT]})

    items: list[InboundReceipt]


# The webhooks v2 body Pipedrive sends (documentation: the endpoint reads it itself, so that a body
# that is not Pipedrive's answers 400).
PipedriveText = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")]


class PipedriveMeta(ResponseModel):
    model_config = examples(acme.PIPEDRIVE_META)

    id: PipedriveText | int = Field(description="The event's id: the inbox is deduplicated on it")
    action: PipedriveText = Field(examples=["change"], description="create | change | delete")
    entity: PipedriveText = Field(examples=["deal"])
    entity_id: PipedriveText | int
    company_id: PipedriveText | int = Field(description="The Pipedrive company: the integration's `account_id`")
    timestamp: PipedriveText | int = Field(description="When it happened: RFC 3339, or unix seconds")
    version: PipedriveText = Field(examples=["2.0"])


class PipedriveWebhook(ResponseModel):
    model_config = examples(
        {
            "meta": acme.PIPEDRIVE_META,
            "data": {
                "id": 4711,
                "title": "Globex platform renewal",
                "value": 48000,
                "currency": "EUR",
                "stage_id": 3,
                "owner_id": 18487521,
                "status": "open",
                "expected_close_date": "2026-12-15",
            },
            "previous": {"stage_id": 2},
        }
    )

    meta: PipedriveMeta
    data: dict[str, Any] | None
    previous: dict[str, Any] | None = None


# A Salesforce Outbound Message (SOAP 1.1 `notifications`, one Opportunity notification): the
# endpoint reads the XML itself; this documents it.
SALESFORCE_OUTBOUND_MESSAGE_EXAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5e000000KQ2eEAG</OrganizationId>
   <ActionId>04k5e000000CaRkAAK</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D5e000000KQ2e</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D5e000000KQ2e</PartnerUrl>
   <Notification>
    <Id>04l5e00000Gx7QzAAJ</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0065e00000B1mXyAAJ</sf:Id>
     <sf:AccountId>0015e00000ZkM3hAAF</sf:AccountId>
     <sf:Amount>25000.0</sf:Amount>
     <sf:CloseDate>2025-06-30</sf:CloseDate>
     <sf:CurrencyIsoCode>EUR</sf:CurrencyIsoCode>
     <sf:IsClosed>false</sf:IsClosed>
     <sf:IsWon>false</sf:IsWon>
     <sf:LastModifiedDate>2025-04-15T15:39:01.000Z</sf:LastModifiedDate>
     <sf:Loss_Reason__c xsi:nil="true"/>
     <sf:Name>Acme - 200 seats</sf:Name>
     <sf:OwnerId>0055e000001AbCdAAK</sf:OwnerId>
     <sf:StageName>Qualification</sf:StageName>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
"""


# One event of the batch HubSpot sends (documentation, as above).
HubSpotText = Annotated[str, StringConstraints(max_length=100, pattern=r"^[^\x00]*$")]


class HubSpotEvent(ResponseModel):
    model_config = examples(
        {
            "eventId": 4126395061,
            "subscriptionId": 2412345,
            "portalId": 12882925,
            "appId": 3456789,
            "occurredAt": 1793894695000,
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": 8812739,
            "changeSource": "CRM_UI",
            "propertyName": "dealstage",
            "propertyValue": "presentationscheduled",
        }
    )

    eventId: HubSpotText | int = Field(
        description="With `portalId`, the event's identity: the inbox is deduplicated on it"
    )
    portalId: HubSpotText | int = Field(description="The HubSpot account: the integration's `account_id`")
    objectId: HubSpotText | int = Field(description="The deal's id (for `deal.*` events)")
    subscriptionType: HubSpotText | None = Field(
        default=None,
        examples=["deal.propertyChange"],
        description="deal.creation | deal.propertyChange | deal.deletion | ...",
    )
    eventType: HubSpotText | None = Field(
        default=None, description="Instead of `subscriptionType` in some subscriptions"
    )
    occurredAt: int = Field(description="When it happened, epoch milliseconds")
    subscriptionId: int | None = None
    appId: int | None = None
    attemptNumber: int | None = None
    changeSource: HubSpotText | None = None
    propertyName: HubSpotText | None = None
    propertyValue: Annotated[str, StringConstraints(max_length=65536, pattern=r"^[^\x00]*$")] | None = None
