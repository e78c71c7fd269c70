"""HubSpot webhooks in (API.md: CRM integrations): signature v3, the inbox, and the inbox applier
reading each deal back from HubSpot's CRM API (a fake served on loopback) and applying it under
the deal rules, as the integration's member.

The batch is HubSpot's documented example (webhooks API, "Example payload": a
`contact.propertyChange` and a `contact.creation`), adapted only in its ids, with deal events of
the same shape."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from app.domain.hubspot import fresh, signature_v3, signed_uri
from app.services.inbox_applier import ApplierConfig, InboxApplier
from app.settings import Settings
from tests.conftest import settings_for
from tests.helpers import Api, assert_problem
from tests.hubspot_api import FakeHubSpot, running_hubspot
from tests.statements import record_statements

PORTAL = 62515
SECRET, TOKEN = "hs-client-secret-7f3a", "pat-na1-test-token"
CRM_SELLER, CRM_OTHER = "41230001", "41230002"  # HubSpot owner ids
HOOK = "/v1/integrations/hubspot/webhooks"
EVENTS = "/v1/integrations/hubspot/events"
BASE = "http://testserver"

# HubSpot's example payload (a batch of two contact events), adapted in its ids.
EXAMPLE: list[dict[str, Any]] = [
    {
        "objectId": 1246965,
        "propertyName": "lifecyclestage",
        "propertyValue": "subscriber",
        "changeSource": "ACADEMY",
        "eventId": 3816279340,
        "subscriptionId": 25,
        "portalId": PORTAL,
        "appId": 1160452,
        "occurredAt": 1462216307945,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
    },
    {
        "objectId": 1246978,
        "changeSource": "IMPORT",
        "eventId": 3816279480,
        "subscriptionId": 22,
        "portalId": PORTAL,
        "appId": 1160452,
        "occurredAt": 1462216307945,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
    },
]


def deal_event(
    kind: str = "creation", *, n: int, deal: int = 9001, at: int = 1744731541000, **extra: Any
) -> dict[str, Any]:
    event = copy.deepcopy(EXAMPLE[1]) | {
        "objectId": deal,
        "eventId": 5000000000 + n,
        "occurredAt": at,
        "subscriptionType": f"deal.{kind}",
        "changeSource": "CRM_UI",
    }
    if kind == "propertyChange":
        event |= {"propertyName": "dealstage", "propertyValue": "x"}
    return event | extra


def sign(body: bytes, *, uri: str = BASE + HOOK, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """Sign as HubSpot does (signature v3), independently of the code under test."""
    timestamp = str(at if at is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), b"POST" + uri.encode() + body + timestamp.encode(), hashlib.sha256).digest()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


async def send(api: Api, batch: Any, headers: dict[str, str] | None = None, path: str = HOOK) -> Any:
    body = orjson.dumps(batch)
    return await api.client.post(path, content=body, headers=headers if headers is not None else sign(body))


def deal_state(stage: str, modified: str, **extra: Any) -> dict[str, Any]:
    return {
        "dealname": "Acme renewal",
        "amount": "25000",
        "deal_currency_code": "EUR",
        "closedate": "2025-06-30T00:00:00Z",
        "dealstage": stage,
        "pipeline": "default",
        "hubspot_owner_id": CRM_SELLER,
        "closed_lost_reason": None,
        "hs_lastmodifieddate": modified,
    } | extra


@pytest.fixture
async def hubspot() -> AsyncIterator[FakeHubSpot]:
    async with running_hubspot(TOKEN) as fake:
        yield fake


async def apply(app: Any, hubspot: FakeHubSpot) -> InboxApplier:
    applier = InboxApplier(app.state.sessionmaker, ApplierConfig(hubspot_api_url=hubspot.url))
    try:
        await applier.drain(timeout=20)
    finally:
        await applier.close()
    return applier


@pytest.fixture
async def crm(api: Api) -> dict[str, Any]:
    """A seller with a manager, another seller, and the HubSpot integration: the default pipeline's
    stages map to ours (one by `pipeline:dealstage`), the CRM owners to the sellers."""
    manager = await api.make_member("manager", key=False)
    seller = await api.make_member("seller", manager=manager, key=False)
    other = await api.make_member("seller", manager=manager, key=False)
    config = {
        "account_id": str(PORTAL),
        "credentials": {"client_secret": SECRET, "access_token": TOKEN},
        "stage_map": {
            "appointmentscheduled": "qualification",
            "default:presentationscheduled": "proposal",
            "contractsent": "negotiation",
        },
        "owner_map": {CRM_SELLER: seller.id, CRM_OTHER: other.id},
        "loss_reason_map": {"Too expensive": "price"},
        "default_currency": "USD",
    }
    saved = await api.put("/v1/integrations/hubspot", json=config)
    assert saved.status_code == 200, saved.text
    return {"seller": seller, "other": other, "manager": manager, "member_id": saved.json()["member_id"]}


async def inbox(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.get(EVENTS, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


async def deal_of(api: Api, entry: dict[str, Any]) -> dict[str, Any]:
    return (await api.get(f"/v1/deals/{entry['deal_id']}")).json()  # type: ignore[no-any-return]


async def test_the_documented_batch_is_stored_and_a_deal_event_read_back_from_hubspot(
    api: Api, crm: dict[str, Any], app: Any, hubspot: FakeHubSpot
) -> None:
    hubspot.deals["9001"] = deal_state("appointmentscheduled", "2025-04-15T15:39:01.000Z")
    response = await send(api, [*EXAMPLE, deal_event(n=1)])
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["outcome"], i["duplicate"]) for i in items] == [
        ("ignored", False),
        ("ignored", False),
        ("pending", False),
    ]
    assert [i["provider_event_id"] for i in items] == [
        f"{PORTAL}:3816279340",
        f"{PORTAL}:3816279480",
        f"{PORTAL}:5000000001",
    ]
    await apply(app, hubspot)
    [path, query, _] = hubspot.requests[0]
    assert path == "/crm/v3/objects/deals/9001"
    assert set(query["properties"].split(",")) >= {"dealname", "dealstage", "hubspot_owner_id", "closed_lost_reason"}

    entry = (await inbox(api, outcome="applied"))[0]
    assert (entry["action"], entry["object_type"], entry["object_id"]) == ("creation", "deal", "9001")
    assert entry["provider_timestamp"] == "2025-04-15T15:39:01Z"
    deal = await deal_of(api, entry)
    assert deal["name"] == "Acme renewal" and deal["account_name"] == f"HubSpot account {PORTAL}"
    assert deal["owner_id"] == crm["seller"].id and deal["stage"] == "qualification"
    assert deal["amount"] == {"amount": "25000.00", "currency": "EUR"} and deal["expected_close_date"] == "2025-06-30"
    assert deal["external_refs"] == [{"source": "hubspot", "external_id": "9001"}]
    history = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    assert [(e["type"], e["actor_id"]) for e in history] == [("deal.created", crm["member_id"])]
    ignored = await inbox(api, outcome="ignored")
    assert {(e["object_type"], e["action"]) for e in ignored} == {
        ("contact", "propertyChange"),
        ("contact", "creation"),
    }


async def test_signature_timestamp_and_portal_are_checked_before_anything_is_stored(
    api: Api, crm: dict[str, Any]
) -> None:
    body = orjson.dumps(EXAMPLE)
    now = int(time.time() * 1000)

    async def post(headers: dict[str, str], content: bytes = body, path: str = HOOK) -> Any:
        return await api.client.post(path, content=content, headers=headers)

    assert_problem(await post(sign(body, secret="another-secret")), 401, "invalid_signature")
    assert_problem(await post(sign(body, uri="http://testserver/elsewhere")), 401, "invalid_signature")
    assert_problem(await post(sign(body, at=now - 6 * 60 * 1000)), 401, "invalid_signature")
    assert_problem(await post(sign(body, at=now + 6 * 60 * 1000)), 401, "invalid_signature")
    assert_problem(await post(sign(body + b" ") | {"Content-Type": "application/json"}), 401, "invalid_signature")
    tampered = sign(body)
    assert_problem(await post(tampered, orjson.dumps([EXAMPLE[1], EXAMPLE[0]])), 401, "invalid_signature")
    assert_problem(await post({"Content-Type": "application/json"}), 401, "invalid_signature")
    assert_problem(await post(sign(body) | {"X-HubSpot-Signature-v3": "not base64!"}), 401, "invalid_signature")
    unknown = [event | {"portalId": 999} for event in EXAMPLE]
    assert_problem(await send(api, unknown), 401, "invalid_signature")
    mixed = [EXAMPLE[0], EXAMPLE[1] | {"portalId": 999}]
    assert_problem(await send(api, mixed), 401, "invalid_signature")
    assert await inbox(api) == []

    # Signed four minutes ago: accepted.
    assert (await post(sign(body, at=now - 4 * 60 * 1000))).status_code == 200
    body2 = orjson.dumps([EXAMPLE[0] | {"eventId": 1}])
    assert (await post(sign(body2), body2)).status_code == 200
    # Disabled: refused like an unknown portal.
    off = await api.put("/v1/integrations/hubspot", json={"account_id": str(PORTAL), "enabled": False})
    assert off.status_code == 200, off.text
    body3 = orjson.dumps([EXAMPLE[0] | {"eventId": 2}])
    assert_problem(await post(sign(body3), body3), 401, "invalid_signature")
    assert len(await inbox(api)) == 3


async def test_a_target_url_with_a_query_string_is_accepted_and_signed_whole(api: Api, crm: dict[str, Any]) -> None:
    """The admin types the target URL into HubSpot, query string and all; HubSpot signs it whole."""
    path = HOOK + "?source=hubspot&team=emea"
    body = orjson.dumps([deal_event(n=1)])
    signed_without_query = sign(body)  # the query is part of what HubSpot signs
    assert_problem(await api.client.post(path, content=body, headers=signed_without_query), 401, "invalid_signature")
    response = await api.client.post(path, content=body, headers=sign(body, uri=BASE + path))
    assert response.status_code == 200, response.text
    assert [e["provider_event_id"] for e in await inbox(api)] == [response.json()["items"][0]["provider_event_id"]]
    # Elsewhere, an undeclared query parameter is still refused.
    assert_problem(await api.get("/v1/integrations/hubspot/events?source=hubspot"), 422, "validation_error")


async def test_a_body_that_is_not_a_hubspot_batch_is_refused(api: Api, crm: dict[str, Any]) -> None:
    too_many = [deal_event(n=n) for n in range(101)]
    assert_problem(await send(api, too_many), 400, "malformed_payload")
    assert_problem(await send(api, {"events": EXAMPLE}), 400, "malformed_payload")
    assert_problem(await send(api, []), 400, "malformed_payload")
    assert_problem(await send(api, [EXAMPLE[0], 3]), 400, "malformed_payload")
    assert_problem(
        await send(api, [{k: v for k, v in EXAMPLE[0].items() if k != "portalId"}]), 400, "malformed_payload"
    )
    # Authentic, but not HubSpot's events: no type, no eventId, a time that is not milliseconds.
    no_type = {k: v for k, v in EXAMPLE[0].items() if k != "subscriptionType"}
    assert_problem(await send(api, [no_type]), 400, "malformed_payload")
    assert_problem(await send(api, [EXAMPLE[0] | {"eventId": None}]), 400, "malformed_payload")
    assert_problem(await send(api, [EXAMPLE[0] | {"occurredAt": "yesterday"}]), 400, "malformed_payload")
    assert_problem(await send(api, [EXAMPLE[0] | {"propertyValue": "a\x00b"}]), 400, "malformed_payload")
    raw = b"[{not json"
    assert_problem(await api.client.post(HOOK, content=raw, headers=sign(raw)), 400, "malformed_payload")
    assert_problem(
        await api.client.post(HOOK, content=b"[]", headers={**sign(b"[]"), "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert await inbox(api) == []


async def test_a_batch_of_100_is_answered_at_once_and_a_replay_applies_once(
    api: Api, crm: dict[str, Any], app: Any, hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "At once": the answer waits on no call to HubSpot, and its SQL does not grow with the
    # batch (a clock here would measure the machine, not the code).
    for deal in [6000, *range(7000, 7100)]:
        hubspot.deals[str(deal)] = deal_state("appointmentscheduled", "2025-04-15T15:39:01Z")
    counts = {}
    for size, first in ((1, 6000), (100, 7000)):
        statements = record_statements(app, monkeypatch)
        response = await send(api, [deal_event(n=first + n, deal=first + n) for n in range(size)])
        monkeypatch.undo()
        assert response.status_code == 200, response.text
        assert {i["outcome"] for i in response.json()["items"]} == {"pending"}
        counts[size] = len(statements)
    assert counts[100] == counts[1], counts
    assert hubspot.requests == []

    # HubSpot sends the same event again (and again): stored once, applied once.
    event = deal_event(n=500, deal=7000)
    answers = [await send(api, [event]) for _ in range(10)]
    assert [a.json()["items"][0]["duplicate"] for a in answers] == [False] + [True] * 9
    assert len({a.json()["items"][0]["id"] for a in answers}) == 1
    applier = await apply(app, hubspot)
    assert applier.applied == 102
    again = await send(api, [event, event])
    assert [i["outcome"] for i in again.json()["items"]] == ["unchanged", "unchanged"]
    entries = await inbox(api, limit=200)
    assert len(entries) == 102 and {e["outcome"] for e in entries} == {"applied", "unchanged"}
    deal = await deal_of(api, next(e for e in entries if e["object_id"] == "7000"))
    history = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    assert [e["type"] for e in history] == ["deal.created"] and deal["version"] == 1


async def test_a_deal_moves_through_the_stages_and_is_lost_with_a_mapped_reason(
    api: Api, crm: dict[str, Any], app: Any, hubspot: FakeHubSpot
) -> None:
    hubspot.deals["9001"] = deal_state("appointmentscheduled", "2025-04-15T15:39:01Z")
    await send(api, [deal_event(n=1)])
    await apply(app, hubspot)
    hubspot.deals["9001"] = deal_state("presentationscheduled", "2025-04-16T10:00:00Z")
    await send(api, [deal_event("propertyChange", n=2, at=1744797600000)])
    await apply(app, hubspot)
    entries = await inbox(api)
    assert (await deal_of(api, entries[0]))["stage"] == "proposal"

    lost = deal_state("closedlost", "2025-04-17T10:00:00Z", closed_lost_reason="Too expensive")
    hubspot.deals["9001"] = lost
    await send(api, [deal_event("propertyChange", n=3, at=1744884000000)])
    await apply(app, hubspot)
    entries = await inbox(api)
    assert [e["outcome"] for e in entries] == ["applied", "applied", "applied"]
    deal = await deal_of(api, entries[0])
    assert deal["stage"] == "closed_lost" and deal["owner_id"] == crm["seller"].id
    assert deal["loss"] == {"reason_code": "price", "competitor": None, "detail": None}
    history = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    assert len(history) >= 3 and {e["actor_id"] for e in history} == {crm["member_id"]}
    reviews = (await api.get("/v1/closed-lost-reviews", params={"owner_id": crm["seller"].id})).json()["items"]
    assert [(r["deal_id"], r["loss_reason_code"], r["reviewer_id"]) for r in reviews] == [
        (deal["id"], "price", crm["manager"].id)
    ]
    # An older event, delivered late: the deal already reflects a newer state.
    await send(api, [deal_event("propertyChange", n=4, at=1744800000000)])
    await apply(app, hubspot)
    assert (await inbox(api))[0]["outcome"] == "unchanged"


async def test_an_owner_who_is_a_manager_is_rejected_and_the_deal_keeps_its_seller(
    api: Api, crm: dict[str, Any], app: Any, hubspot: FakeHubSpot
) -> None:
    hubspot.deals["9001"] = deal_state("appointmentscheduled", "2025-04-15T15:39:01Z")
    await send(api, [deal_event(n=1)])
    await apply(app, hubspot)
    promoted = await api.patch(f"/v1/members/{crm['other'].id}", json={"role": "manager", "manager_id": None})
    assert promoted.status_code == 200, promoted.text
    hubspot.deals["9001"] = deal_state(
        "appointmentscheduled", "2025-04-16T10:00:00Z", hubspot_owner_id=CRM_OTHER, dealname="Renamed in HubSpot"
    )
    await send(api, [deal_event("propertyChange", n=2, at=1744797600000)])
    await apply(app, hubspot)
    latest = (await inbox(api))[0]
    assert latest["outcome"] == "rejected" and latest["problem"]["code"] == "owner_must_be_seller"
    deal = await deal_of(api, latest)
    assert deal["owner_id"] == crm["seller"].id and deal["name"] == "Renamed in HubSpot"


async def test_a_deletion_is_recorded_without_reading_hubspot(
    api: Api, crm: dict[str, Any], app: Any, hubspot: FakeHubSpot
) -> None:
    hubspot.deals["9001"] = deal_state("appointmentscheduled", "2025-04-15T15:39:01Z")
    await send(api, [deal_event(n=1)])
    await apply(app, hubspot)
    del hubspot.deals["9001"]
    reads = len(hubspot.requests)
    await send(api, [deal_event("deletion", n=2, at=1744797600000)])
    await apply(app, hubspot)
    assert len(hubspot.requests) == reads
    entries = await inbox(api)
    assert [e["outcome"] for e in entries] == ["applied", "applied"]
    history = (await api.get(f"/v1/deals/{entries[0]['deal_id']}/history")).json()["items"]
    assert [(e["type"], e["actor_id"]) for e in history][-1] == ("deal.deleted_in_crm", crm["member_id"])
    assert history[-1]["data"] == {"source": "hubspot", "external_id": "9001"}


async def test_hubspot_rate_limits_and_failures_are_retried_and_nothing_is_lost(
    api: Api, crm: dict[str, Any], app: Any, hubspot: FakeHubSpot
) -> None:
    hubspot.deals["9001"] = deal_state("appointmentscheduled", "2025-04-15T15:39:01Z")
    # A 429 with Retry-After, then a 500: both retried within the attempt, honouring Retry-After.
    hubspot.fail(429, retry_after="1")
    hubspot.fail(500)
    await send(api, [deal_event(n=1)])
    await apply(app, hubspot)
    times = [at for _, _, at in hubspot.requests]
    assert len(times) == 3 and times[1] - times[0] >= 0.95
    assert (await inbox(api))[0]["outcome"] == "applied"

    # HubSpot keeps answering 429: the event stays pending, says why, and is applied once it answers.
    hubspot.deals["9002"] = deal_state("contractsent", "2025-04-15T15:39:01Z")
    hubspot.fail(429, times=3, retry_after="1")
    await send(api, [deal_event(n=2, deal=9002)])
    await apply(app, hubspot)
    pending = (await inbox(api))[0]
    assert pending["outcome"] == "pending" and pending["problem"]["code"] == "crm_unavailable"
    await apply(app, hubspot)  # not due yet: Retry-After is honoured
    assert (await inbox(api))[0]["outcome"] == "pending"
    await asyncio.sleep(1.1)
    await apply(app, hubspot)
    done = (await inbox(api))[0]
    assert (done["outcome"], done["problem"]) == ("applied", None)
    assert (await deal_of(api, done))["stage"] == "negotiation"


class TestBehindAProxy:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return settings_for(database_url, trust_forwarded_headers=True)

    async def test_the_forwarded_scheme_and_host_are_the_uri_hubspot_signed(
        self, api: Api, crm: dict[str, Any]
    ) -> None:
        body = orjson.dumps(EXAMPLE)
        public = "https://dealcoach.example.com" + HOOK
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "dealcoach.example.com"}
        assert (
            await api.client.post(HOOK, content=body, headers=sign(body, uri=public) | forwarded)
        ).status_code == 200
        assert_problem(
            await api.client.post(HOOK, content=body, headers=sign(body, uri=public)), 401, "invalid_signature"
        )


async def test_forwarded_headers_are_ignored_unless_trusted(api: Api, crm: dict[str, Any]) -> None:
    body = orjson.dumps(EXAMPLE)
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "dealcoach.example.com"}
    public = "https://dealcoach.example.com" + HOOK
    assert_problem(
        await api.client.post(HOOK, content=body, headers=sign(body, uri=public) | forged), 401, "invalid_signature"
    )
    assert (await api.client.post(HOOK, content=body, headers=sign(body) | forged)).status_code == 200


def test_the_signed_uri_decodes_the_escapes_hubspot_lists() -> None:
    uri = "https://x.example/hook%2Fa?from=hub%3aspot%2Cx&y=%7E&z=%20"
    assert signed_uri(uri) == "https://x.example/hook/a?from=hub:spot,x&y=%7E&z=%20"
    expected = hmac.new(b"s", b"POSThttps://x.example/hook/a?q=a:b[]1700000000000", hashlib.sha256).digest()
    assert signature_v3("s", "POST", "https://x.example/hook%2Fa?q=a%3Ab", b"[]", "1700000000000") == (
        base64.b64encode(expected).decode()
    )


def test_signature_window_is_five_minutes() -> None:

    now = dt.datetime(2025, 4, 15, 12, 0, tzinfo=dt.UTC)
    ms = int(now.timestamp() * 1000)
    assert fresh(str(ms - 299_000), now) and not fresh(str(ms - 301_000), now)
    assert not fresh("soon", now) and not fresh(None, now)
