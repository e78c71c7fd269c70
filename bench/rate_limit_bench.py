"""What the rate limiter costs a request: `GET /v1/me` in-process, limits off vs on.

    .venv/bin/python bench/rate_limit_bench.py            # memory store; Redis too when it answers

Three apps on one PostgreSQL database (BENCH_PG_DSN), called through httpx.ASGITransport: limits
off, on with the per-worker store, on with Redis (BENCH_REDIS_URL). The budgets are too large to
refuse anything, so every request does the full work. Batches of BENCH_BATCH requests alternate
between the apps, BENCH_ROUNDS times, so drift in the machine's load falls on all of them; the
figures are medians over the batches of this process's CPU time (and wall time) per request.
The same is measured for the middleware alone around an app that answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from typing import Any

import asyncpg
import httpx
import redis

from app.db.migrate import upgrade
from app.db.uow import UnitOfWork
from app.main import create_app
from app.middleware.rate_limit import RateLimitMiddleware, RateLimits
from app.services.bootstrap import bootstrap_organization
from app.settings import Settings
from common import PG_DSN, recreate_database, sa_url

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
DB = "dealcoach_bench_rate_limit"
BATCH = int(os.environ.get("BENCH_BATCH", "100"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
UNLIMITED: dict[str, Any] = {"rate_limit_per_second": 10**7, "rate_limit_burst": 10**7}


def redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except (OSError, redis.RedisError):
        return False


async def timed(call: Any, n: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await call()
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


async def compare(calls: dict[str, Any]) -> None:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        await timed(call, BATCH)
    for _ in range(ROUNDS):
        for name, call in calls.items():
            samples[name].append(await timed(call, BATCH))
    off_cpu = statistics.median(cpu for cpu, _ in samples["off"])
    for name, runs in samples.items():
        cpu, wall = statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs)
        print(f"  {name:8s} CPU {cpu:7.0f} us/request ({cpu - off_cpu:+5.0f})   wall {wall:7.0f} us", flush=True)


async def main() -> None:
    async with contextlib.AsyncExitStack() as stack:
        await measure(stack)
    conn = await asyncpg.connect(PG_DSN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await conn.close()


async def measure(stack: contextlib.AsyncExitStack) -> None:
    await recreate_database(DB)
    url = sa_url(DB)
    await asyncio.to_thread(upgrade, url)
    configs: dict[str, dict[str, Any]] = {"off": {"rate_limit_per_second": 0}, "memory": UNLIMITED}
    if redis_answers():
        configs["redis"] = {**UNLIMITED, "rate_limit_storage_url": REDIS_URL}
    apps = {
        name: create_app(
            Settings(database_url=url, access_log=False, log_level="WARNING", webhooks_dispatcher="off", **c)
        )
        for name, c in configs.items()
    }
    for app in apps.values():
        await stack.enter_async_context(app.router.lifespan_context(app))
    uow = UnitOfWork(apps["off"].state.sessionmaker)
    try:
        key = (
            await bootstrap_organization(uow, org_name="Bench", admin_email="a@bench.example", admin_name="A")
        ).api_key
    finally:
        await uow.close()
    headers = {"Authorization": f"Bearer {key}"}
    clients = {
        name: await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers)
        )
        for name, app in apps.items()
    }
    print(f"load average before: {os.getloadavg()[0]:.1f}; {ROUNDS} rounds of {BATCH} requests each")
    print("GET /v1/me, whole app:")
    await compare({name: (lambda c=c: c.get("/v1/me")) for name, c in clients.items()})

    async def instant(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    authorization = (b"authorization", headers["Authorization"].encode())
    scope = {"type": "http", "method": "GET", "path": "/v1/me", "headers": [authorization], "client": ("127.0.0.1", 1)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def discard(message: Any) -> None:
        pass

    alone: dict[str, Any] = {"off": instant}
    for name, c in configs.items():
        if name != "off":
            limits = RateLimits(10**7, 10**7, c.get("rate_limit_storage_url"))
            stack.push_async_callback(limits.close)
            alone[name] = RateLimitMiddleware(instant, limits=limits)
    print("the middleware alone:")
    await compare({name: (lambda a=a: a(scope, receive, discard)) for name, a in alone.items()})
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
