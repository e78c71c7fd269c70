"""Bounded requests (API.md: Limits): a body over DEALCOACH_MAX_BODY_BYTES answers 413
payload_too_large before it is read whole, before any authentication work, before an
idempotency row exists and before any JSON parsing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.main import create_app
from app.settings import Settings
from tests.helpers import Api, assert_problem
from tests.statements import record_statements

LIMIT = 1_048_576
CHUNK = 64 * 1024


async def _idempotency_rows(app: Any) -> int:
    async with app.state.engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM idempotency_key"))).scalar_one())


def _member(padding: int) -> bytes:
    """A valid member body padded with JSON whitespace to exactly ``padding`` more bytes."""
    body = json.dumps({"name": "Pat", "email": "pat@acme.test", "role": "seller"}).encode()
    return body[:-1] + b" " * padding + b"}"


class Upload:
    """A chunked body of ``total`` bytes that counts how much of it the server pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += CHUNK
            yield b"[" * CHUNK


async def test_the_statement_recorder_sees_a_request(app, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "no statement" checks below can fail: the same recorder sees an ordinary request's
    SQL, on the hot path's driver connection too."""
    statements = record_statements(app, monkeypatch)
    assert (await api.get("/v1/me")).status_code == 200
    assert statements


async def test_a_declared_length_over_the_limit_is_refused_unread(
    app, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements = record_statements(app, monkeypatch)
    body = _member(LIMIT)
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json", "Idempotency-Key": "k1"}
    response = await api.client.post("/v1/members", content=body, headers=headers)
    problem = assert_problem(response, 413, "payload_too_large")
    assert str(LIMIT) in problem["detail"] and problem["instance"] == "/v1/members"
    assert response.headers["x-request-id"]
    # Even without a key, and on a route that takes no body: the size is judged first.
    assert_problem(await api.client.post("/v1/members", content=body), 413, "payload_too_large")
    assert_problem(await api.client.request("GET", "/v1/me", content=body), 413, "payload_too_large")
    assert statements == []  # no authentication, no idempotency claim, nothing
    assert await _idempotency_rows(app) == 0
    assert pat_absent(await api.get("/v1/members", params={"limit": 200}))


def pat_absent(response: httpx.Response) -> bool:
    return "pat@acme.test" not in {m["email"] for m in response.json()["items"]}


async def test_a_body_of_exactly_the_limit_is_accepted(api: Api) -> None:
    body = _member(0)
    body = _member(LIMIT - len(body))
    assert len(body) == LIMIT
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json", "Idempotency-Key": "k2"}
    response = await api.client.post("/v1/members", content=body, headers=headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("idempotency_key", [None, "upload-1"])
async def test_a_chunked_upload_is_cut_at_the_limit(
    app, api: Api, idempotency_key: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements = record_statements(app, monkeypatch)
    upload = Upload(200 * 1024 * 1024)
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    response = await api.client.post("/v1/members", content=upload, headers=headers)
    assert "content-length" not in response.request.headers  # really chunked
    assert_problem(response, 413, "payload_too_large")
    assert upload.pulled <= LIMIT + CHUNK  # read up to the limit, not the 200 MB
    # The idempotency middleware, or else FastAPI, reads the body before anything else: no query.
    assert statements == []
    assert await _idempotency_rows(app) == 0
    assert pat_absent(await api.get("/v1/members", params={"limit": 200}))


async def test_the_limit_is_a_setting(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_body_bytes": 100}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            small = await client.post("/v1/members", content=b"{}" + b" " * 98)
            assert_problem(small, 401, "unauthenticated")
            assert_problem(await client.post("/v1/members", content=b"{}" + b" " * 99), 413, "payload_too_large")

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(3):
                    yield b" " * 40

            assert_problem(await client.post("/v1/members", content=chunks()), 413, "payload_too_large")


def test_every_operation_with_a_body_declares_413() -> None:
    spec = create_app().openapi()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert "413" in operation["responses"], f"{method.upper()} {path}"
