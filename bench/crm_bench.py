"""CRM webhooks in, on PostgreSQL: `.venv/bin/python bench/crm_bench.py`.

Checks the two figures the CRM integrations promise: a 100-event HubSpot batch is answered in
under 200 ms at p99, and 10,000 Pipedrive events are applied at 500 events/s or more.

Drops and recreates the PostgreSQL database `dealcoach_bench_crm`, migrates it
(app.db.migrate.upgrade), bootstraps an organisation through the services, and runs the app
in-process (httpx.ASGITransport into create_app, with the inbox applier off, so routing, the body
reading, the signature check, the SQL and the rendering are in the figures and nothing applies
events behind the bench's back). Then:

- **HubSpot**: configures the hubspot integration (PUT /v1/integrations/hubspot) and POSTs
  BENCH_HUBSPOT_BATCHES batches of 100 `deal.creation` / `deal.propertyChange` events, one after
  the other, each with fresh `eventId`s, signed with signature v3 (app.domain.hubspot.signature_v3)
  over the URI the app sees; two warm-up batches are not counted. The answer stores the events;
  nothing is read from HubSpot's API (the applier would, later). Prints p50/p99 of the answer time.
- **Pipedrive**: configures the pipedrive integration (stage and owner maps), POSTs
  BENCH_PIPEDRIVE_EVENTS deal events to POST /v1/integrations/pipedrive/webhooks (16 at a time,
  Basic auth): per deal one `create` then four `change`s (stage, value), in order. Then starts
  the real InboxApplier (app/services/inbox_applier.py) with its default settings, as every
  server runs it (`run()`), and times it until no event is pending. Prints events/s and how many
  events ended in each outcome.

Exit status: 0 when the bench ran, whatever the targets say (a target missed is printed FAIL);
1 when requests were refused (non-2xx) or events are still pending after BENCH_APPLY_TIMEOUT
seconds; 2 when it could not run (no PostgreSQL).

Settings (environment): BENCH_PG_DSN (superuser DSN on the maintenance database, default
postgresql://postgres@127.0.0.1:5432/postgres), BENCH_HUBSPOT_BATCHES (50),
BENCH_PIPEDRIVE_EVENTS (10000), BENCH_APPLY_TIMEOUT (600).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db.migrate import upgrade  # noqa: E402
from app.db.uow import UnitOfWork  # noqa: E402
from app.domain.hubspot import signature_v3  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services.bootstrap import bootstrap_organization  # noqa: E402
from app.services.inbox_applier import InboxApplier  # noqa: E402
from app.settings import Settings  # noqa: E402
from common import PG_DSN, dsn, recreate_database, sa_url  # noqa: E402

DB = "dealcoach_bench_crm"
HUBSPOT_BATCHES = int(os.environ.get("BENCH_HUBSPOT_BATCHES", "50"))
PIPEDRIVE_EVENTS = int(os.environ.get("BENCH_PIPEDRIVE_EVENTS", "10000"))
APPLY_TIMEOUT = float(os.environ.get("BENCH_APPLY_TIMEOUT", "600"))
HUBSPOT_TARGET_MS = 200.0
PIPEDRIVE_TARGET = 500.0  # events/s
BATCH = 100
WARM_UP = 2
SENDERS = 16  # Pipedrive webhooks in flight at once while storing
EVENTS_PER_DEAL = 5  # a create and four changes

BASE = "http://bench"
PORTAL, HUBSPOT_SECRET = "62515", "hs-bench-client-secret"
HUBSPOT_HOOK = "/v1/integrations/hubspot/webhooks"
COMPANY, PD_USER, PD_PASSWORD = "12882925", "dealcoach", "pd-bench-password"
PIPEDRIVE_HOOK = "/v1/integrations/pipedrive/webhooks"
CRM_SELLER = "18487521"

console = Console(width=140)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _verdict(ok: bool) -> str:
    return "[green]PASS[/green]" if ok else "[red]FAIL[/red]"


class Failures:
    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.sample = ""

    def check(self, response: httpx.Response) -> None:
        if response.status_code >= 300:
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            self.sample = self.sample or response.text[:300]

    @property
    def count(self) -> int:
        return sum(self.statuses.values())


def hubspot_batch(batch: int) -> bytes:
    at = int(time.time() * 1000)
    events = []
    for n in range(BATCH):
        kind = "creation" if n % 2 == 0 else "propertyChange"
        event: dict[str, Any] = {
            "objectId": 9_000_000 + batch * BATCH + n // 2,
            "changeSource": "CRM_UI",
            "eventId": 5_000_000_000 + batch * BATCH + n,
            "subscriptionId": 22,
            "portalId": int(PORTAL),
            "appId": 1160452,
            "occurredAt": at + n,
            "subscriptionType": f"deal.{kind}",
            "attemptNumber": 0,
        }
        if kind == "propertyChange":
            event |= {"propertyName": "dealstage", "propertyValue": "qualifiedtobuy"}
        events.append(event)
    return orjson.dumps(events)


def hubspot_headers(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time() * 1000))
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": signature_v3(HUBSPOT_SECRET, "POST", BASE + HUBSPOT_HOOK, body, timestamp),
    }


async def bench_hubspot(client: httpx.AsyncClient, failures: Failures) -> list[float]:
    config = {
        "account_id": PORTAL,
        "credentials": {"client_secret": HUBSPOT_SECRET, "access_token": "pat-na1-bench"},
        "stage_map": {"qualifiedtobuy": "qualification"},
    }
    (await client.put("/v1/integrations/hubspot", json=config)).raise_for_status()
    times = []
    for batch in range(WARM_UP + HUBSPOT_BATCHES):
        body = hubspot_batch(batch)
        headers = hubspot_headers(body)
        started = time.perf_counter()
        response = await client.post(HUBSPOT_HOOK, content=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        failures.check(response)
        if batch >= WARM_UP:
            times.append(elapsed)
    return times


def pipedrive_event(n: int, start: dt.datetime) -> dict[str, Any]:
    deal, step = divmod(n, EVENTS_PER_DEAL)
    action = "create" if step == 0 else "change"
    return {
        "meta": {
            "action": action,
            "entity": "deal",
            "company_id": int(COMPANY),
            "correlation_id": f"bench-{n}",
            "entity_id": 100_000 + deal,
            "id": f"0b5c3c9e-0000-4000-8000-{n:012d}",
            "is_bulk_edit": False,
            "timestamp": (start + dt.timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z"),
            "type": "general",
            "user_id": int(CRM_SELLER),
            "version": "2.0",
            "webhook_id": 1,
            "webhook_owner_id": int(CRM_SELLER),
            "attempt": 1,
            "host": "bench.pipedrive.com",
        },
        "data": {
            "id": 100_000 + deal,
            "title": f"Bench deal {deal}",
            "currency": "EUR",
            "expected_close_date": "2026-12-31",
            "org_id": 1 + deal % 50,
            "owner_id": int(CRM_SELLER),
            "pipeline_id": 1,
            "stage_id": 1 + step % 3,
            "status": "open",
            "value": 1000 + 100 * step,
            "lost_reason": None,
        },
        "previous": None if step == 0 else {"stage_id": 1 + (step - 1) % 3},
    }


async def bench_pipedrive(
    client: httpx.AsyncClient, app: Any, seller_id: str, failures: Failures
) -> tuple[float, float, dict[str, int], int]:
    config = {
        "account_id": COMPANY,
        "credentials": {"username": PD_USER, "password": PD_PASSWORD},
        "stage_map": {"1": "prospecting", "2": "qualification", "3": "proposal"},
        "owner_map": {CRM_SELLER: seller_id},
        "default_currency": "EUR",
    }
    (await client.put("/v1/integrations/pipedrive", json=config)).raise_for_status()
    auth = {"Authorization": "Basic " + base64.b64encode(f"{PD_USER}:{PD_PASSWORD}".encode()).decode()}
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(0, PIPEDRIVE_EVENTS, EVENTS_PER_DEAL):
        queue.put_nowait(n)

    async def sender() -> None:
        # A sender sends one deal's events in order, as Pipedrive does for one deal's changes.
        while not queue.empty():
            n = queue.get_nowait()
            for m in range(n, min(n + EVENTS_PER_DEAL, PIPEDRIVE_EVENTS)):
                response = await client.post(PIPEDRIVE_HOOK, json=pipedrive_event(m, start), headers=auth)
                failures.check(response)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    stored = time.perf_counter() - started

    applier = InboxApplier(app.state.sessionmaker)  # its default settings, as every server runs it
    conn = await asyncpg.connect(dsn(DB))
    stop = asyncio.Event()
    try:
        # Statistics as autovacuum keeps them in a running system. Without them, on a table that
        # went from empty to thousands of pending events, PostgreSQL plans the claim's "no earlier
        # pending event of this object" check as a scan of every earlier pending event (0.7 s a
        # claim at 1,500 pending; the applier then does a few events a second).
        await conn.execute("ANALYZE inbound_event")
        started = time.perf_counter()
        running = asyncio.create_task(applier.run(stop))
        deadline = started + APPLY_TIMEOUT
        pending = PIPEDRIVE_EVENTS
        while pending and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
            pending = await conn.fetchval(
                "SELECT count(*) FROM inbound_event WHERE provider = 'pipedrive' AND outcome = 'pending'"
            )
        applied = time.perf_counter() - started
        stop.set()
        await running
        await applier.close()
        rows = await conn.fetch(
            "SELECT outcome, count(*) AS n FROM inbound_event WHERE provider = 'pipedrive' GROUP BY outcome"
        )
    finally:
        await conn.close()
    return stored, applied, {str(r["outcome"]): r["n"] for r in rows}, pending


async def main() -> int:
    try:
        await recreate_database(DB)
    except (OSError, asyncpg.PostgresError) as exc:
        console.print(f"[red]PostgreSQL is not available at {PG_DSN}: {exc}[/red]")
        return 2
    started = time.perf_counter()
    await asyncio.to_thread(upgrade, sa_url(DB))  # Alembic's env runs its own event loop
    console.print(f"database {DB} created and migrated in {time.perf_counter() - started:.1f} s")
    settings = Settings(
        database_url=sa_url(DB),
        access_log=False,
        log_level="WARNING",
        inbox_applier="off",
        webhooks_dispatcher="off",
        # Limits off: Pipedrive sends from a few addresses, and the per-address budget (50/s by
        # default) would throttle the storing part to the limit, not measure it.
        rate_limit_per_second=0,
    )
    app = create_app(settings)
    failures = Failures()
    async with app.router.lifespan_context(app):
        uow = UnitOfWork(app.state.sessionmaker)
        try:
            done = await bootstrap_organization(uow, org_name="Bench", admin_email="ops@bench.test", admin_name="Ops")
        finally:
            await uow.close()
        transport = httpx.ASGITransport(app=app)
        admin = {"Authorization": f"Bearer {done.api_key}"}
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=admin, timeout=120) as client:
            seller = await client.post(
                "/v1/members", json={"name": "Seller", "email": "seller@bench.test", "role": "seller"}
            )
            seller.raise_for_status()
            hubspot_ms = await bench_hubspot(client, failures)
            # Applying HubSpot's events reads each deal from HubSpot's API, which the bench does not
            # serve: without this the applier would keep retrying them beside Pipedrive's.
            conn = await asyncpg.connect(dsn(DB))
            try:
                await conn.execute("DELETE FROM inbound_event WHERE provider = 'hubspot'")
            finally:
                await conn.close()
            stored, applied, outcomes, pending = await bench_pipedrive(client, app, seller.json()["id"], failures)
        async with app.state.engine.connect() as conn:
            pg_version = (await conn.exec_driver_sql("SHOW server_version")).scalar()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    load = os.getloadavg()
    console.print(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL {pg_version}, "
        f"commit {commit.stdout.strip() or '?'}, {dt.date.today()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    p50, p99 = statistics.median(hubspot_ms), _p(hubspot_ms, 0.99)
    rate = PIPEDRIVE_EVENTS / applied if applied else 0.0
    table = Table(title="CRM webhooks in (PostgreSQL, in-process)")
    for column in ("measure", "runs", "p50", "p99", "rate", "target", "verdict"):
        table.add_column(column, justify="left" if column in ("measure", "target") else "right")
    table.add_row(
        "HubSpot batch of 100 answered",
        f"{len(hubspot_ms)} batches",
        f"{p50:.1f} ms",
        f"{p99:.1f} ms",
        f"{BATCH * len(hubspot_ms) / (sum(hubspot_ms) / 1000):,.0f} events/s",
        f"p99 < {HUBSPOT_TARGET_MS:.0f} ms",
        _verdict(p99 < HUBSPOT_TARGET_MS),
    )
    table.add_row(
        "Pipedrive events stored (16 in flight)",
        f"{PIPEDRIVE_EVENTS:,} events",
        "",
        "",
        f"{PIPEDRIVE_EVENTS / stored:,.0f} events/s",
        "-",
        "",
    )
    table.add_row(
        "Pipedrive events applied (InboxApplier)",
        f"{PIPEDRIVE_EVENTS:,} events",
        "",
        "",
        f"{rate:,.0f} events/s ({applied:.1f} s)",
        f">= {PIPEDRIVE_TARGET:.0f} events/s",
        _verdict(not pending and rate >= PIPEDRIVE_TARGET),
    )
    console.print(table)
    console.print("Pipedrive outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())))
    status = 0
    if failures.count:
        console.print(f"[red]{failures.count} requests refused: {failures.statuses}; first: {failures.sample}[/red]")
        status = 1
    if pending:
        console.print(f"[red]{pending:,} Pipedrive events still pending after {APPLY_TIMEOUT:.0f} s[/red]")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
