"""A real webhook receiver for tests: a small ASGI app under uvicorn on a loopback port.

It records every request it gets and answers by path: ``/ok`` 200, ``/status/<code>``,
``/flaky/<n>`` 500 for the first n requests of each webhook-id then 200, ``/slow/<seconds>``,
``/redirect`` 301, ``/big`` a 50 MB body, ``/hold`` waits until released by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> list[Received]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            got = self.on(path) if path else self.received
            if len(got) >= count or loop.time() > deadline:
                return got
            await asyncio.sleep(0.02)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        self.received.append(Received(path, headers, b"".join(chunks), asyncio.get_running_loop().time()))
        self.arrived.set()
        key = f"{path}|{headers.get('webhook-id')}"
        self.seen[key] += 1
        status, body, extra = 200, b"ok", []
        parts = path.strip("/").split("/")
        if parts[0] == "status":
            status = int(parts[1])
            if status in (429, 503):
                extra = [(b"retry-after", b"0")]
        elif parts[0] == "flaky" and self.seen[key] <= int(parts[1]):
            status = 500
        elif parts[0] == "slow":
            await asyncio.sleep(float(parts[1]))
        elif parts[0] == "hold":
            await self.released.wait()
        elif parts[0] == "redirect":
            status, extra = 301, [(b"location", b"/ok")]
        if parts[0] == "big":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            block = b"x" * 1024 * 1024
            with contextlib.suppress(Exception):
                for _ in range(50):
                    await send({"type": "http.response.body", "body": block, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain"), *extra]}
        )
        await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    config = uvicorn.Config(receiver, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    receiver.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.should_exit = True
        server.force_exit = True
        await task
