"""The webhook dispatcher: leases due deliveries from the outbox, sends them signed, and
records each attempt. It runs inside every `dealcoach serve` worker (unless switched off)
and as `dealcoach webhooks`; any number of dispatchers share one database safely."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.errors import WebhookUrlNotAllowed
from app.domain.webhooks import (
    DEFAULT_RETRY_SCHEDULE,
    AttemptResult,
    DeliveryStatus,
    RecordedAttempt,
    Target,
    after_attempt,
    ensure_addresses_allowed,
    parse_retry_after,
    parse_schedule,
    parse_target,
    signature_header,
    signing_secrets,
)
from app.observability import WEBHOOK_DELIVERIES, WEBHOOK_QUEUE_LAG
from app.services.background import LeasingWorker
from app.services.webhooks import resolve
from app.settings import Settings

USER_AGENT = "Dealcoach-Webhooks/1"
# An attempt goes straight to an httpx transport (a connection pool): the client in front of one
# builds and merges URLs, headers and cookies, and runs auth and redirect machinery that a
# delivery has no use for (no cookies, no auth, redirects never followed), and that was 19 % of a
# dispatcher's CPU in a py-spy profile under bench/webhooks_bench.py (bench/README.md).
#
# httpcore's pool looks at every connection it holds, for each request and each answer (has it
# expired? through anyio, a rebuilt attribute table and a poll each), so a request costs more the
# larger the pool: each receiver origin gets pools of at most this many connections (with one
# pool of 64, that bookkeeping was 41 % of a dispatcher's CPU; pools of 4 cost 1.37-1.40 ms of
# dispatcher CPU per delivery, pools of one 1.09-1.13 ms).
CONNECTIONS_PER_POOL = 1
# A receiver origin's pools are closed once it has had no attempt for this long.
IDLE_ORIGIN_SECONDS = 60.0
RESPONSE_BODY_LIMIT = 1024  # bytes of a receiver's answer kept; the rest is never read


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    allow_private: bool = False
    schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    poll_interval: float = 0.25  # seconds between looks at the outbox when it is idle
    max_in_flight: int = 32  # attempts under way at once, across all endpoints
    timeout: float = 15.0  # a receiver has this long to answer in full
    prune_after: dt.timedelta = dt.timedelta(days=30)
    housekeeping_every: float = 5.0
    lease_margin: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatcherConfig:
        """The dispatcher as the settings shape it."""
        schedule = (
            parse_schedule(settings.webhooks_retry_schedule)
            if settings.webhooks_retry_schedule
            else DEFAULT_RETRY_SCHEDULE
        )
        return cls(
            allow_private=settings.webhooks_allow_private,
            poll_interval=settings.webhooks_poll_interval,
            max_in_flight=settings.webhooks_max_in_flight,
            timeout=settings.webhooks_attempt_timeout,
            lease_margin=settings.webhooks_lease_margin,
            prune_after=dt.timedelta(days=settings.webhooks_prune_after_days),
            schedule=schedule,
        )

    @property
    def lease(self) -> dt.timedelta:
        """How long a claimed delivery is ours: longer than any attempt can take."""
        return dt.timedelta(seconds=self.timeout + self.lease_margin)


class ReceiverPools:
    """httpx transports (connection pools) per receiver origin (scheme, host, port), each of at
    most CONNECTIONS_PER_POOL connections, and as many as the attempts in flight need: an attempt
    takes the least busy pool of its origin, so it never waits for a connection, and a connection
    only ever serves its own origin (kept alive between attempts, never closed to make room for
    another receiver's). Transports follow no redirects and read no proxy settings."""

    def __init__(self, max_in_flight: int, timeout: float) -> None:
        self.max_pools = -(-max_in_flight // CONNECTIONS_PER_POOL)
        self.timeout = timeout
        self.tls = httpx.create_ssl_context()  # one for all pools: building one loads the CA bundle
        self.origins: dict[Target, list[_Pool]] = {}

    @contextlib.asynccontextmanager
    async def transport(self, target: Target) -> AsyncIterator[httpx.AsyncHTTPTransport]:
        pools = self.origins.setdefault(target, [])
        pool = min(pools, key=lambda p: p.busy, default=None)
        if pool is None or (pool.busy >= CONNECTIONS_PER_POOL and len(pools) < self.max_pools):
            pool = _Pool(self._new_transport())
            pools.append(pool)
        pool.busy += 1
        pool.used_at = time.monotonic()
        try:
            yield pool.transport
        finally:
            pool.busy -= 1

    async def close_idle(self) -> None:
        """Close the pools of origins with no attempt for IDLE_ORIGIN_SECONDS."""
        now = time.monotonic()
        for target, pools in list(self.origins.items()):
            if all(p.busy == 0 and now - p.used_at > IDLE_ORIGIN_SECONDS for p in pools):
                del self.origins[target]
                await asyncio.gather(*(p.close() for p in pools))

    async def close(self) -> None:
        pools = [p for origin in self.origins.values() for p in origin]
        self.origins.clear()
        await asyncio.gather(*(p.close() for p in pools))

    def _new_transport(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(
            verify=self.tls,
            trust_env=False,
            limits=httpx.Limits(max_connections=CONNECTIONS_PER_POOL, max_keepalive_connections=CONNECTIONS_PER_POOL),
        )


@dataclass(slots=True)
class _Pool:
    transport: httpx.AsyncHTTPTransport
    busy: int = 0  # attempts under way
    used_at: float = 0.0
    closed: bool = False

    async def close(self) -> None:
        self.closed = True
        await self.transport.aclose()


@dataclass
class _Stats:
    attempts: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class Dispatcher(LeasingWorker):
    """Sends due deliveries; the loop, leasing and wake-ups are app/services/background.py's."""

    name = "webhooks"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], config: DispatcherConfig) -> None:
        super().__init__(
            sessionmaker,
            poll_interval=config.poll_interval,
            max_in_flight=config.max_in_flight,
            housekeeping_every=config.housekeeping_every,
            stop_grace=config.timeout,
        )
        self.config = config
        self.pools = ReceiverPools(config.max_in_flight, config.timeout)
        self.stats = _Stats()
        self._outcomes: asyncio.Queue[tuple[RecordedAttempt, str | None, asyncio.Future[None]]] = asyncio.Queue()
        self._recorder: asyncio.Task[None] | None = None
        # Each phase of an attempt (connect, write, read, wait for a connection) within the timeout;
        # the attempt as a whole too (asyncio.timeout around it).
        self._timeouts = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), config.timeout)}

    async def close(self) -> None:
        if self._recorder is not None:
            self._recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recorder
        await self.pools.close()

    # --- recording: attempts finishing together are written together -------------------

    async def _record(self, attempt: RecordedAttempt, disable: str | None) -> None:
        """Hand the outcome to the recorder and wait until it is committed."""
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_batches())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._outcomes.put((attempt, disable, done))
        await done

    async def _record_batches(self) -> None:
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty() and len(batch) < 500:
                batch.append(self._outcomes.get_nowait())
            try:
                await self._write_patiently([a for a, _, _ in batch], {a.endpoint_id: d for a, d, _ in batch if d})
            except Exception as exc:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _write_patiently(self, attempts: list[RecordedAttempt], disable: dict[Any, str]) -> None:
        """Record, trying again for up to half the lease margin: an outcome that is not recorded
        is sent again when its lease runs out, so a slow or briefly unreachable database
        would otherwise turn into duplicate deliveries."""
        deadline = time.monotonic() + self.config.lease_margin / 2
        pause = 0.1
        while True:
            try:
                await self._write(attempts, disable)
                return
            except Exception:
                if time.monotonic() + pause > deadline:
                    raise
                self.log.warning("webhook attempts not recorded yet; trying again", attempts=len(attempts))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    async def _write(self, attempts: list[RecordedAttempt], disable: dict[Any, str]) -> None:
        now = utcnow()
        uow = UnitOfWork(self.sessionmaker)
        try:
            async with uow:
                await uow.webhooks.record_attempts(attempts)
                for endpoint_id, reason in sorted(disable.items()):
                    await uow.webhooks.disable_endpoint(endpoint_id, reason, now)
                await uow.commit()
        finally:
            await uow.close()

    # --- what the shared loop calls ----------------------------------------------------

    async def claim(self, uow: UnitOfWork, limit: int) -> list[Any]:
        now = utcnow()
        rows = await uow.webhooks.claim_due(now=now, lease_until=now + self.config.lease, limit=limit)
        await uow.commit()
        return rows

    async def handle(self, row: Any) -> None:
        await self._attempt(row)

    def describe(self, row: Any) -> dict[str, Any]:
        return {"delivery_id": str(row.id)}

    async def housekeeping(self) -> None:
        uow = UnitOfWork(self.sessionmaker)
        try:
            async with uow:
                oldest = await uow.webhooks.oldest_due()
                now = utcnow()
                WEBHOOK_QUEUE_LAG.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
                pruned = await uow.webhooks.prune_succeeded(now - self.config.prune_after)
                parked = await uow.webhooks.park_unsendable(now)
                if pruned or parked:
                    await uow.commit()
        finally:
            await uow.close()
        await self.pools.close_idle()

    # --- one attempt ---------------------------------------------------------------

    async def _attempt(self, row: Any) -> None:
        now = utcnow()
        body = payload_bytes(row)
        timestamp = int(now.timestamp())
        message_id = str(row.event_id)
        secrets = signing_secrets(row.secret, row.previous_secret, row.previous_secret_until, now)
        headers = {
            "user-agent": USER_AGENT,
            "content-type": "application/json",
            "accept-encoding": "identity",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, message_id, timestamp, body),
        }
        status_code: int | None = None
        retry_after: float | None = None
        answer: str | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            target = parse_target(row.url, allow_private=self.config.allow_private)
            addresses = await resolve(target.host, target.port)
            ensure_addresses_allowed(addresses, allow_private=self.config.allow_private)
            request = httpx.Request("POST", _url(row.url), content=body, headers=headers, extensions=self._timeouts)
            async with self.pools.transport(target) as transport, asyncio.timeout(self.config.timeout):
                response = await transport.handle_async_request(request)
                try:
                    status_code = response.status_code
                    retry_after = parse_retry_after(response.headers.get("retry-after"), now)
                    answer = await _read_prefix(response, RESPONSE_BODY_LIMIT)
                finally:
                    await response.aclose()
        except WebhookUrlNotAllowed as exc:
            error = f"URL not allowed: {exc.fields[0].msg if exc.fields else exc.detail}"
        except TimeoutError:
            error = f"no answer within {self.config.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = int((time.perf_counter() - started) * 1000)
        if status_code is not None and not 200 <= status_code < 300:
            error = f"HTTP {status_code}" + (" (redirects are not followed)" if 300 <= status_code < 400 else "")
        result = AttemptResult(status_code, retry_after)
        step = after_attempt(
            result, row.attempts + 1, now, schedule=self.config.schedule, failing_since=row.failing_since
        )
        recorded = RecordedAttempt(
            delivery_id=row.id,
            endpoint_id=row.endpoint_id,
            attempted_at=now,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            body=answer,
            status=step.status,
            next_attempt_at=step.next_attempt_at,
            succeeded=result.succeeded,
        )
        await self._record(recorded, step.disable.value if step.disable else None)
        outcome = "retrying" if step.status == DeliveryStatus.pending else step.status.value
        WEBHOOK_DELIVERIES.labels(outcome).inc()
        self.stats.attempts += 1
        self.stats.by_outcome[outcome] = self.stats.by_outcome.get(outcome, 0) + 1
        self.log.info(
            "webhook attempt",
            delivery_id=str(row.id),
            endpoint_id=str(row.endpoint_id),
            event_type=row.event_type,
            attempt=row.attempts + 1,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            outcome=outcome,
            disabled=step.disable.value if step.disable else None,
        )


def payload_bytes(row: Any) -> bytes:
    """The delivery body: ``{type, timestamp, data}``, data being the event as the feed shows it."""
    if row.payload is not None:  # a ping: no event row
        return to_json(row.payload)
    event = {
        "id": row.event_id,
        "seq": row.e_seq,
        "type": row.e_type,
        "actor_id": row.e_actor_id,
        "deal_id": row.e_deal_id,
        "subject_type": row.e_subject_type,
        "subject_id": row.e_subject_id,
        "data": row.e_data,
        "occurred_at": row.e_occurred_at,
    }
    return to_json({"type": row.e_type, "timestamp": row.e_occurred_at, "data": event})


@functools.lru_cache(maxsize=4096)
def _url(url: str) -> httpx.URL:
    """An endpoint's URL as httpx holds it, parsed once rather than for every attempt."""
    return httpx.URL(url)


async def _read_prefix(response: httpx.Response, limit: int) -> str:
    """At most ``limit`` bytes of the answer; a huge body is cut off, never held in memory."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk[: limit - len(kept)]
        if len(kept) >= limit:
            break
    return kept.decode("utf-8", "replace")
