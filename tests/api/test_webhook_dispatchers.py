"""Webhook dispatchers as processes and side by side: a dispatcher killed mid-attempt loses
nothing, and two dispatchers on one PostgreSQL database send each delivery exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from app.db.engine import make_engine, make_sessionmaker
from app.services.webhook_dispatcher import Dispatcher, DispatcherConfig
from app.settings import Settings
from tests.api.test_webhooks import settings  # noqa: F401  (the same app settings: local receivers allowed)
from tests.helpers import Api, Person, make_deal
from tests.pg import pg_exec_on, pg_scalar_on
from tests.process import free_port, wait_for_port
from tests.webhook_receiver import running_receiver

DEALCOACH = str(Path(sys.executable).parent / "dealcoach")


async def _deliveries(api: Api, endpoint_id: str, limit: int = 50) -> list[dict[str, Any]]:
    url = f"/v1/webhook-endpoints/{endpoint_id}/deliveries"
    return (await api.get(url, params={"limit": limit})).json()["items"]  # type: ignore[no-any-return]


async def test_a_dispatcher_killed_mid_attempt_loses_nothing(
    api: Api, team: dict[str, Person], database_url: str
) -> None:
    async with running_receiver() as receiver:
        created = await api.post(
            "/v1/webhook-endpoints", json={"url": receiver.url("/hold"), "event_types": ["deal.created"]}
        )
        endpoint_id = created.json()["id"]
        await make_deal(api, team["seller"])
        env = {
            **os.environ,
            "DEALCOACH_DATABASE_URL": database_url,
            "DEALCOACH_WEBHOOKS_ALLOW_PRIVATE": "true",
            "DEALCOACH_WEBHOOKS_ATTEMPT_TIMEOUT": "5",
            "DEALCOACH_WEBHOOKS_LEASE_MARGIN": "1",
            "DEALCOACH_WEBHOOKS_RETRY_SCHEDULE": "0,0,0",
            "DEALCOACH_LOG_LEVEL": "WARNING",
        }
        first = subprocess.Popen([DEALCOACH, "webhooks"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            await asyncio.wait_for(
                receiver.arrived.wait(), timeout=60
            )  # the attempt is under way (a start takes a while on a busy machine)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        (delivery,) = await _deliveries(api, endpoint_id)
        assert delivery["status"] == "pending" and delivery["attempts"] == 0  # nothing was recorded
        receiver.released.set()  # from now on the receiver answers at once
        second = subprocess.Popen([DEALCOACH, "webhooks"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for _ in range(600):  # the lease runs out after 6 s, then the delivery is sent again
                (delivery,) = await _deliveries(api, endpoint_id)
                if delivery["status"] != "pending":
                    break
                await asyncio.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=20) == 0, second.stderr.read() if second.stderr else ""
        # Delivered after the restart: the same message sent again. (On a machine loaded enough to
        # hold an attempt past its timeout, the restarted dispatcher tries again: more attempts,
        # still the one message.)
        assert delivery["status"] == "succeeded" and delivery["attempts"] >= 1
        ids = [r.headers["webhook-id"] for r in receiver.on("/hold")]
        assert 2 <= len(ids) <= 1 + delivery["attempts"] and len(set(ids)) == 1


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_dispatchers_send_every_delivery_exactly_once(
    api: Api, team: dict[str, Person], database_url: str
) -> None:
    async with running_receiver() as receiver:
        for path in ("/ok", "/status/200"):
            response = await api.post("/v1/webhook-endpoints", json={"url": receiver.url(path), "event_types": ["*"]})
            assert response.status_code == 201
        seller = api.as_(team["seller"])
        for _ in range(6):  # the events to share out (their writes are not what this test is about)
            await asyncio.gather(*(make_deal(seller, team["seller"]) for _ in range(10)))
        engines = [make_engine(Settings(database_url=database_url)) for _ in range(2)]
        config = DispatcherConfig(allow_private=True, schedule=(0,), max_in_flight=8)
        dispatchers = [Dispatcher(make_sessionmaker(engine), config) for engine in engines]
        try:
            await asyncio.gather(*(d.drain(timeout=60) for d in dispatchers))
        finally:
            for d in dispatchers:
                await d.close()
            for engine in engines:
                await engine.dispose()
        sent = Counter((r.path, r.headers["webhook-id"]) for r in receiver.received)
        assert set(sent.values()) == {1}, [k for k, n in sent.items() if n > 1]  # never twice
        endpoints = (await api.get("/v1/webhook-endpoints")).json()["items"]
        stored = [d for e in endpoints for d in await _deliveries(api, e["id"], limit=200)]
        assert len(stored) == len(sent) >= 2 * 60  # never lost
        assert {d["status"] for d in stored} == {"succeeded"}
        assert all(d.stats.attempts > 0 for d in dispatchers)  # both took part
        assert sum(json.loads(r.body)["type"] == "deal.created" for r in receiver.received) == 2 * 60


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_an_outcome_the_database_refuses_at_first_is_recorded_not_sent_again(
    api: Api, team: dict[str, Person], database_url: str
) -> None:
    """Recording an attempt fails twice (a real trigger raises; a sequence counts, since its
    values survive the rollbacks): the dispatcher tries the record again instead of letting the
    lease run out, so the receiver hears the event once and the delivery is succeeded."""
    await pg_exec_on(
        database_url,
        "CREATE SEQUENCE refusals",
        """CREATE FUNCTION refuse_twice() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF nextval('refusals') <= 2 THEN RAISE EXCEPTION 'not now'; END IF;
             RETURN NEW;
           END $$""",
        "CREATE TRIGGER refuse_twice BEFORE INSERT ON webhook_attempt FOR EACH ROW EXECUTE FUNCTION refuse_twice()",
    )
    async with running_receiver() as receiver:
        created = await api.post("/v1/webhook-endpoints", json={"url": receiver.url("/ok"), "event_types": ["*"]})
        endpoint_id = created.json()["id"]
        await make_deal(api, team["seller"])
        engine = make_engine(Settings(database_url=database_url))
        dispatcher = Dispatcher(
            make_sessionmaker(engine), DispatcherConfig(allow_private=True, schedule=(0,), timeout=2, lease_margin=4)
        )
        try:
            await dispatcher.drain(timeout=30)
        finally:
            await dispatcher.close()
            await engine.dispose()
        deliveries = await _deliveries(api, endpoint_id)
        assert [(d["status"], d["attempts"]) for d in deliveries] == [("succeeded", 1)] * len(deliveries)
        sent = Counter(r.headers["webhook-id"] for r in receiver.on("/ok"))
        assert len(sent) == len(deliveries) >= 1 and set(sent.values()) == {1}
        assert await pg_scalar_on(database_url, "SELECT last_value FROM refusals") >= 3


async def test_the_readme_receiver_verifies_and_prints(
    api: Api, app: Any, team: dict[str, Person], tmp_path: Path
) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Receiving webhooks", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 25
    (tmp_path / "receiver.py").write_text(code)
    port = free_port()
    created = await api.post(
        "/v1/webhook-endpoints", json={"url": f"http://127.0.0.1:{port}/dealcoach", "event_types": ["deal.*"]}
    )
    env = {**os.environ, "WEBHOOK_SECRET": created.json()["secret"], "PORT": str(port)}
    receiver = subprocess.Popen(
        [sys.executable, str(tmp_path / "receiver.py")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        await asyncio.to_thread(wait_for_port, port)
        deal = await make_deal(api, team["seller"])
        sender = Dispatcher(app.state.sessionmaker, DispatcherConfig(allow_private=True, schedule=(0,)))
        try:
            await sender.drain()
        finally:
            await sender.close()
        assert sender.stats.by_outcome == {"succeeded": 1}
    finally:
        receiver.terminate()
        out, _ = receiver.communicate(timeout=10)
    assert out.decode().split() == ["deal.created", deal["id"]]
