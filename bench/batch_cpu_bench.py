"""What one batch upsert record costs the app, in one process: `.venv/bin/python bench/batch_cpu_bench.py`.

Drops and recreates the PostgreSQL database `dealcoach_bench_batch`, migrates it, bootstraps an
organisation with 20 sellers and an integration key, and sends `POST /v1/deals/batch-upsert`
in-process (httpx.ASGITransport into create_app: parsing, auth, per-record validation, the deal
rules, the writes, events, outbox and the response are all in the figure), one batch after
another. The batches are shaped as bench/batch_load.py shapes them (the `make bench` row): new
deals, and once some exist a fifth of each batch re-sends earlier ones with a new amount and
stage. Prints per batch (medians) the wall time, the CPU time of this process (the app and the
in-process client) and of PostgreSQL's backends serving it (from /proc: the database must run on
this machine), the CPU per record, deals per second for this one client, and the statements a
batch sends. A machine-wide figure needs the servers: `make bench` (bench/README.md).

Settings (environment): BENCH_PG_DSN (superuser DSN on the maintenance database, default
postgresql://postgres@127.0.0.1:5432/postgres), BENCH_BATCHES (measured batches, 10),
BENCH_BATCH_SIZE (500), BENCH_WARMUP_BATCHES (2).
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db.migrate import upgrade  # noqa: E402
from app.db.uow import UnitOfWork  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services.bootstrap import bootstrap_organization  # noqa: E402
from app.settings import Settings  # noqa: E402
from common import dsn, recreate_database, sa_url  # noqa: E402

DB = "dealcoach_bench_batch"
BATCHES = int(os.environ.get("BENCH_BATCHES", "10"))
SIZE = int(os.environ.get("BENCH_BATCH_SIZE", "500"))
WARMUP = int(os.environ.get("BENCH_WARMUP_BATCHES", "2"))
SELLERS = 20
STAGES = ["prospecting", "qualification", "discovery", "proposal", "negotiation"]
CURRENCIES = ["EUR", "USD", "GBP"]


class Batches:
    """Batches as bench/batch_load.py builds them: new deals, and a fifth re-sending earlier ones."""

    def __init__(self, owners: list[str]) -> None:
        self.owners = owners
        self.rng = random.Random("batch-cpu-bench")
        self.earlier: list[str] = []
        self.n = 0

    def next(self) -> bytes:
        rng, records = self.rng, []
        for external_id in rng.sample(self.earlier, min(len(self.earlier), SIZE // 5)):
            records.append(
                {
                    "source": "bench",
                    "external_id": external_id,
                    "amount": {"amount": f"{rng.randrange(100, 10**6)}.00", "currency": rng.choice(CURRENCIES)},
                    "stage": rng.choice(STAGES),
                }
            )
        created = []
        while len(records) < SIZE:
            self.n += 1
            external_id = f"b-{self.n}"
            created.append(external_id)
            records.append(
                {
                    "source": "bench",
                    "external_id": external_id,
                    "name": f"Synced deal {external_id}",
                    "account_name": f"Account {self.n % 997}",
                    "amount": {"amount": f"{rng.randrange(100, 10**6)}.{self.n % 100:02d}", "currency": "EUR"},
                    "expected_close_date": f"2027-{1 + self.n % 12:02d}-{1 + self.n % 28:02d}",
                    "stage": STAGES[self.n % len(STAGES)],
                    "owner_id": self.owners[self.n % len(self.owners)],
                }
            )
        self.earlier = (self.earlier + created)[-5 * SIZE :]
        return orjson.dumps({"records": records})


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes so far (PostgreSQL's backends: same machine, /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


async def _backends(admin: asyncpg.Connection) -> list[int]:
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", DB)
    return [row["pid"] for row in rows]


async def _people(client: httpx.AsyncClient, admin_key: str) -> tuple[list[str], str]:
    admin = {"Authorization": f"Bearer {admin_key}"}
    owners = []
    for n in range(SELLERS):
        body = {"name": f"Seller {n}", "email": f"seller{n}@bench.test", "role": "seller"}
        response = await client.post("/v1/members", json=body, headers=admin)
        response.raise_for_status()
        owners.append(response.json()["id"])
    body = {"name": "CRM", "email": "crm@bench.test", "role": "integration"}
    crm = (await client.post("/v1/members", json=body, headers=admin)).json()["id"]
    key = await client.post(f"/v1/members/{crm}/api-keys", json={"label": "bench"}, headers=admin)
    key.raise_for_status()
    return owners, key.json()["api_key"]


async def main() -> None:
    await recreate_database(DB)
    url = sa_url(DB)
    await asyncio.to_thread(upgrade, url)
    settings = Settings(
        database_url=url,
        webhooks_dispatcher="off",
        rate_limit_per_second=0,
        access_log=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    async with app.router.lifespan_context(app):
        sa.event.listen(app.state.engine.sync_engine, "before_cursor_execute", before)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client:
            done = await bootstrap_organization(
                UnitOfWork(app.state.sessionmaker), org_name="Bench", admin_email="admin@bench.test", admin_name="A"
            )
            owners, key = await _people(client, done.api_key)
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            batches = Batches(owners)
            wall: list[float] = []
            cpu: list[float] = []
            pg_cpu: list[float] = []
            counts: list[int] = []
            admin = await asyncpg.connect(dsn(DB))
            for n in range(WARMUP + BATCHES):
                body = batches.next()
                statements.clear()
                backends = await _backends(admin)
                p0 = _cpu_seconds(backends)
                t0, c0 = time.perf_counter(), time.process_time()
                response = await client.post("/v1/deals/batch-upsert", content=body, headers=headers)
                elapsed, used = time.perf_counter() - t0, time.process_time() - c0
                backends += [pid for pid in await _backends(admin) if pid not in backends]
                pg_used = _cpu_seconds(backends) - p0
                assert response.status_code == 200, response.text
                outcomes = [r["outcome"] for r in orjson.loads(response.content)["results"]]
                assert "error" not in outcomes, response.text[:500]
                if n >= WARMUP:
                    wall.append(elapsed)
                    cpu.append(used)
                    pg_cpu.append(pg_used)
                    counts.append(len(statements))
            await admin.close()
    load = os.getloadavg()
    print(f"POST /v1/deals/batch-upsert in-process on PostgreSQL, {BATCHES} batches of {SIZE} after {WARMUP}")
    print(
        f"python {platform.python_version()}, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    w, c, pg = statistics.median(wall), statistics.median(cpu), statistics.median(pg_cpu)
    print(
        f"per batch: {w * 1000:.1f} ms wall (min {min(wall) * 1000:.1f}, max {max(wall) * 1000:.1f}), "
        f"{c * 1000:.1f} ms CPU in this process, {pg * 1000:.0f} ms in PostgreSQL's backends "
        f"(clock ticks of {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms); per record: {c / SIZE * 1000:.3f} ms "
        f"+ {pg / SIZE * 1000:.3f} ms CPU; one client: {SIZE / w:,.0f} deals/s; statements per batch: "
        f"{statistics.median(counts):.0f} (via SQLAlchemy)"
    )


if __name__ == "__main__":
    asyncio.run(main())
