"""Webhook delivery throughput and latency: events written through the outbox at a steady
rate, delivered to 3 endpoints on a loopback receiver by 2 `dealcoach webhooks` processes.

    .venv/bin/python bench/webhooks_bench.py            # 10,000 events, about a minute
    BENCH_EVENTS=2000 .venv/bin/python bench/webhooks_bench.py

Needs only the local PostgreSQL. Prints deliveries per second and event-to-delivery latency
(from the event's commit to the receiver reading the request) p50/p99.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db.engine import make_engine, make_sessionmaker  # noqa: E402
from app.db.migrate import upgrade  # noqa: E402
from app.db.uow import UnitOfWork  # noqa: E402
from app.services.bootstrap import bootstrap_organization  # noqa: E402
from app.settings import Settings  # noqa: E402
from common import dsn, recreate_database, sa_url  # noqa: E402

DB = os.environ.get("BENCH_DB", "dealcoach_bench_webhooks")
EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
RATE = float(os.environ.get("BENCH_EVENT_RATE", "1000"))  # events per second written
ENDPOINTS = 3
DISPATCHERS = 2
BATCH = 50  # events per transaction


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.count = 0

    async def __call__(self, scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.time()
        self.count += 1
        event_id = dict(scope["headers"]).get(b"webhook-id", b"").decode()
        self.arrivals.setdefault(f"{scope['path']}|{event_id}", now)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        del body


async def main() -> None:
    await recreate_database(DB)
    url = sa_url(DB)
    await asyncio.to_thread(upgrade, url)
    settings = Settings(database_url=url, webhooks_dispatcher="off")
    engine = make_engine(settings)
    sessionmaker = make_sessionmaker(engine)
    uow = UnitOfWork(sessionmaker)
    done = await bootstrap_organization(uow, org_name="Bench", admin_email="ops@bench.test", admin_name="Ops")
    await uow.close()

    receiver = Receiver()
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]

    conn = await asyncpg.connect(dsn(DB))
    for n in range(ENDPOINTS):
        endpoint_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO webhook_endpoint (id, organization_id, url, event_types, active, secret, version,"
            " created_at, updated_at) VALUES ($1, $2, $3, '[\"*\"]', true, $4, 1, now(), now())",
            endpoint_id,
            done.organization_id,
            f"http://127.0.0.1:{port}/e{n}",
            "whsec_" + "A" * 44,
        )
        await conn.execute(
            "INSERT INTO webhook_subscription (organization_id, pattern, endpoint_id) VALUES ($1, '*', $2)",
            done.organization_id,
            endpoint_id,
        )
    await conn.close()

    env = {
        **os.environ,
        "DEALCOACH_DATABASE_URL": url,
        "DEALCOACH_WEBHOOKS_ALLOW_PRIVATE": "true",
        "DEALCOACH_LOG_LEVEL": "WARNING",
        "DEALCOACH_WEBHOOKS_MAX_IN_FLIGHT": os.environ.get("BENCH_MAX_IN_FLIGHT", "64"),
    }
    dealcoach = str(Path(sys.executable).parent / "dealcoach")
    logs = Path(tempfile.mkdtemp(prefix="dealcoach-webhooks-bench-"))
    procs = [
        subprocess.Popen([dealcoach, "webhooks"], env=env, stderr=(logs / f"dispatcher-{n}.log").open("w"))
        for n in range(DISPATCHERS)
    ]
    committed: dict[str, float] = {}
    try:
        await _started(logs, DISPATCHERS)  # a dispatcher's start-up is not an event's latency
        database_cpu_before, idle_before = _database_cpu_seconds(), _machine_idle_seconds()
        started = time.time()
        written = 0
        while written < EVENTS:
            uow = UnitOfWork(sessionmaker)
            ids = []
            async with uow:
                for _ in range(min(BATCH, EVENTS - written)):
                    subject = uuid.uuid4()
                    await uow.events.append(
                        organization_id=done.organization_id,
                        type="member.updated",
                        actor_id=None,
                        subject_type="member",
                        subject_id=subject,
                        data={"bench": True},
                    )
                    ids.append(subject)
                await uow.commit()
            await uow.close()
            now = time.time()
            for subject in ids:
                committed[str(subject)] = now
            written += len(ids)
            lag = written / RATE - (time.time() - started)
            if lag > 0:
                await asyncio.sleep(lag)
        expected = EVENTS * ENDPOINTS
        deadline = time.time() + 300
        while len(receiver.arrivals) < expected and time.time() < deadline:
            await asyncio.sleep(0.05)
        finished = time.time()
        dispatcher_cpu = sum(_cpu_seconds(proc.pid) for proc in procs)
        database_cpu = _database_cpu_seconds() - database_cpu_before
        idle = (_machine_idle_seconds() - idle_before) / (os.cpu_count() or 1) / (finished - started)
        receiver_cpu = time.process_time()  # this process: the receiver and the event writer
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        server.should_exit = True
        await serving

    conn = await asyncpg.connect(dsn(DB))
    rows = await conn.fetch(
        "SELECT d.endpoint_id, d.event_id, e.subject_id, e.occurred_at FROM webhook_delivery d"
        " JOIN event e ON e.id = d.event_id WHERE d.status = 'succeeded'"
    )
    endpoints = {
        str(r["id"]): r["url"].rsplit("/", 1)[1] for r in await conn.fetch("SELECT id, url FROM webhook_endpoint")
    }
    await conn.close()
    latencies = []
    for row in rows:
        key = f"/{endpoints[str(row['endpoint_id'])]}|{row['event_id']}"
        if key in receiver.arrivals:
            latencies.append(receiver.arrivals[key] - committed[str(row["subject_id"])])
    latencies.sort()
    delivered = len(receiver.arrivals)
    print(f"events {EVENTS} × endpoints {ENDPOINTS} = {EVENTS * ENDPOINTS} deliveries, {DISPATCHERS} dispatchers")
    print(f"delivered {delivered} (requests received {receiver.count}) in {finished - started:.1f} s")
    print(f"throughput {delivered / (finished - started):,.0f} deliveries/s (events written at {RATE:g}/s)")
    if latencies:
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"event-to-delivery latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    print(
        f"CPU per delivery: dispatchers {dispatcher_cpu / max(delivered, 1) * 1000:.2f} ms,"
        f" receiver and writer {receiver_cpu / max(delivered, 1) * 1000:.2f} ms,"
        f" PostgreSQL {database_cpu / max(delivered, 1) * 1000:.2f} ms; the machine idle {idle:.0%} of the time"
    )
    unrecorded = sum(
        line.count("could not be recorded") for path in logs.glob("*.log") for line in path.open(errors="replace")
    )
    print(f"attempts not recorded (sent again after their lease): {unrecorded}; dispatcher logs in {logs}")
    await engine.dispose()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _started(logs: Path, dispatchers: int, timeout: float = 60.0) -> None:
    """Wait until every dispatcher has said it is dispatching (its first line on stderr)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = sum('"dispatching"' in path.read_text(errors="replace") for path in logs.glob("dispatcher-*.log"))
        if ready >= dispatchers:
            return
        await asyncio.sleep(0.05)
    raise SystemExit(f"the dispatchers did not start within {timeout:g} s; see {logs}")


def _database_cpu_seconds() -> float:
    """User and system CPU all PostgreSQL processes have used so far (their server runs here)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            if "(postgres)" in text:
                total += _cpu_seconds(int(stat.parent.name))
    return total


def _machine_idle_seconds() -> float:
    """Idle time of all the machine's cores together so far (Linux /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    asyncio.run(main())
