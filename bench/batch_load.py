"""Batch upsert load for `make bench`: clients each posting 500-record batches, one after another.

    python bench/batch_load.py --url http://127.0.0.1:8000 --key dc_... --owners id,id,... \
        --clients 4 --warmup 3 --duration 10 --tag r1

Each client keeps one batch in flight. A batch creates new deals (external ids unique to the
run) and, once the client has created some, re-sends a share of its earlier records with a
new amount and stage (`--update-share`, default 0.2), as a CRM sync does. With --duration 0
the clients run until SIGTERM (the bench's "during batch upsert" row); a batch in flight is
finished, not cut off.

Prints one line, `BENCH_RESULT {...}`: deals per second over the measured window (each
batch counts pro rata for the part of it inside the window), the batches that overlap the
window with their records and latency percentiles, failed batches (non-2xx or transport
errors) and records answered with an error outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

STAGES = ["prospecting", "qualification", "discovery", "proposal", "negotiation"]
CURRENCIES = ["EUR", "USD", "GBP"]


@dataclass
class Stats:
    window_start: float = 0.0
    window_end: float = 0.0
    deals: float = 0.0  # records applied, pro rata inside the window
    batches: int = 0
    records: int = 0
    latencies: list[float] = field(default_factory=list)
    failed_batches: int = 0
    record_errors: int = 0
    first_error: str | None = None

    def add(self, started: float, ended: float, applied: int) -> None:
        overlap = min(ended, self.window_end) - max(started, self.window_start)
        if overlap > 0:
            self.deals += applied * overlap / max(ended - started, 1e-9)
            self.batches += 1
            self.records += applied
            self.latencies.append((ended - started) * 1000)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def client(
    index: int, http: httpx.AsyncClient, args: argparse.Namespace, owners: list[str], stats: Stats, stop: asyncio.Event
) -> None:
    rng = random.Random(f"{args.tag}-{index}")
    earlier: list[str] = []
    n = 0
    while not stop.is_set() and time.monotonic() < stats.window_end:
        records: list[dict[str, Any]] = []
        for external_id in rng.sample(earlier, min(len(earlier), int(args.batch * args.update_share))):
            records.append(
                {
                    "source": "bench",
                    "external_id": external_id,
                    "amount": {"amount": f"{rng.randrange(100, 10**6)}.00", "currency": rng.choice(CURRENCIES)},
                    "stage": rng.choice(STAGES),
                }
            )
        created = []
        while len(records) < args.batch:
            n += 1
            external_id = f"{args.tag}-{index}-{n}"
            created.append(external_id)
            records.append(
                {
                    "source": "bench",
                    "external_id": external_id,
                    "name": f"Synced deal {external_id}",
                    "account_name": f"Account {n % 997}",
                    "amount": {"amount": f"{rng.randrange(100, 10**6)}.{n % 100:02d}", "currency": "EUR"},
                    "expected_close_date": f"2027-{1 + n % 12:02d}-{1 + n % 28:02d}",
                    "stage": STAGES[n % len(STAGES)],
                    "owner_id": owners[(n + index) % len(owners)],
                }
            )
        earlier = (earlier + created)[-5 * args.batch :]
        body = orjson.dumps({"records": records})
        started = time.monotonic()
        applied = 0
        try:
            response = await http.post("/v1/deals/batch-upsert", content=body)
            if response.status_code != 200:
                stats.failed_batches += 1
                stats.first_error = stats.first_error or f"HTTP {response.status_code}: {response.text[:300]}"
            else:
                for result in orjson.loads(response.content)["results"]:
                    if result["outcome"] == "error":
                        stats.record_errors += 1
                        stats.first_error = stats.first_error or f"record error: {json.dumps(result)[:300]}"
                    else:
                        applied += 1
        except httpx.HTTPError as exc:
            stats.failed_batches += 1
            stats.first_error = stats.first_error or f"{type(exc).__name__}: {exc}"
        stats.add(started, time.monotonic(), applied)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    owners = [o for o in args.owners.split(",") if o]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    now = time.monotonic()
    stats = Stats(window_start=now + args.warmup, window_end=now + args.warmup + (args.duration or 10**9))
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(
        base_url=args.url, headers=headers, timeout=httpx.Timeout(300.0), limits=limits
    ) as http:
        await asyncio.gather(*(client(i, http, args, owners, stats, stop) for i in range(args.clients)))
    ended = min(time.monotonic(), stats.window_end)
    seconds = max(ended - stats.window_start, 1e-9)
    return {
        "clients": args.clients,
        "batch": args.batch,
        "duration_s": round(seconds, 3),
        "deals_per_s": round(stats.deals / seconds, 2),
        "batches": stats.batches,
        "records": stats.records,
        "p50_ms": round(statistics.median(stats.latencies), 3) if stats.latencies else 0.0,
        "p99_ms": round(percentile(stats.latencies, 99), 3),
        "max_ms": round(max(stats.latencies), 3) if stats.latencies else 0.0,
        "failed_batches": stats.failed_batches,
        "record_errors": stats.record_errors,
        "first_error": stats.first_error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--owners", required=True, help="comma-separated seller ids to own the new deals")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds; 0: until SIGTERM")
    parser.add_argument("--update-share", type=float, default=0.2)
    parser.add_argument("--tag", required=True, help="unique per run: the new records' external ids start with it")
    result = asyncio.run(run(parser.parse_args()))
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
