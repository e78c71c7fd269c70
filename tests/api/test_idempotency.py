"""Idempotency-Key on POST: stored in the database per member, replayed for 24 h."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

from app.db.repositories import idempotency as repo
from app.domain.api_keys import hash_key
from app.http.idempotency import claimed_with_response, fingerprint
from app.main import create_app
from app.middleware.idempotency import claimed_with_response_paths
from tests.conftest import bootstrap, settings_for
from tests.helpers import Api, assert_problem
from tests.pg import pg_exec_on

BODY = {"name": "Ida", "email": "ida@acme.test", "role": "seller"}


async def _count_members(api: Api, email: str) -> int:
    items = (await api.get("/v1/members", params={"limit": 200})).json()["items"]
    return sum(1 for m in items if m["email"] == email)


async def test_retry_replays_the_first_response(api: Api) -> None:
    first = await api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = await api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert await _count_members(api, "ida@acme.test") == 1


async def test_same_json_with_other_key_order_is_the_same_request(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json", "Idempotency-Key": "k-order"}
    first = await api.client.post(
        "/v1/members", content=b'{"name":"Ida","email":"ida@acme.test","role":"seller"}', headers=headers
    )
    second = await api.client.post(
        "/v1/members", content=b'{ "role": "seller", "email": "ida@acme.test", "name": "Ida" }', headers=headers
    )
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"


async def test_same_key_with_another_body_is_refused(api: Api) -> None:
    await api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "k-2"})
    other = await api.post("/v1/members", json={**BODY, "email": "other@acme.test"}, headers={"Idempotency-Key": "k-2"})
    assert_problem(other, 422, "idempotency_key_reused")
    assert await _count_members(api, "other@acme.test") == 0
    elsewhere = await api.post("/v1/skills", json={"code": "x", "label": "X"}, headers={"Idempotency-Key": "k-2"})
    assert_problem(elsewhere, 422, "idempotency_key_reused")


async def test_error_responses_are_replayed_too(api: Api) -> None:
    bad = {"name": "N", "email": "n@acme.test", "role": "seller", "manager_id": "01900000-0000-7000-8000-000000000000"}
    first = await api.post("/v1/members", json=bad, headers={"Idempotency-Key": "k-err"})
    assert_problem(first, 422, "invalid_reporting_line")
    again = await api.post("/v1/members", json=bad, headers={"Idempotency-Key": "k-err"})
    assert_problem(again, 422, "invalid_reporting_line")
    assert again.headers["idempotent-replayed"] == "true"


async def test_keys_are_per_member(api: Api) -> None:
    other_admin = await api.make_member("admin")
    first = await api.post("/v1/skills", json={"code": "a1", "label": "A"}, headers={"Idempotency-Key": "shared"})
    second = await api.as_(other_admin).post(
        "/v1/skills", json={"code": "a2", "label": "A"}, headers={"Idempotency-Key": "shared"}
    )
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers


async def test_in_flight_duplicate_is_409(app, api: Api) -> None:
    body = {"code": "inflight", "label": "In flight"}
    me = (await api.get("/v1/me")).json()
    fp = fingerprint("POST", "/v1/skills", "", json.dumps(body).encode())
    now = dt.datetime.now(dt.UTC)
    # Another worker has claimed the key and is still running the request.
    async with app.state.engine.begin() as conn:
        caller, turn, claimed = await repo.claim(
            conn, hash_key(api.key), key="busy", fingerprint=fp, now=now, expires_at=now + dt.timedelta(hours=24)
        )
    assert caller is not None and caller.id == uuid.UUID(me["id"])
    assert turn and claimed
    response = await api.post("/v1/skills", json=body, headers={"Idempotency-Key": "busy"})
    assert_problem(response, 409, "idempotency_in_progress")
    assert_problem(await api.get("/v1/skills/inflight"), 404, "not_found")


async def test_abandoned_request_can_be_retried_after_the_lock_expires(app, api: Api) -> None:
    await api.post("/v1/skills", json={"code": "abandoned", "label": "A"}, headers={"Idempotency-Key": "abandon"})
    # Make the stored request look unfinished and old, as if its worker had died.
    async with app.state.engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE idempotency_key SET completed = :f, locked_at = :t WHERE key = 'abandon'"),
            {"f": False, "t": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)},
        )
        await conn.execute(sa.text("DELETE FROM skill WHERE code = 'abandoned'"))
    retried = await api.post(
        "/v1/skills", json={"code": "abandoned", "label": "A"}, headers={"Idempotency-Key": "abandon"}
    )
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


async def test_keys_expire_after_24_hours(app, api: Api) -> None:
    await api.post("/v1/skills", json={"code": "old", "label": "Old"}, headers={"Idempotency-Key": "old-key"})
    await api.post("/v1/skills", json={"code": "older", "label": "Older"}, headers={"Idempotency-Key": "other-key"})
    async with app.state.engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE idempotency_key SET expires_at = :t WHERE key IN ('old-key', 'other-key')"),
            {"t": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)},
        )
    fresh = await api.post("/v1/skills", json={"code": "new", "label": "New"}, headers={"Idempotency-Key": "old-key"})
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    again = await api.post("/v1/skills", json={"code": "new", "label": "New"}, headers={"Idempotency-Key": "old-key"})
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == fresh.json()
    # The member's other expired key is purged by the claim.
    async with app.state.engine.connect() as conn:
        keys = (await conn.execute(sa.text("SELECT key FROM idempotency_key ORDER BY key"))).scalars().all()
    assert keys == ["old-key"]


async def test_key_longer_than_255_is_refused(api: Api) -> None:
    response = await api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "k" * 256})
    assert_problem(response, 422, "validation_error")
    assert await _count_members(api, "ida@acme.test") == 0
    ok = await api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "k" * 255})
    assert ok.status_code == 201


async def test_concurrent_duplicates_create_one_member(api: Api) -> None:
    responses = await asyncio.gather(
        *(api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "race"}) for _ in range(5))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "idempotency_in_progress")
    assert await _count_members(api, "ida@acme.test") == 1


async def test_without_a_valid_key_the_request_is_unauthenticated(api: Api) -> None:
    response = await api.as_("dc_00000000_nope").post("/v1/members", json=BODY, headers={"Idempotency-Key": "x"})
    assert_problem(response, 401, "unauthenticated")


async def test_an_idempotent_post_is_one_transaction(app, api: Api) -> None:
    """The key's claim, the write and the stored response commit together: one commit."""
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    sa.event.listen(app.state.engine.sync_engine, "commit", count)
    try:
        created = await api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "one-tx"})
        assert created.status_code == 201
        assert len(commits) == 1
        replayed = await api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "one-tx"})
        assert replayed.headers["idempotent-replayed"] == "true"
        assert len(commits) == 1  # a replay writes nothing
    finally:
        sa.event.remove(app.state.engine.sync_engine, "commit", count)


async def test_a_response_that_cannot_be_stored_keeps_no_write(app, api: Api, database_url: str) -> None:
    """Were the write committed before its response is stored, a failure in between would leave
    a member that a retry creates a second time. Here storing the response fails (the database
    goes away at that moment): the answer is 503 and nothing is kept; the retry then succeeds.
    PostgreSQL only: a SQLite trigger can raise only constraint errors, not a lost connection."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("needs a trigger that raises a connection failure")
    await pg_exec_on(
        database_url,
        """CREATE FUNCTION refuse_completion() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.completed AND NEW.key = 'doomed' THEN
                RAISE EXCEPTION 'connection lost' USING ERRCODE = '08006';
            END IF;
            RETURN NEW;
        END $$""",
        "CREATE TRIGGER refuse_completion BEFORE UPDATE ON idempotency_key "
        "FOR EACH ROW EXECUTE FUNCTION refuse_completion()",
    )
    response = await api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "doomed"})
    assert_problem(response, 503, "database_unavailable")
    assert await _count_members(api, "ida@acme.test") == 0
    retried = await api.post("/v1/members", json=BODY, headers={"Idempotency-Key": "retry"})
    assert retried.status_code == 201
    assert await _count_members(api, "ida@acme.test") == 1


async def test_an_idempotent_post_needs_one_pooled_connection(database_url: str) -> None:
    """The claim's transaction holds a connection while the request runs; had the request then
    authenticated on a second one, concurrent POSTs would each hold one and wait for another,
    and a busy worker's pool would run dry (503 after the pool timeout). With a pool of one
    connection, idempotent POSTs still succeed, one after another."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool settings apply to PostgreSQL")
    settings = settings_for(database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=2)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        org = await bootstrap(application)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            api = Api(http, org.admin_key)
            responses = await asyncio.gather(
                *(
                    api.post("/v1/skills", json={"code": f"s{n}", "label": "S"}, headers={"Idempotency-Key": f"k{n}"})
                    for n in range(4)
                )
            )
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]


async def test_a_client_gone_before_its_whole_body_claims_nothing(app, api: Api) -> None:
    """A client killed while sending its body (an import interrupted with kill -9) leaves no claim:
    a key claimed with part of a body would refuse the retry of the whole body as another request."""
    body = json.dumps({"code": "cut", "label": "Cut short"}).encode()
    headers = [
        (b"authorization", f"Bearer {api.key}".encode()),
        (b"idempotency-key", b"cut-short"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/skills", "raw_path": b"/v1/skills", "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "app": app,
    }  # fmt: skip
    messages = iter([{"type": "http.request", "body": body[:10], "more_body": True}, {"type": "http.disconnect"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert not [m for m in sent if m["type"] == "http.response.start"]  # nobody to answer
    async with app.state.engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT count(*) FROM idempotency_key"))).scalar() == 0
    whole = await api.post(
        "/v1/skills", content=body, headers={"Idempotency-Key": "cut-short", "Content-Type": "application/json"}
    )
    assert whole.status_code == 201, whole.text


def test_only_a_post_without_path_parameters_is_claimed_with_its_response() -> None:
    async def endpoint() -> None:
        """An operation."""

    claimed_with_response(endpoint)
    assert claimed_with_response_paths([APIRoute("/v1/things", endpoint, methods=["POST"])]) == ["/v1/things"]
    for path, method in (("/v1/things/{thing_id}", "POST"), ("/v1/things", "PUT")):
        with pytest.raises(ValueError, match="claimed with its response"):
            claimed_with_response_paths([APIRoute(path, endpoint, methods=[method])])
