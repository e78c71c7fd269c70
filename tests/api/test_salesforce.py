"""Salesforce Outbound Messages in (API.md: CRM integrations): the token, the inbox, the XML parser
that refuses DTDs and entities, and the inbox applier applying Opportunities under the deal rules.

The envelope is the documented Outbound Message (SOAP 1.1 `notifications`, one `Notification` of an
`sf:Opportunity`, acknowledged by a `notificationsResponse` whose `Ack` is `true`), adapted only in
its ids, the organisation and the fields the message sends."""

from __future__ import annotations

import resource
from typing import Any
from xml.sax.saxutils import escape

import pytest
from defusedxml.ElementTree import fromstring

from app.services.inbox_applier import InboxApplier
from tests.helpers import Api, assert_problem

ORG = "00D5e000000KQ2eEAG"
TOKEN = "sf-outbound-token-7c1e"
CRM_SELLER = "0055e000001AbCdAAK"
CRM_OTHER = "0055e000001XyZwAAK"
OPPORTUNITY = "0065e00000B1mXyAAJ"
HOOK = "/v1/integrations/salesforce/outbound-messages"
EVENTS = "/v1/integrations/salesforce/events"
SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
OUTBOUND = "{http://soap.sforce.com/2005/09/outbound}"

ENVELOPE = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k5e000000CaRkAAK</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D5e000000KQ2e</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D5e000000KQ2e</PartnerUrl>
{notifications}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
"""

FIELDS: dict[str, str | None] = {
    "Id": OPPORTUNITY,
    "AccountId": "0015e00000ZkM3hAAF",
    "Amount": "25000.0",
    "CloseDate": "2025-06-30",
    "CurrencyIsoCode": "EUR",
    "IsClosed": "false",
    "IsWon": "false",
    "LastModifiedDate": "2025-04-15T15:39:01.000Z",
    "Loss_Reason__c": None,
    "Name": "Acme - 200 seats",
    "OwnerId": CRM_SELLER,
    "StageName": "Qualification",
}


def notification(n: int, sobject: str = "Opportunity", **fields: str | None) -> str:
    values = FIELDS | fields
    lines = "\n".join(
        f'     <sf:{name} xsi:nil="true"/>' if value is None else f"     <sf:{name}>{escape(value)}</sf:{name}>"
        for name, value in values.items()
    )
    return (
        f"   <Notification>\n    <Id>04l5e00000Gx{n:06d}</Id>\n"
        f'    <sObject xsi:type="sf:{sobject}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">\n'
        f"{lines}\n    </sObject>\n   </Notification>"
    )


def message(*notifications: str, org: str = ORG) -> str:
    return ENVELOPE.format(org=org, notifications="\n".join(notifications or (notification(1),)))


async def send(
    api: Api, body: str | bytes, token: str | None = TOKEN, content_type: str = "text/xml; charset=utf-8"
) -> Any:
    params = {} if token is None else {"token": token}
    content = body.encode() if isinstance(body, str) else body
    return await api.client.post(HOOK, content=content, params=params, headers={"content-type": content_type})


def assert_acked(response: Any) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    ack = fromstring(response.content).find(f"{SOAP}Body/{OUTBOUND}notificationsResponse/{OUTBOUND}Ack")
    assert ack is not None and ack.text == "true", response.text


def assert_fault(response: Any, code: str = "malformed_payload") -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/xml")
    fault = fromstring(response.content).find(f"{SOAP}Body/{SOAP}Fault")
    assert fault is not None and fault.findtext("faultcode") == "soapenv:Client", response.text
    assert fault.findtext("detail/{urn:dealcoach:problem}code") == code
    return fault.findtext("faultstring") or ""


async def apply(app: Any) -> None:
    await InboxApplier(app.state.sessionmaker).drain(timeout=20)


async def inbox(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.get(EVENTS, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


async def deal_of(api: Api, entry: dict[str, Any]) -> dict[str, Any]:
    return (await api.get(f"/v1/deals/{entry['deal_id']}")).json()  # type: ignore[no-any-return]


@pytest.fixture
async def crm(api: Api) -> dict[str, Any]:
    """A seller (with a manager: losses get a reviewer), and the Salesforce integration mapping the
    CRM user to them and Salesforce's stage names to ours."""
    manager = await api.make_member("manager", key=False)
    seller = await api.make_member("seller", manager=manager, key=False)
    other = await api.make_member("seller", manager=manager, key=False)
    config = {
        "account_id": ORG,
        "credentials": {"token": TOKEN},
        "stage_map": {"Qualification": "qualification", "Proposal/Price Quote": "proposal"},
        "owner_map": {CRM_SELLER: seller.id, CRM_OTHER: other.id},
        "loss_reason_map": {"Too expensive": "price"},
    }
    saved = await api.put("/v1/integrations/salesforce", json=config)
    assert saved.status_code == 200, saved.text
    assert saved.json()["loss_reason_field"] == "Loss_Reason__c"
    return {"seller": seller, "other": other, "manager": manager, "member_id": saved.json()["member_id"]}


async def test_the_documented_message_makes_the_deal_as_the_integration(
    api: Api, crm: dict[str, Any], app: Any
) -> None:
    assert_acked(await send(api, message()))
    [entry] = await inbox(api)
    assert entry["outcome"] == "pending" and entry["provider_event_id"] == "04l5e00000Gx000001"
    await apply(app)
    [entry] = await inbox(api)
    assert entry["outcome"] == "applied" and entry["problem"] is None
    assert (entry["action"], entry["object_type"], entry["object_id"]) == ("upsert", "Opportunity", OPPORTUNITY)
    assert entry["provider_timestamp"] == "2025-04-15T15:39:01Z"
    deal = await deal_of(api, entry)
    assert deal["name"] == "Acme - 200 seats" and deal["account_name"] == "Salesforce account 0015e00000ZkM3hAAF"
    assert deal["owner_id"] == crm["seller"].id and deal["stage"] == "qualification"
    assert deal["amount"] == {"amount": "25000.00", "currency": "EUR"} and deal["expected_close_date"] == "2025-06-30"
    assert deal["external_refs"] == [{"source": "salesforce", "external_id": OPPORTUNITY}]
    history = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    assert [(e["type"], e["actor_id"]) for e in history] == [("deal.created", crm["member_id"])]


async def test_token_and_organization_are_checked_before_anything_is_stored(api: Api, crm: dict[str, Any]) -> None:
    assert_problem(await send(api, message(), token="wrong"), 401, "invalid_signature")
    assert_problem(await send(api, message(), token=TOKEN + "x"), 401, "invalid_signature")
    assert_problem(await send(api, message(), token=None), 401, "invalid_signature")
    assert_problem(await send(api, message(org="00D000000000000AAA")), 401, "invalid_signature")
    assert await inbox(api) == []
    disabled = await api.put("/v1/integrations/salesforce", json={"account_id": ORG, "enabled": False})
    assert disabled.status_code == 200, disabled.text
    assert_problem(await send(api, message()), 401, "invalid_signature")
    assert await inbox(api) == []


async def test_an_endpoint_url_with_more_in_its_query_string_is_accepted(api: Api, crm: dict[str, Any]) -> None:
    content = message().encode()
    response = await api.client.post(
        HOOK, content=content, params={"token": TOKEN, "org": "emea"}, headers={"content-type": "text/xml"}
    )
    assert response.status_code == 200, response.text
    assert len(await inbox(api)) == 1


async def test_a_body_that_is_not_an_outbound_message_is_a_soap_fault(api: Api, crm: dict[str, Any]) -> None:
    assert "well-formed" in assert_fault(await send(api, "<soapenv:Envelope"))
    assert_fault(await send(api, "<nope/>"))
    assert_fault(await send(api, message().replace("notifications", "somethingElse")))
    assert_fault(await send(api, message().replace(f"<OrganizationId>{ORG}</OrganizationId>", "")))
    no_id = notification(1).replace("<Id>04l5e00000Gx000001</Id>", "")
    assert_fault(await send(api, message(no_id)))
    assert_fault(await send(api, message(notification(1, LastModifiedDate="yesterday"))))
    assert_fault(await send(api, message(*(notification(n) for n in range(101)))))
    assert_problem(await send(api, message(), content_type="application/json"), 415, "unsupported_media_type")
    assert await inbox(api) == []


BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
{message(notification(1, Name="&lol9;")).split("?>", 1)[1]}"""

EXTERNAL_ENTITY = f"""<?xml version="1.0"?>
<!DOCTYPE envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
{message(notification(1, Name="&xxe;")).split("?>", 1)[1]}"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
async def test_entities_and_dtds_are_refused_unexpanded(api: Api, crm: dict[str, Any], payload: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    response = await send(api, payload.replace("&amp;", "&"))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert "DTDs and entities are refused" in assert_fault(response)
    assert "root:" not in response.text
    assert grown_kib < 50 * 1024  # expanded, the bomb would take gigabytes
    assert await inbox(api) == []


async def test_a_resent_message_is_acknowledged_and_applied_once(api: Api, crm: dict[str, Any], app: Any) -> None:
    for _ in range(5):
        assert_acked(await send(api, message()))
    assert_acked(await send(api, message(), content_type="application/soap+xml"))
    [entry] = await inbox(api)
    await apply(app)
    assert_acked(await send(api, message()))
    await apply(app)
    [entry] = await inbox(api)
    assert entry["outcome"] == "applied"
    deal = await deal_of(api, entry)
    history = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    assert deal["version"] == 1 and [e["type"] for e in history] == ["deal.created"]


async def test_change_then_lost_with_an_unmapped_reason_opens_the_review(
    api: Api, crm: dict[str, Any], app: Any
) -> None:
    assert_acked(await send(api, message(notification(1))))
    changed = notification(2, StageName="Proposal/Price Quote", LastModifiedDate="2025-04-16T10:00:00Z")
    assert_acked(await send(api, message(changed)))
    await apply(app)
    assert (await deal_of(api, (await inbox(api))[0]))["stage"] == "proposal"

    lost = notification(
        3,
        StageName="Closed Lost",
        IsClosed="true",
        Loss_Reason__c="Went quiet",
        LastModifiedDate="2025-04-17T10:00:00Z",
    )
    assert_acked(await send(api, message(lost)))
    await apply(app)
    entries = await inbox(api)
    assert [e["outcome"] for e in entries] == ["applied", "applied", "applied"]
    deal = await deal_of(api, entries[0])
    assert deal["stage"] == "closed_lost"
    assert deal["loss"] == {"reason_code": "other", "competitor": None, "detail": "Went quiet"}
    reviews = (await api.get("/v1/closed-lost-reviews", params={"owner_id": crm["seller"].id})).json()["items"]
    assert [(r["deal_id"], r["loss_reason_code"], r["reviewer_id"]) for r in reviews] == [
        (deal["id"], "other", crm["manager"].id)
    ]


async def test_the_loss_reason_field_is_the_integrations_and_maps(api: Api, crm: dict[str, Any], app: Any) -> None:
    config = {
        "account_id": ORG,
        "owner_map": {CRM_SELLER: crm["seller"].id},
        "loss_reason_map": {"Too expensive": "price"},
        "loss_reason_field": "Reason_Lost__c",
    }
    saved = await api.put("/v1/integrations/salesforce", json=config)
    assert saved.status_code == 200 and saved.json()["loss_reason_field"] == "Reason_Lost__c", saved.text
    lost = notification(1, IsClosed="true", Reason_Lost__c="Too expensive", Loss_Reason__c="ignored")
    assert_acked(await send(api, message(lost)))
    await apply(app)
    deal = await deal_of(api, (await inbox(api))[0])
    assert deal["loss"] == {"reason_code": "price", "competitor": None, "detail": None}
    refused = await api.put("/v1/integrations/pipedrive", json={"account_id": "1", "loss_reason_field": "X"})
    assert_problem(refused, 422, "validation_error")
    assert_problem(
        await api.put("/v1/integrations/salesforce", json=config | {"loss_reason_field": "a b"}),
        422,
        "validation_error",
    )


async def test_owner_mapped_to_a_manager_is_rejected_and_the_deal_keeps_its_seller(
    api: Api, crm: dict[str, Any], app: Any
) -> None:
    assert_acked(await send(api, message()))
    await apply(app)
    promoted = await api.patch(f"/v1/members/{crm['other'].id}", json={"role": "manager", "manager_id": None})
    assert promoted.status_code == 200, promoted.text
    moved = notification(2, OwnerId=CRM_OTHER, Name="Renamed in Salesforce", LastModifiedDate="2025-04-16T10:00:00Z")
    assert_acked(await send(api, message(moved)))
    await apply(app)
    latest = (await inbox(api))[0]
    assert latest["outcome"] == "rejected" and latest["problem"]["code"] == "owner_must_be_seller"
    deal = await deal_of(api, latest)
    assert deal["owner_id"] == crm["seller"].id and deal["name"] == "Renamed in Salesforce"


async def test_an_older_notification_is_unchanged_and_other_sobjects_ignored(
    api: Api, crm: dict[str, Any], app: Any
) -> None:
    newer = notification(2, Name="Newer", LastModifiedDate="2025-04-16T10:00:00Z")
    older = notification(3, Name="Older", LastModifiedDate="2025-04-15T16:00:00Z")
    account = notification(4, sobject="Account", Id="0015e00000ZkM3hAAF")
    assert_acked(await send(api, message(notification(1), newer, older, account)))
    await apply(app)
    # Stored together, the four share their arrival time: compare them by notification id.
    entries = {e["provider_event_id"][-1]: e for e in await inbox(api)}
    assert {n: e["outcome"] for n, e in entries.items()} == {
        "4": "ignored",
        "3": "unchanged",
        "2": "applied",
        "1": "applied",
    }
    assert (await deal_of(api, entries["3"]))["name"] == "Newer"
