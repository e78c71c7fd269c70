"""A fake of HubSpot's CRM API for tests: a small ASGI app under uvicorn on a loopback port.

`GET /crm/v3/objects/deals/{id}` answers the deal's properties as HubSpot does
(`{id, properties, createdAt, updatedAt, archived}`), 404 for a deal it does not hold, 401 for
another bearer token. ``fail`` queues answers to give first (status, Retry-After), so a test can
make it rate-limit (429) or fail (500) a number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn


@dataclass
class FakeHubSpot:
    token: str
    port: int = 0
    deals: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[tuple[int, str | None]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        self.failures += [(status, retry_after)] * times

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        self.requests.append((scope["path"], query, asyncio.get_running_loop().time()))
        status, body, extra = 200, b"", []
        prefix = "/crm/v3/objects/deals/"
        if self.failures:
            status, retry_after = self.failures.pop(0)
            body = b'{"status":"error","message":"You have reached your ten secondly limit."}'
            extra = [(b"retry-after", retry_after.encode())] if retry_after is not None else []
        elif headers.get("authorization") != f"Bearer {self.token}":
            status, body = 401, b'{"status":"error","category":"INVALID_AUTHENTICATION"}'
        elif not scope["path"].startswith(prefix) or scope["path"][len(prefix) :] not in self.deals:
            status, body = 404, b'{"status":"error","category":"OBJECT_NOT_FOUND"}'
        else:
            deal_id = scope["path"][len(prefix) :]
            wanted = query.get("properties", "").split(",")
            stored = self.deals[deal_id]
            properties = {name: stored.get(name) for name in wanted if name}
            properties["hs_object_id"] = deal_id
            body = orjson.dumps(
                {
                    "id": deal_id,
                    "properties": properties,
                    "createdAt": "2025-04-15T14:57:34.000Z",
                    "updatedAt": stored.get("hs_lastmodifieddate"),
                    "archived": False,
                }
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def running_hubspot(token: str) -> AsyncIterator[FakeHubSpot]:
    fake = FakeHubSpot(token)
    config = uvicorn.Config(fake, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    fake.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
