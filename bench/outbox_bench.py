"""What the webhook outbox costs a write: `.venv/bin/python bench/outbox_bench.py`.

Drops and recreates the PostgreSQL database `dealcoach_bench_outbox`, migrates it and bootstraps
two organisations through the service layer: one with no webhook endpoints (the common case) and
one with three endpoints subscribed to every event. Then it sends `POST /v1/deals` in-process
(httpx.ASGITransport into create_app: routing, auth, validation, the owner rule, the event, the
outbox and rendering are all in the figure), alternating between the organisations in
BENCH_ROUNDS rounds of BENCH_REQUESTS sequential requests each, and prints per organisation the
median over rounds of the mean wall time and CPU time per request, and the statements one POST
sends. The dispatcher is off, so only the write path is measured, not the deliveries.

With no endpoints the outbox is one indexed lookup (`webhook_subscription` by organisation and
event type): on PostgreSQL a `NOT EXISTS` inside the one statement that writes the deal and its
event (app/db/repositories/deal_writes.py). With endpoints that statement writes nothing and the
general path runs: a transaction with the lookup and one multi-row INSERT of the deliveries.
Statements are counted wherever they are sent: through SQLAlchemy, or on the driver connection
directly as the hot paths send them (BEGIN and COMMIT included).

Settings (environment): BENCH_PG_DSN (superuser DSN on the maintenance database, default
postgresql://postgres@127.0.0.1:5432/postgres), BENCH_ROUNDS (7), BENCH_REQUESTS (300).
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db.migrate import upgrade  # noqa: E402
from app.db.uow import UnitOfWork  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services.bootstrap import bootstrap_organization  # noqa: E402
from app.settings import Settings  # noqa: E402
from common import recreate_database, sa_url  # noqa: E402

DB = "dealcoach_bench_outbox"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
ENDPOINTS = 3


class Org:
    def __init__(self, client: httpx.AsyncClient, admin_key: str) -> None:
        self.client = client
        self.admin = {"Authorization": f"Bearer {admin_key}"}
        self.seller: dict[str, str] = {}
        self.seller_id = ""
        self.n = 0

    async def setup(self, name: str, endpoints: int) -> None:
        created = await self.client.post(
            "/v1/members",
            json={"name": f"{name} Seller", "email": f"seller@{name.lower()}.test", "role": "seller"},
            headers=self.admin,
        )
        created.raise_for_status()
        self.seller_id = created.json()["id"]
        key = await self.client.post(
            f"/v1/members/{self.seller_id}/api-keys", json={"label": "bench"}, headers=self.admin
        )
        key.raise_for_status()
        self.seller = {"Authorization": f"Bearer {key.json()['api_key']}"}
        for n in range(endpoints):
            response = await self.client.post(
                "/v1/webhook-endpoints",
                json={"url": f"http://127.0.0.1:9/{name}/{n}", "event_types": ["*"]},
                headers=self.admin,
            )
            response.raise_for_status()

    async def post_deal(self) -> None:
        self.n += 1
        response = await self.client.post(
            "/v1/deals",
            json={
                "name": f"Deal {self.n}",
                "account_name": f"Account {self.n}",
                "amount": {"amount": "12500.00", "currency": "EUR"},
                "expected_close_date": "2027-03-31",
                "owner_id": self.seller_id,
            },
            headers=self.seller,
        )
        assert response.status_code == 201, response.text


def count_driver_statements(statements: list[str]) -> None:
    """Count what the hot paths send on the asyncpg connection itself (SQLAlchemy's own statements
    go through prepared statements and are counted by its cursor events)."""
    for name in ("fetch", "fetchrow", "fetchval", "execute"):
        method = getattr(asyncpg.Connection, name)

        def counted(method: Any = method) -> Any:
            async def send(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                statements.append(query)
                return await method(self, query, *args, **kwargs)

            return send

        setattr(asyncpg.Connection, name, counted())


async def main() -> None:
    await recreate_database(DB)
    url = sa_url(DB)
    await asyncio.to_thread(upgrade, url)
    settings = Settings(
        database_url=url,
        webhooks_dispatcher="off",
        webhooks_allow_private=True,
        rate_limit_per_second=0,
        log_level="WARNING",
    )
    app = create_app(settings)
    statements: list[str] = []
    outbox_seconds = [0.0]
    started: list[float] = []

    def before(conn, cursor, statement, *rest):  # type: ignore[no-untyped-def]
        statements.append(statement)
        started.append(time.perf_counter())

    def after(conn, cursor, statement, *rest):  # type: ignore[no-untyped-def]
        elapsed = time.perf_counter() - started.pop()
        if "webhook_subscription" in statement or "INSERT INTO webhook_delivery" in statement:
            outbox_seconds[0] += elapsed

    count_driver_statements(statements)
    async with app.router.lifespan_context(app):
        sa.event.listen(app.state.engine.sync_engine, "before_cursor_execute", before)
        sa.event.listen(app.state.engine.sync_engine, "after_cursor_execute", after)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            orgs: dict[str, Org] = {}
            for label, name, endpoints in (("no endpoints", "Quiet", 0), (f"{ENDPOINTS} endpoints", "Hooked", 3)):
                done = await bootstrap_organization(
                    UnitOfWork(app.state.sessionmaker),
                    org_name=name,
                    admin_email=f"admin@{name.lower()}.test",
                    admin_name="Admin",
                )
                org = Org(client, done.api_key)
                await org.setup(name, endpoints)
                orgs[label] = org
            per_statements: dict[str, int] = {}
            for label, org in orgs.items():
                for _ in range(20):  # warm-up: statement caches, pool, JIT-free but cache-full
                    await org.post_deal()
                statements.clear()
                await org.post_deal()
                per_statements[label] = len(statements)
            wall: dict[str, list[float]] = {label: [] for label in orgs}
            cpu: dict[str, list[float]] = {label: [] for label in orgs}
            outbox: dict[str, list[float]] = {label: [] for label in orgs}
            for _ in range(ROUNDS):
                for label, org in orgs.items():
                    outbox_seconds[0] = 0.0
                    t0, c0 = time.perf_counter(), time.process_time()
                    for _ in range(REQUESTS):
                        await org.post_deal()
                    wall[label].append((time.perf_counter() - t0) / REQUESTS * 1000)
                    cpu[label].append((time.process_time() - c0) / REQUESTS * 1000)
                    outbox[label].append(outbox_seconds[0] / REQUESTS * 1000)
    load = os.getloadavg()[0]
    print(f"POST /v1/deals in-process on PostgreSQL, {ROUNDS} rounds x {REQUESTS} requests per organisation")
    print(f"python {platform.python_version()}, load average {load:.1f} on {os.cpu_count()} cores")
    base = statistics.median(wall["no endpoints"])
    for label in orgs:
        w, c = statistics.median(wall[label]), statistics.median(cpu[label])
        spread = max(wall[label]) - min(wall[label])
        print(
            f"{label:>14}: {w:6.2f} ms wall (rounds spread {spread:.2f} ms), {c:6.2f} ms CPU per request "
            f"(client and app in one process), {per_statements[label]} statements; "
            f"{(w / base - 1) * 100:+.1f} % wall vs no endpoints; the outbox's statements "
            f"{statistics.median(outbox[label]):.3f} ms of it"
        )


if __name__ == "__main__":
    asyncio.run(main())
