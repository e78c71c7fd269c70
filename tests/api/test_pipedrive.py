"""Pipedrive webhooks in (API.md: CRM integrations): Basic auth, the inbox, and the inbox applier
applying deal events under the deal rules, as the integration's member.

The payloads are Pipedrive's documented webhooks v2 examples (guide for webhooks v2; a deal
`create` and `change`), adapted only in their ids, the company and the timestamps."""

from __future__ import annotations

import asyncio
import base64
import copy
from typing import Any

import pytest
import sqlalchemy as sa

from app.services.inbox_applier import InboxApplier
from app.settings import Settings
from tests.conftest import settings_for
from tests.helpers import Api, assert_problem

COMPANY = 12882925
CRM_SELLER = 18487521  # the Pipedrive user who owns the deals
CRM_OTHER = 23865811
USERNAME, PASSWORD = "dealcoach", "pd-hook-pass"
HOOK = "/v1/integrations/pipedrive/webhooks"
EVENTS = "/v1/integrations/pipedrive/events"

# Pipedrive's example deal notification (webhooks v2).
EXAMPLE: dict[str, Any] = {
    "meta": {
        "action": "create",
        "entity": "deal",
        "company_id": COMPANY,
        "correlation_id": "123456789-1234-1234-1234-123456789012",
        "entity_id": 123,
        "id": "123456789-1234-1234-1234-123456789012",
        "is_bulk_edit": False,
        "timestamp": "2025-04-15T15:39:01.000Z",
        "type": "general",
        "user_id": CRM_SELLER,
        "version": "2.0",
        "webhook_id": 123,
        "webhook_owner_id": CRM_SELLER,
        "attempt": 1,
        "host": "company.pipedrive.com",
    },
    "data": {
        "add_time": "2025-04-15T14:57:34Z",
        "channel": None,
        "channel_id": None,
        "close_time": None,
        "creator_user_id": CRM_SELLER,
        "currency": "BRL",
        "custom_fields": {},
        "expected_close_date": None,
        "first_won_time": None,
        "id": 123,
        "label_ids": [],
        "lost_reason": None,
        "lost_time": None,
        "org_id": 1,
        "origin": "ManuallyCreated",
        "origin_id": None,
        "owner_id": CRM_SELLER,
        "person_id": 1,
        "pipeline_id": 1,
        "probability": None,
        "stage_change_time": "2025-04-15T15:39:01Z",
        "stage_id": 2,
        "status": "open",
        "title": "Deal 01",
        "update_time": "2025-04-15T15:39:01Z",
        "value": 1,
        "visible_to": "3",
        "won_time": None,
        "is_archived": False,
        "archive_time": None,
    },
    "previous": {"stage_id": 1},
}


def event(
    action: str = "create",
    *,
    n: int,
    deal: int = 123,
    at: str = "2025-04-15T15:39:01.000Z",
    entity: str = "deal",
    **data: Any,
) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    body["meta"] |= {"action": action, "id": f"0b5c3c9e-0000-4000-8000-{n:012d}", "entity_id": deal, "timestamp": at}
    body["meta"]["entity"] = entity
    body["data"] |= {"id": deal, **data}
    if action == "delete":
        body["previous"], body["data"] = body["data"], None
    return body


def basic(username: str = USERNAME, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


async def send(api: Api, body: Any, headers: dict[str, str] | None = None) -> Any:
    return await api.client.post(HOOK, json=body, headers=headers if headers is not None else basic())


async def apply(app: Any) -> InboxApplier:
    """Apply what the inbox holds, through the applier every server runs."""
    applier = InboxApplier(app.state.sessionmaker)
    await applier.drain(timeout=20)
    return applier


@pytest.fixture
async def crm(api: Api) -> dict[str, Any]:
    """A seller (with a manager: losses get a reviewer), and the Pipedrive integration mapping the
    CRM user to them, stage 2 to qualification and 3 to proposal."""
    manager = await api.make_member("manager", key=False)
    seller = await api.make_member("seller", manager=manager, key=False)
    other = await api.make_member("seller", manager=manager, key=False)
    config = {
        "account_id": str(COMPANY),
        "credentials": {"username": USERNAME, "password": PASSWORD},
        "stage_map": {"2": "qualification", "3": "proposal"},
        "owner_map": {str(CRM_SELLER): seller.id, str(CRM_OTHER): other.id},
        "loss_reason_map": {"Too expensive": "price"},
        "default_currency": "EUR",
    }
    saved = await api.put("/v1/integrations/pipedrive", json=config)
    assert saved.status_code == 200, saved.text
    return {"seller": seller, "other": other, "manager": manager, "member_id": saved.json()["member_id"]}


async def inbox(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.get(EVENTS, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


async def deal_of(api: Api, inbox_entry: dict[str, Any]) -> dict[str, Any]:
    return (await api.get(f"/v1/deals/{inbox_entry['deal_id']}")).json()  # type: ignore[no-any-return]


async def test_the_documented_create_makes_the_deal_as_the_integration(api: Api, crm: dict[str, Any], app: Any) -> None:
    response = await send(api, event(n=1))
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "pending" and response.json()["duplicate"] is False
    await apply(app)
    [entry] = await inbox(api)
    assert entry["outcome"] == "applied" and entry["problem"] is None
    assert (entry["action"], entry["object_type"], entry["object_id"]) == ("create", "deal", "123")
    assert entry["provider_timestamp"] == "2025-04-15T15:39:01Z"
    deal = await deal_of(api, entry)
    assert deal["name"] == "Deal 01" and deal["account_name"] == "Pipedrive organization 1"
    assert deal["owner_id"] == crm["seller"].id and deal["stage"] == "qualification"
    assert deal["amount"] == {"amount": "1.00", "currency": "BRL"}
    assert deal["external_refs"] == [{"source": "pipedrive", "external_id": "123"}]
    history = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    assert [(e["type"], e["actor_id"]) for e in history] == [("deal.created", crm["member_id"])]


async def test_credentials_and_account_are_checked_before_anything_is_stored(api: Api, crm: dict[str, Any]) -> None:
    assert_problem(await send(api, event(n=1), basic(password="wrong")), 401, "invalid_signature")
    assert_problem(await send(api, event(n=1), basic(username="other")), 401, "invalid_signature")
    assert_problem(await send(api, event(n=1), {}), 401, "invalid_signature")
    assert_problem(await send(api, event(n=1), {"Authorization": "Basic !!!"}), 401, "invalid_signature")
    unknown = event(n=2)
    unknown["meta"]["company_id"] = 999
    assert_problem(await send(api, unknown), 401, "invalid_signature")
    assert await inbox(api) == []


async def test_a_webhook_url_with_a_query_string_is_accepted(api: Api, crm: dict[str, Any]) -> None:
    response = await api.client.post(HOOK + "?team=emea", json=event(n=1), headers=basic())
    assert response.status_code == 200, response.text
    assert [e["object_id"] for e in await inbox(api)] == ["123"]


async def test_a_body_that_is_not_pipedrives_is_refused(api: Api, crm: dict[str, Any]) -> None:
    assert_problem(await send(api, [1, 2]), 400, "malformed_payload")
    assert_problem(await send(api, {"event": "updated.deal"}), 400, "malformed_payload")
    no_id = event(n=1)
    del no_id["meta"]["id"]
    assert_problem(await send(api, no_id), 400, "malformed_payload")
    assert_problem(await send(api, event(n=1, title="Deal\x00 01")), 400, "malformed_payload")
    bad_time = event(n=1, at="yesterday")
    assert_problem(await send(api, bad_time), 400, "malformed_payload")
    raw = await api.client.post(HOOK, content=b"{not json", headers={**basic(), "content-type": "application/json"})
    assert_problem(raw, 400, "malformed_payload")
    assert_problem(await api.client.post(HOOK, content=b"meta", headers=basic()), 415, "unsupported_media_type")
    assert await inbox(api) == []


async def test_change_then_lost_without_a_mapped_reason_opens_the_review(
    api: Api, crm: dict[str, Any], app: Any
) -> None:
    await send(api, event(n=1))
    await send(api, event("change", n=2, at="2025-04-16T10:00:00Z", stage_id=3, value=25000, currency="EUR"))
    await apply(app)
    changed = await deal_of(api, (await inbox(api))[0])
    assert changed["stage"] == "proposal" and changed["amount"] == {"amount": "25000.00", "currency": "EUR"}

    lost = event("change", n=3, at="2025-04-17T10:00:00Z", status="lost", lost_reason="Went quiet", value=25000)
    await send(api, lost | {"data": lost["data"] | {"currency": "EUR"}})
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


async def test_owner_mapped_to_a_manager_is_rejected_and_the_deal_keeps_its_seller(
    api: Api, crm: dict[str, Any], app: Any
) -> None:
    await send(api, event(n=1))
    await apply(app)
    # The other CRM user's member became a manager after the integration was configured.
    promoted = await api.patch(f"/v1/members/{crm['other'].id}", json={"role": "manager", "manager_id": None})
    assert promoted.status_code == 200, promoted.text
    await send(api, event("change", n=2, at="2025-04-16T10:00:00Z", owner_id=CRM_OTHER, title="Renamed in CRM"))
    await apply(app)
    latest = (await inbox(api))[0]
    assert latest["outcome"] == "rejected" and latest["problem"]["code"] == "owner_must_be_seller"
    deal = await deal_of(api, latest)
    assert deal["owner_id"] == crm["seller"].id and deal["name"] == "Renamed in CRM"

    # A CRM user mapped to nobody: a new deal is not created.
    await send(api, event(n=3, deal=456, owner_id=777))
    await apply(app)
    latest = (await inbox(api))[0]
    assert (latest["outcome"], latest["problem"]["code"], latest["deal_id"]) == ("rejected", "unknown_owner", None)
    assert [e["object_id"] for e in await inbox(api, outcome="rejected")] == ["456", "123"]


async def test_an_older_event_is_unchanged(api: Api, crm: dict[str, Any], app: Any) -> None:
    await send(api, event(n=1))
    await send(api, event("change", n=2, at="2025-04-16T10:00:00Z", title="Newer"))
    await send(api, event("change", n=3, at="2025-04-15T16:00:00Z", title="Older"))
    await apply(app)
    entries = await inbox(api)
    assert [e["outcome"] for e in entries] == ["unchanged", "applied", "applied"]
    assert (await deal_of(api, entries[0]))["name"] == "Newer"


async def test_a_replay_is_stored_and_applied_once(api: Api, crm: dict[str, Any], app: Any) -> None:
    answers = [await send(api, event(n=1)) for _ in range(10)]
    assert {a.status_code for a in answers} == {200}
    assert [a.json()["duplicate"] for a in answers] == [False] + [True] * 9
    assert len({a.json()["id"] for a in answers}) == 1
    await apply(app)
    again = await send(api, event(n=1))
    assert again.json()["outcome"] == "applied" and again.json()["duplicate"] is True
    await apply(app)
    [entry] = await inbox(api)
    deal = await deal_of(api, entry)
    assert deal["version"] == 1
    history = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    assert [e["type"] for e in history] == ["deal.created"]


async def test_a_deletion_is_recorded_not_done(api: Api, crm: dict[str, Any], app: Any) -> None:
    await send(api, event(n=1))
    await send(api, event("delete", n=2, at="2025-04-16T10:00:00Z"))
    await apply(app)
    entries = await inbox(api)
    assert [e["outcome"] for e in entries] == ["applied", "applied"]
    deal = await deal_of(api, entries[0])
    assert deal["name"] == "Deal 01"
    history = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    assert [(e["type"], e["actor_id"]) for e in history] == [
        ("deal.created", crm["member_id"]),
        ("deal.deleted_in_crm", crm["member_id"]),
    ]
    assert history[1]["data"] == {"source": "pipedrive", "external_id": "123"}


async def test_other_entities_are_ignored(api: Api, crm: dict[str, Any], app: Any) -> None:
    person = event(n=1, entity="person")
    response = await send(api, person)
    assert response.json()["outcome"] == "ignored"
    await apply(app)
    [entry] = await inbox(api, outcome="ignored")
    assert entry["object_type"] == "person" and entry["deal_id"] is None
    assert await inbox(api, outcome="applied") == []


async def test_the_inbox_pages_newest_first(api: Api, crm: dict[str, Any]) -> None:
    for n in range(3):
        await send(api, event(n=n, entity="person"))
    first = (await api.get(EVENTS, params={"limit": 2})).json()
    rest = (await api.get(EVENTS, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    ids = [e["provider_event_id"][-1] for e in first["items"] + rest["items"]]
    assert ids == ["2", "1", "0"] and rest["next_cursor"] is None
    assert_problem(await api.get(EVENTS, params={"cursor": "nope"}), 422, "invalid_cursor")


class TestWithTheServersApplier:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return settings_for(database_url, inbox_applier="on", inbox_poll_interval=5.0)

    async def test_a_stored_event_wakes_the_applier(self, api: Api, crm: dict[str, Any]) -> None:
        await send(api, event(n=1))
        for _ in range(100):  # the poll is 5 s: only the wake-up applies it this soon
            entries = await inbox(api)
            if entries[0]["outcome"] != "pending":
                break
            await asyncio.sleep(0.05)
        assert entries[0]["outcome"] == "applied"


async def test_appliers_share_the_inbox_and_apply_each_event_once(api: Api, crm: dict[str, Any], app: Any) -> None:
    for deal in (1, 2, 3):
        await send(api, event(n=deal * 10, deal=deal))
        await send(api, event("change", n=deal * 10 + 1, deal=deal, at="2025-04-16T10:00:00Z", title=f"Deal {deal}b"))
    appliers = [InboxApplier(app.state.sessionmaker) for _ in range(3)]
    await asyncio.gather(*(a.drain(timeout=20) for a in appliers))
    assert sum(a.applied for a in appliers) == 6
    entries = await inbox(api)
    assert [e["outcome"] for e in entries] == ["applied"] * 6
    for entry in entries[:3]:
        deal = await deal_of(api, entry)
        history = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
        assert [e["type"] for e in history] == ["deal.created", "deal.updated"]
        assert deal["name"].endswith("b")


async def test_events_applied_together_each_end_as_they_would_alone(api: Api, crm: dict[str, Any], app: Any) -> None:
    """An applier applies the upserts of one claim together, in one transaction; each event still
    gets its own outcome, and one a rule refuses leaves nothing behind but that outcome."""
    await send(api, event(n=1))  # deal 123, the seller's
    await send(api, event(n=2, deal=124, status="won"))
    await apply(app)
    await send(api, event("change", n=3, at="2025-04-16T10:00:00Z", owner_id=777, title="Renamed"))  # owner unmapped
    await send(api, event(n=4, deal=456, owner_id=777))  # a new deal for an unmapped owner
    await send(api, event(n=5, deal=789, title="Fresh"))
    await send(api, event(n=6, deal=790, status="lost", lost_reason="Too expensive", currency="EUR"))
    await send(api, event("change", n=7, deal=124, at="2025-04-16T10:00:00Z", status="won", title="After the win"))
    applier = await apply(app)
    assert applier.applied == 5
    newest: dict[str, dict[str, Any]] = {}
    for entry in await inbox(api):  # newest first
        newest.setdefault(entry["object_id"], entry)
    assert {k: (e["outcome"], (e["problem"] or {}).get("code")) for k, e in newest.items()} == {
        "123": ("rejected", "unknown_owner"),
        "124": ("rejected", "deal_closed"),
        "456": ("rejected", "unknown_owner"),
        "789": ("applied", None),
        "790": ("applied", None),
    }
    renamed = await deal_of(api, newest["123"])
    assert renamed["name"] == "Renamed" and renamed["owner_id"] == crm["seller"].id  # the other fields apply
    won = await deal_of(api, newest["124"])
    assert won["name"] == "Deal 01" and won["version"] == 1  # refused: nothing changed
    assert newest["456"]["deal_id"] is None
    assert (await deal_of(api, newest["789"]))["name"] == "Fresh"
    lost = await deal_of(api, newest["790"])
    assert lost["stage"] == "closed_lost" and lost["loss"]["reason_code"] == "price" and lost["review_id"]


async def test_events_that_fail_together_for_no_rules_reason_are_applied_alone(
    api: Api, crm: dict[str, Any], app: Any
) -> None:
    """The database refuses one deal (a trigger stands for any failure that is no rule's): the
    claim's transaction fails as a whole, so each of its events is applied alone; the others are
    applied, the one that fails stays pending, to be tried again."""
    if app.state.engine.dialect.name == "postgresql":
        statements = [
            """CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.name = 'Poison' THEN RAISE EXCEPTION 'poisoned'; END IF;
                RETURN NEW;
            END $$""",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON deal FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ]
    else:
        statements = [
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON deal WHEN NEW.name = 'Poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
        ]
    async with app.state.engine.begin() as connection:
        for statement in statements:
            await connection.execute(sa.text(statement))
    await send(api, event(n=1, deal=1, title="One"))
    await send(api, event(n=2, deal=2, title="Poison"))
    await send(api, event(n=3, deal=3, title="Three"))
    applier = await apply(app)
    assert applier.applied == 2
    outcomes = {e["object_id"]: e["outcome"] for e in await inbox(api)}
    assert outcomes == {"1": "applied", "2": "pending", "3": "applied"}
    [poisoned] = await inbox(api, outcome="pending")
    assert poisoned["deal_id"] is None
