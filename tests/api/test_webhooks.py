"""Webhooks out (docs/rules.md: Webhooks out): endpoints, the outbox, signed deliveries,
retries, ordering and health, against a real receiver on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from app.db.models import WebhookDelivery
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.services.webhook_dispatcher import Dispatcher, DispatcherConfig
from app.settings import Settings
from tests.conftest import bootstrap
from tests.helpers import Api, Person, assert_problem, make_deal
from tests.webhook_receiver import Receiver, running_receiver


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        access_log=False,
        log_level="WARNING",
        webhooks_allow_private=True,
        webhooks_dispatcher="off",
        rate_limit_per_second=0,
    )


@pytest.fixture
async def receiver() -> Any:
    async with running_receiver() as running:
        yield running


def dispatcher(app: Any, **config: Any) -> Dispatcher:
    options: dict[str, Any] = {"allow_private": True, "schedule": (0, 0, 0), "timeout": 3.0}
    options.update(config)
    return Dispatcher(app.state.sessionmaker, DispatcherConfig(**options))


async def drain(app: Any, **config: Any) -> Dispatcher:
    sender = dispatcher(app, **config)
    try:
        await sender.drain()
    finally:
        await sender.close()
    return sender


async def housekeep(app: Any, **config: Any) -> None:
    """One round of a dispatcher's housekeeping (metrics, pruning, parking)."""
    sender = dispatcher(app, **config)
    try:
        await sender.housekeeping()
    finally:
        await sender.close()


async def endpoint(api: Api, url: str, event_types: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    response = await api.post("/v1/webhook-endpoints", json={"url": url, "event_types": event_types or ["*"], **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def _sql(app: Any, statement: Any) -> Any:
    async with app.state.engine.begin() as conn:
        result = await conn.execute(statement)
        return list(result.scalars()) if result.returns_rows else None


def verified(secret: str, got: Any) -> dict[str, Any]:
    """The payload, after the standardwebhooks library checked its signature."""
    return Webhook(secret).verify(got.body, got.headers)  # type: ignore[no-any-return]


# --- the endpoints resource ----------------------------------------------------------


async def test_create_shows_the_secret_once(api: Api, receiver: Receiver) -> None:
    response = await api.post(
        "/v1/webhook-endpoints", json={"url": receiver.url("/ok"), "event_types": ["deal.*"], "description": "BI"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["location"] == f"/v1/webhook-endpoints/{created['id']}"
    assert created["active"] is True and created["disabled_reason"] is None and created["version"] == 1
    read = await api.get(f"/v1/webhook-endpoints/{created['id']}")
    assert read.status_code == 200 and "secret" not in read.json()
    assert read.headers["etag"] == '"1"'
    listed = (await api.get("/v1/webhook-endpoints")).json()["items"]
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]


async def test_a_replayed_creation_is_never_cached_either(api: Api, receiver: Receiver) -> None:
    body = {"url": receiver.url("/ok"), "event_types": ["deal.*"]}
    created = await api.post("/v1/webhook-endpoints", json=body, headers={"Idempotency-Key": "endpoint-1"})
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    replayed = await api.post("/v1/webhook-endpoints", json=body, headers={"Idempotency-Key": "endpoint-1"})
    assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["cache-control"] == "no-store" and replayed.json() == created.json()


def test_the_spec_declares_no_store_where_the_secret_is_shown() -> None:
    from app.main import create_app

    paths = create_app().openapi()["paths"]
    created = paths["/v1/webhook-endpoints"]["post"]["responses"]["201"]
    rotated = paths["/v1/webhook-endpoints/{endpoint_id}/rotate-secret"]["post"]["responses"]["200"]
    for response in (created, rotated):
        assert response["headers"]["Cache-Control"]["schema"] == {"type": "string", "enum": ["no-store"]}


async def test_a_given_secret_is_kept_and_a_malformed_one_refused(api: Api, receiver: Receiver) -> None:
    given = "whsec_" + "A" * 32  # 24 bytes
    created = await endpoint(api, receiver.url("/ok"), secret=given)
    assert created["secret"] == given
    short = await api.post(
        "/v1/webhook-endpoints", json={"url": receiver.url("/ok"), "event_types": ["*"], "secret": "whsec_abc"}
    )
    assert_problem(short, 422, "validation_error")


@pytest.mark.parametrize("patterns", [["deal.nope"], ["nope.*"], ["deal"], ["**"], ["deal.*", "x.y"]])
async def test_unknown_event_types_are_refused(api: Api, receiver: Receiver, patterns: list[str]) -> None:
    response = await api.post("/v1/webhook-endpoints", json={"url": receiver.url("/ok"), "event_types": patterns})
    body = assert_problem(response, 422, "unknown_event_type")
    assert body["errors"][0]["loc"][:2] == ["body", "event_types"]
    assert (await api.get("/v1/webhook-endpoints")).json()["items"] == []


async def test_only_admins_manage_endpoints(api: Api, team: dict[str, Person], receiver: Receiver) -> None:
    created = await endpoint(api, receiver.url("/ok"))
    for who in ("hos", "manager", "seller", "integration"):
        caller = api.as_(team[who])
        assert_problem(
            await caller.post("/v1/webhook-endpoints", json={"url": receiver.url("/ok"), "event_types": ["*"]}),
            403,
            "forbidden",
        )
        assert_problem(await caller.get("/v1/webhook-endpoints"), 403, "forbidden")
        assert_problem(await caller.get(f"/v1/webhook-endpoints/{created['id']}"), 403, "forbidden")
        assert_problem(await caller.delete(f"/v1/webhook-endpoints/{created['id']}"), 403, "forbidden")


async def test_another_organisations_endpoint_does_not_exist(api: Api, app: Any, receiver: Receiver) -> None:
    created = await endpoint(api, receiver.url("/ok"))
    other = await bootstrap(app, name="Other", email="ops@other.test")
    stranger = api.as_(other.admin_key)
    assert_problem(await stranger.get(f"/v1/webhook-endpoints/{created['id']}"), 404, "not_found")
    assert_problem(await stranger.delete(f"/v1/webhook-endpoints/{created['id']}"), 404, "not_found")
    assert_problem(await stranger.post(f"/v1/webhook-endpoints/{created['id']}/ping"), 404, "not_found")
    assert (await stranger.get("/v1/webhook-endpoints")).json()["items"] == []


async def test_patch_needs_the_current_version_and_reactivation_clears_the_reason(api: Api, receiver: Receiver) -> None:
    created = await endpoint(api, receiver.url("/ok"))
    url = f"/v1/webhook-endpoints/{created['id']}"
    stale = await api.patch(url, json={"description": "x"}, headers={"If-Match": '"7"'})
    assert_problem(stale, 412, "version_conflict")
    off = await api.patch(url, json={"active": False}, headers={"If-Match": '"1"'})
    assert off.status_code == 200 and off.json()["active"] is False and off.json()["version"] == 2
    on = await api.patch(url, json={"active": True, "event_types": ["deal.*"]}, headers={"If-Match": '"2"'})
    assert on.json()["active"] is True and on.json()["disabled_reason"] is None
    assert on.json()["event_types"] == ["deal.*"]
    assert_problem(await api.patch(url, json={"event_types": ["bogus.type"]}), 422, "unknown_event_type")


async def test_delete_drops_pending_deliveries(api: Api, app: Any, team: dict[str, Person], receiver: Receiver) -> None:
    created = await endpoint(api, receiver.url("/ok"))
    await make_deal(api, team["seller"])
    assert (await api.delete(f"/v1/webhook-endpoints/{created['id']}")).status_code == 204
    assert_problem(await api.get(f"/v1/webhook-endpoints/{created['id']}"), 404, "not_found")
    await drain(app)
    assert receiver.received == []


# --- URL policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # not https
        "https://127.0.0.1/hook",  # loopback
        "https://[::1]/hook",
        "https://10.1.2.3/hook",  # private
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://[fe80::1]/hook",  # link-local
        "https://0.0.0.0/hook",
        "https://user:pw@93.184.216.34/hook",
        "ftp://93.184.216.34/hook",
        "not a url",
    ],
)
async def test_private_and_plain_http_urls_are_refused(app: Any, api: Api, url: str) -> None:
    app.state.settings = app.state.settings.model_copy(update={"webhooks_allow_private": False})
    body = assert_problem(
        await api.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["*"]}), 422, "webhook_url_not_allowed"
    )
    assert body["errors"][0]["loc"] == ["body", "url"]


async def test_a_public_https_url_is_accepted(app: Any, api: Api) -> None:
    app.state.settings = app.state.settings.model_copy(update={"webhooks_allow_private": False})
    response = await api.post("/v1/webhook-endpoints", json={"url": "https://93.184.216.34/hook", "event_types": ["*"]})
    assert response.status_code == 201, response.text


async def test_the_url_is_checked_again_before_each_attempt(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    created = await endpoint(api, receiver.url("/ok"))  # allowed while private addresses are
    await make_deal(api, team["seller"])
    await drain(app, allow_private=False)
    assert receiver.received == []
    deliveries = (await api.get(f"/v1/webhook-endpoints/{created['id']}/deliveries")).json()["items"]
    assert deliveries[0]["last_status_code"] is None
    assert "not allowed" in deliveries[0]["last_error"]


# --- delivery -------------------------------------------------------------------------


async def test_a_deals_events_arrive_in_order_signed(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    created = await endpoint(api, receiver.url("/ok"), ["deal.*"])
    seller = api.as_(team["seller"])
    deal = await make_deal(seller, team["seller"])
    url = f"/v1/deals/{deal['id']}"
    assert (await seller.patch(url, json={"stage": "proposal"})).status_code == 200
    lost = await seller.patch(url, json={"stage": "closed_lost", "loss": {"reason_code": "price"}})
    assert lost.status_code == 200
    await drain(app)
    got = receiver.on("/ok")
    payloads = [verified(created["secret"], r) for r in got]
    assert [p["type"] for p in payloads] == ["deal.created", "deal.stage_changed", "deal.stage_changed"]
    seqs = [p["data"]["seq"] for p in payloads]
    assert seqs == sorted(seqs)
    feed = (
        await api.get("/v1/events", params={"deal_id": deal["id"], "type": ["deal.created", "deal.stage_changed"]})
    ).json()
    assert [p["data"] for p in payloads] == feed["items"]  # the event exactly as the feed shows it
    for r, p in zip(got, payloads, strict=True):
        assert r.headers["webhook-id"] == p["data"]["id"]
        assert r.headers["user-agent"] == "Dealcoach-Webhooks/1"
        assert r.headers["content-type"] == "application/json"
        assert p["timestamp"] == p["data"]["occurred_at"]
    # review.opened is not a deal.* event: not sent to this endpoint
    assert all(p["type"].startswith("deal.") for p in payloads)


async def test_a_failing_receiver_is_retried_with_the_same_id(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    created = await endpoint(api, receiver.url("/flaky/2"), ["deal.created"])
    await make_deal(api, team["seller"])
    await drain(app)
    got = receiver.on("/flaky/2")
    assert len(got) == 3
    assert len({r.headers["webhook-id"] for r in got}) == 1
    for r in got:
        verified(created["secret"], r)
    (delivery,) = (await api.get(f"/v1/webhook-endpoints/{created['id']}/deliveries")).json()["items"]
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3 and delivery["last_status_code"] == 200


async def test_after_the_last_step_the_delivery_has_failed_and_can_be_retried(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    created = await endpoint(api, receiver.url("/status/500"), ["deal.created"])
    await make_deal(api, team["seller"])
    await drain(app, schedule=(0,))
    url = f"/v1/webhook-endpoints/{created['id']}/deliveries"
    (failed,) = (await api.get(url, params={"status": "failed"})).json()["items"]
    assert failed["attempts"] == 2 and failed["last_status_code"] == 500 and failed["last_error"] == "HTTP 500"
    assert (await api.get(url, params={"status": "pending"})).json()["items"] == []
    retried = await api.post(f"/v1/webhook-deliveries/{failed['id']}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert_problem(await api.post(f"/v1/webhook-deliveries/{failed['id']}/retry"), 409, "delivery_not_failed")
    await drain(app, schedule=(0,))
    assert len(receiver.on("/status/500")) == 3


async def test_410_disables_the_endpoint(api: Api, app: Any, team: dict[str, Person], receiver: Receiver) -> None:
    created = await endpoint(api, receiver.url("/status/410"), ["deal.created"])
    await make_deal(api, team["seller"])
    await drain(app)
    assert len(receiver.on("/status/410")) == 1
    read = (await api.get(f"/v1/webhook-endpoints/{created['id']}")).json()
    assert read["active"] is False and read["disabled_reason"] == "gone"
    await make_deal(api, team["seller"])  # no longer subscribed
    await drain(app)
    assert len(receiver.received) == 1


@pytest.mark.parametrize("path", ["/redirect", "/status/404"])
async def test_redirects_and_errors_are_failed_attempts(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver, path: str
) -> None:
    created = await endpoint(api, receiver.url(path), ["deal.created"])
    await make_deal(api, team["seller"])
    await drain(app, schedule=())
    assert len(receiver.on(path)) == 1
    assert len(receiver.on("/ok")) == 0  # the redirect was not followed
    (delivery,) = (await api.get(f"/v1/webhook-endpoints/{created['id']}/deliveries")).json()["items"]
    assert delivery["status"] == "failed"


async def test_rotation_signs_with_both_secrets(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    created = await endpoint(api, receiver.url("/ok"), ["deal.created"])
    rotated = await api.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret")
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new_secret = rotated.json()["secret"]
    assert new_secret != created["secret"]
    await make_deal(api, team["seller"])
    await drain(app)
    (got,) = receiver.on("/ok")
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verified(created["secret"], got) == verified(new_secret, got)


async def test_ping_is_delivered_to_that_endpoint_alone(api: Api, app: Any, receiver: Receiver) -> None:
    first = await endpoint(api, receiver.url("/ok"))
    await endpoint(api, receiver.url("/status/200"))
    response = await api.post(f"/v1/webhook-endpoints/{first['id']}/ping")
    assert response.status_code == 202 and response.json()["event_type"] == "webhook.ping"
    await drain(app)
    (got,) = [r for r in receiver.received if json.loads(r.body)["type"] == "webhook.ping"]
    assert got.path == "/ok"
    assert verified(first["secret"], got)["data"]["endpoint_id"] == first["id"]


async def test_a_pending_delivery_holds_that_deals_later_ones_only(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    await endpoint(api, receiver.url("/flaky/1"), ["deal.*"])
    seller = api.as_(team["seller"])
    held = await make_deal(seller, team["seller"])
    await seller.patch(f"/v1/deals/{held['id']}", json={"stage": "proposal"})
    # first pass: deal.created of `held` fails once (pending, due later), its stage change waits
    await drain(app, schedule=(3600,))
    types = [(json.loads(r.body)["data"]["deal_id"], json.loads(r.body)["type"]) for r in receiver.received]
    assert types == [(held["id"], "deal.created")]
    other = await make_deal(seller, team["seller"])
    await drain(app, schedule=(3600,))
    later = [json.loads(r.body) for r in receiver.received[1:]]
    assert [(p["data"]["deal_id"], p["type"]) for p in later] == [(other["id"], "deal.created")]
    # once the first is due again and succeeds, the held one follows in order
    await _sql(app, sa.update(WebhookDelivery).values(next_attempt_at=sa.func.current_timestamp()))
    await drain(app, schedule=(3600,))
    sent = [(json.loads(r.body)["data"]["deal_id"], json.loads(r.body)["type"]) for r in receiver.received]
    assert [t for t in sent if t[0] == held["id"]] == [
        (held["id"], "deal.created"),  # 500
        (held["id"], "deal.created"),  # 200
        (held["id"], "deal.stage_changed"),  # only now
    ]


async def _next_attempts(app: Any) -> dict[str, Any]:
    """Each delivery's event type and when it is next due."""
    async with app.state.engine.begin() as conn:
        rows = await conn.execute(sa.select(WebhookDelivery.event_type, WebhookDelivery.next_attempt_at))  # type: ignore[call-overload]
        return {event_type: at for event_type, at in rows}


async def test_deliveries_held_behind_a_retry_are_parked_until_it_and_then_follow_in_order(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    await endpoint(api, receiver.url("/flaky/1"), ["deal.*"])
    seller = api.as_(team["seller"])
    deal = await make_deal(seller, team["seller"])
    await seller.patch(f"/v1/deals/{deal['id']}", json={"stage": "proposal"})
    await drain(app, schedule=(3600,))  # deal.created failed once: next try in an hour
    before = await _next_attempts(app)
    assert before["deal.stage_changed"] < before["deal.created"]  # due, held: every claim steps over it
    await housekeep(app, schedule=(3600,))
    after = await _next_attempts(app)
    assert after == {"deal.created": before["deal.created"], "deal.stage_changed": before["deal.created"]}
    # The hour passes: the first is sent, then the one it held, in order.
    await _sql(app, sa.update(WebhookDelivery).values(next_attempt_at=sa.func.current_timestamp()))
    await drain(app, schedule=(3600,))
    sent = [json.loads(r.body)["type"] for r in receiver.received]
    assert sent == ["deal.created", "deal.created", "deal.stage_changed"]


async def test_an_inactive_endpoints_deliveries_are_parked_and_due_again_once_it_is_active(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    created = await endpoint(api, receiver.url("/ok"), ["deal.*"])
    url = f"/v1/webhook-endpoints/{created['id']}"
    await make_deal(api, team["seller"])
    off = await api.patch(url, json={"active": False}, headers={"If-Match": '"1"'})
    assert off.status_code == 200, off.text
    await drain(app)
    assert receiver.received == []  # an inactive endpoint gets nothing
    due = (await _next_attempts(app))["deal.created"]
    await housekeep(app)
    parked = (await _next_attempts(app))["deal.created"]
    assert parked - due > dt.timedelta(minutes=59)  # out of every claim's way
    on = await api.patch(url, json={"active": True}, headers={"If-Match": '"2"'})
    assert on.status_code == 200, on.text
    assert (await _next_attempts(app))["deal.created"] <= utcnow()
    await drain(app)
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["deal.created"]


async def test_a_rolled_back_write_sends_nothing(app: Any, org: Any, api: Api, receiver: Receiver) -> None:
    await endpoint(api, receiver.url("/ok"), ["settings.*"])
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        async with uow:  # an event appended, then rolled back: its deliveries go with it
            await uow.events.append(
                organization_id=uuid.UUID(org.id),
                type="settings.updated",
                actor_id=None,
                subject_type="organization",
                subject_id=uuid.UUID(org.id),
                data={},
            )
            assert (await uow.session.execute(sa.select(sa.func.count()).select_from(WebhookDelivery))).scalar() == 1
    finally:
        await uow.close()
    await drain(app)
    assert receiver.received == []


async def test_a_hanging_receiver_blocks_no_other_endpoint(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    await endpoint(api, receiver.url("/hold"), ["deal.created"])
    await endpoint(api, receiver.url("/ok"), ["deal.created"])
    sender = dispatcher(app, timeout=30.0)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        started = asyncio.get_running_loop().time()
        await make_deal(api, team["seller"])
        await make_deal(api, team["seller"])
        ok = await receiver.wait_for(2, "/ok", timeout=5)
        assert len(ok) == 2 and ok[-1].at - started < 5
        assert len(receiver.on("/hold")) >= 1
    finally:
        receiver.released.set()
        stop.set()
        await task
        await sender.close()


async def test_a_huge_answer_is_cut_off_at_one_kibibyte(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    created = await endpoint(api, receiver.url("/big"), ["deal.created"])
    await make_deal(api, team["seller"])
    await drain(app)
    (delivery,) = (await api.get(f"/v1/webhook-endpoints/{created['id']}/deliveries")).json()["items"]
    assert delivery["status"] == "succeeded"
    result = await _sql(app, sa.select(WebhookDelivery.__table__.c.last_response_body))
    assert result == ["x" * 1024]


async def test_the_dispatcher_inside_the_app_delivers_within_a_second(
    database_url: str, receiver: Receiver, team: dict[str, Person], api: Api
) -> None:
    from app.main import create_app

    live = create_app(
        Settings(
            database_url=database_url,
            access_log=False,
            log_level="WARNING",
            webhooks_allow_private=True,
            webhooks_dispatcher="on",
            rate_limit_per_second=0,
        )
    )
    async with live.router.lifespan_context(live):
        await endpoint(api, receiver.url("/ok"), ["deal.created"])
        started = asyncio.get_running_loop().time()
        await make_deal(api, team["seller"])
        (got,) = await receiver.wait_for(1, "/ok", timeout=5)
        assert got.at - started < 1.0


async def test_deliveries_list_filters_by_status(
    api: Api, app: Any, team: dict[str, Person], receiver: Receiver
) -> None:
    created = await endpoint(api, receiver.url("/ok"), ["deal.created"])
    await make_deal(api, team["seller"])
    url = f"/v1/webhook-endpoints/{created['id']}/deliveries"
    (pending,) = (await api.get(url, params={"status": "pending"})).json()["items"]
    assert pending["attempts"] == 0 and pending["event_type"] == "deal.created"
    await drain(app)
    assert (await api.get(url, params={"status": "pending"})).json()["items"] == []
    (done,) = (await api.get(url, params={"status": "succeeded"})).json()["items"]
    assert done["id"] == pending["id"] and done["last_attempt_at"] is not None
    assert_problem(await api.get(url, params={"status": "lost"}), 422, "validation_error")
