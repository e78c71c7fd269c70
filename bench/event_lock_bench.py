"""Writers of one organisation against one another, in one process, on PostgreSQL: the part of
`make bench` that shows whether every write of an organisation queues behind one lock, for a
machine too busy to run the servers and wrk.

    .venv/bin/python bench/event_lock_bench.py            # about 2 minutes

It creates a throwaway database, migrates it, runs the app in this process (httpx over ASGI)
and measures, in alternating rounds: POST /v1/deals from 20 sellers of one organisation against
the same from 5 sellers in each of four organisations (req/s), and one seller's POSTs alone
against the same while another client posts 500-record batch upserts to the same organisation
(latency p50/p99). Settings: EVENT_BENCH_SECONDS (per measurement, 8), EVENT_BENCH_ROUNDS (2).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db.migrate import upgrade  # noqa: E402
from app.db.uow import UnitOfWork  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services.bootstrap import bootstrap_organization  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.pg import fresh_pg_database  # noqa: E402

SECONDS = float(os.environ.get("EVENT_BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("EVENT_BENCH_ROUNDS", "2"))
FAILED: dict[str, int] = {}  # request and status -> how many were answered so


async def _org(app: Any, http: httpx.AsyncClient, n: int, sellers: int) -> tuple[list[tuple[str, str]], str]:
    """An organisation with ``sellers`` sellers (id, key) and an integration key."""
    done = await bootstrap_organization(
        UnitOfWork(app.state.sessionmaker), org_name=f"Org {n}", admin_email=f"a@o{n}.test", admin_name="A"
    )
    admin = {"Authorization": f"Bearer {done.api_key}"}

    async def member(role: str, i: int) -> tuple[str, str]:
        body = {"name": f"{role} {i}", "email": f"{role}{i}@o{n}.test", "role": role}
        created = (await http.post("/v1/members", json=body, headers=admin)).json()
        key = (await http.post(f"/v1/members/{created['id']}/api-keys", json={"label": "b"}, headers=admin)).json()
        return created["id"], key["api_key"]

    people = [await member("seller", i) for i in range(sellers)]
    _, integration = await member("integration", 0)
    return people, integration


async def _post(http: httpx.AsyncClient, seller: tuple[str, str], n: int) -> float:
    body = {"name": f"Deal {n}", "account_name": "Acme", "owner_id": seller[0]}
    started = time.perf_counter()
    response = await http.post("/v1/deals", json=body, headers={"Authorization": f"Bearer {seller[1]}"})
    if response.status_code != 201:  # counted, not fatal: a write queued past the timeouts answers 503
        FAILED[f"POST {response.status_code}"] = FAILED.get(f"POST {response.status_code}", 0) + 1
    return time.perf_counter() - started


async def _for(seconds: float, job: Callable[[int], Awaitable[Any]]) -> int:
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
        await job(n)
    return n


async def _writers(http: httpx.AsyncClient, sellers: list[tuple[str, str]]) -> float:
    counts = await asyncio.gather(
        *(_for(SECONDS, lambda n, s=s, i=i: _post(http, s, i * 100_000 + n)) for i, s in enumerate(sellers))  # type: ignore[misc]
    )
    return sum(counts) / SECONDS


async def _single(
    http: httpx.AsyncClient, seller: tuple[str, str], batch_key: str | None, owners: list[str]
) -> list[float]:
    latencies: list[float] = []
    stop = asyncio.Event()

    async def batches() -> None:
        k = 0
        while not stop.is_set():
            records = []
            for _ in range(500):
                k += 1
                records.append(
                    {
                        "source": "bench",
                        "external_id": f"x{time.time_ns()}-{k}",
                        "name": f"Synced {k}",
                        "account_name": "Acme",
                        "owner_id": owners[k % len(owners)],
                    }
                )
            response = await http.post(
                "/v1/deals/batch-upsert", json={"records": records}, headers={"Authorization": f"Bearer {batch_key}"}
            )
            if response.status_code != 200:
                FAILED[f"batch {response.status_code}"] = FAILED.get(f"batch {response.status_code}", 0) + 1

    loader = asyncio.create_task(batches()) if batch_key else None
    if loader:
        await asyncio.sleep(0.5)
    await _for(SECONDS, lambda n: _timed(latencies, http, seller, n))
    stop.set()
    if loader:
        await loader
    return latencies


async def _timed(into: list[float], http: httpx.AsyncClient, seller: tuple[str, str], n: int) -> None:
    into.append(await _post(http, seller, 900_000_000 + n))


def _p(values: list[float], q: float) -> float:
    return 1000 * statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else 1000 * values[0]


async def measure(url: str) -> None:
    settings = Settings(
        database_url=url, access_log=False, log_level="WARNING", webhooks_dispatcher="off", rate_limit_per_second=0
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as http:
            first, integration = await _org(app, http, 0, 20)
            others = [(await _org(app, http, n, 5))[0] for n in (1, 2, 3)]
            spread = first[:5] + [s for org in others for s in org]
            one: list[float] = []
            four: list[float] = []
            alone: list[float] = []
            during: list[float] = []
            for r in range(ROUNDS):
                one.append(await _writers(http, first))
                four.append(await _writers(http, spread))
                alone += await _single(http, first[0], None, [])
                during += await _single(http, first[0], integration, [s[0] for s in first[1:]])
                print(f"round {r + 1}: one org {one[-1]:.0f} req/s, four orgs {four[-1]:.0f} req/s", flush=True)
    ratio = statistics.median(one) / statistics.median(four)
    print(f"20 sellers, one org:   {statistics.median(one):7.1f} req/s")
    print(f"20 sellers, four orgs: {statistics.median(four):7.1f} req/s   one / four = {ratio:.2f}")
    print(f"one seller alone:      p50 {_p(alone, 50):7.1f} ms  p99 {_p(alone, 99):7.1f} ms  ({len(alone)} POSTs)")
    print(f"during batch upserts:  p50 {_p(during, 50):7.1f} ms  p99 {_p(during, 99):7.1f} ms  ({len(during)} POSTs)")
    print(f"p99 during / alone = {_p(during, 99) / _p(alone, 99):.2f}")
    print(f"requests refused: {FAILED or 'none'}")


def main() -> None:
    with fresh_pg_database("dealcoach_eventbench") as url:
        upgrade(url)
        asyncio.run(measure(url))


if __name__ == "__main__":
    main()
