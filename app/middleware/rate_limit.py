"""Rate limits: a budget per API key (or sign-in token), and per client address for requests
without one.

It runs before authentication and before anything reads the body, and does the same small work
for every request: no database query and no signature check (a key or token is known by the hash
of the bearer token), one hit on the budget and one read of it. A request without a key- or
token-shaped bearer token spends its address's budget. A request with one spends that key's (or
token's) budget; if the app then answers 401, the address pays too, and an address whose budget
invalid credentials have spent is refused whatever it sends next, until the budget has room
again — so random keys and forged tokens are slowed like anything else.

A sign-in token's budget is the token's own, by the hash of all of it: claims read before the
signature is checked (`iss`, `sub`) could be forged to spend someone else's budget. A browser
behind a shared address (an office's) thus does not share that address's budget; a new token
(the provider issues one every few minutes) starts a new budget, which is no more than a client
could have by asking the provider for tokens.

A CRM's webhooks (HubSpot's, Pipedrive's, Salesforce's Outbound Messages) spend a budget of their
own per sending address, `inbound`, larger than a client's: a CRM sends one request per changed
deal from a few addresses, and a bulk edit there must not be refused here. They carry no API key,
so a webhook the CRM's credentials do not sign (401) spends the address's ordinary budget too, as an
invalid key does: forged webhooks are slowed like guessed keys.

The `limits` library has no token bucket; its sliding-window counter comes closest: RATE units a
second with bursts of BURST becomes QUOTA = RATE x ceil(BURST / RATE) units per WINDOW =
ceil(BURST / RATE) seconds (limits counts whole seconds), the count of the previous window fading
out over the current one. A quiet client may send QUOTA at once and RATE a second sustained, as
from a bucket; unlike a bucket, a client that spent a whole burst waits up to one WINDOW before
the previous window starts to fade.

The response fields follow draft-ietf-httpapi-ratelimit-headers-11 (May 2026):
`RateLimit-Policy: "key";q=100;w=2` and `RateLimit: "key";r=37;t=0`, where `r` is what is left
and `t` the whole seconds until one more unit fits (0 while some are left).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage, Storage
from limits.aio.storage.base import SlidingWindowCounterSupport
from limits.errors import StorageError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.domain.api_keys import hash_key, looks_like_key
from app.domain.oidc import looks_like_token
from app.errors import problem
from app.settings import Settings

if TYPE_CHECKING:
    import redis.asyncio

log = structlog.get_logger("dealcoach.rate_limit")

# Probes and scrapes must keep working while a client is throttled.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# CRM webhooks in (app/routers/integrations.py): their own budget per address.
INBOUND_PATHS = frozenset(
    {
        "/v1/integrations/hubspot/webhooks",
        "/v1/integrations/pipedrive/webhooks",
        "/v1/integrations/salesforce/outbound-messages",
    }
)
# A batch upsert writes up to 500 deals; an analytics request scans an organisation's reviews.
EXPENSIVE_COST = 10
# After the shared store failed, requests pass unlimited for this long instead of each waiting on it.
STORE_RETRY_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Policy:
    quota: int  # units per window
    window: int  # seconds

    @classmethod
    def of(cls, per_second: int, burst: int) -> Policy:
        window = max(1, math.ceil(burst / per_second))
        return cls(quota=per_second * window, window=window)


@dataclass(frozen=True, slots=True)
class Budget:
    allowed: bool
    remaining: int
    reset: int  # whole seconds until one more unit fits: the draft's effective window `t`
    retry_after: int  # whole seconds until this request's cost fits


def budget_of(allowed: bool, window: tuple[int, float, int, float], policy: Policy, cost: int) -> Budget:
    """What is left of a budget, from limits' sliding-window state (previous count, previous TTL,
    current count, current TTL), under limits' rule floor(previous x left / window) + current <= quota."""
    previous, previous_ttl, current, current_ttl = window
    left = previous_ttl if previous else max(0.0, current_ttl - policy.window)  # of the current window
    used = math.floor(previous * left / policy.window) + current
    return Budget(
        allowed=allowed,
        remaining=max(0, policy.quota - used),
        reset=_whole_seconds(_wait(previous, left, current, policy, 1)),
        retry_after=max(1, _whole_seconds(_wait(previous, left, current, policy, cost))),
    )


def _wait(previous: int, left: float, current: int, policy: Policy, cost: int) -> float:
    """Seconds until `cost` more units fit, as the previous window's count fades out."""
    room = policy.quota - current - cost
    if room >= 0:
        return max(0.0, left - (room + 1) * policy.window / previous) if previous else 0.0
    # The current window must end first; then its count fades out the same way.
    room = policy.quota - cost
    return left + max(0.0, policy.window - (room + 1) * policy.window / current)


def _whole_seconds(seconds: float) -> int:
    """Whole seconds strictly after `seconds` (a unit fits just after its wait), or 0 for no wait."""
    return int(seconds) + 1 if seconds > 0 else 0


class LocalStorage(Storage, SlidingWindowCounterSupport):
    """This worker's budgets, for limits' sliding-window counter.

    limits' MemoryStorage rescans every key it holds on each hit (+170 us a request with 20,000
    keys, measured), so a flood from many addresses would slow every request. Here a key is
    [window start, previous count, current count, window]; its windows start at its first hit, as
    in limits' Redis scripts; keys are kept in order of last use and dropped from the front once
    two windows old, so a hit costs the same however many keys there are.
    """

    STORAGE_SCHEME = None

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.windows: dict[str, list[float]] = {}

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def _advance(self, key: str, expiry: int, now: float) -> list[float]:
        entry = self.windows.pop(key, None)  # re-inserted last: the dict stays in order of last use
        if entry is None or now - entry[0] >= 2 * expiry:
            entry = [now, 0, 0, expiry]
        elif now - entry[0] >= expiry:
            entry = [entry[0] + expiry, entry[2], 0, expiry]
        self.windows[key] = entry
        while True:
            oldest_key = next(iter(self.windows))
            oldest = self.windows[oldest_key]
            if now - oldest[0] < 2 * oldest[3]:
                return entry
            del self.windows[oldest_key]

    async def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = self.clock()
        start, previous, current, _ = entry = self._advance(key, expiry, now)
        if math.floor(previous * (start + expiry - now) / expiry) + current + amount > limit:
            return False
        entry[2] = current + amount
        return True

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        if key not in self.windows:
            return 0, 0.0, 0, 0.0
        now = self.clock()
        start, previous, current, _ = self._advance(key, expiry, now)
        left = start + expiry - now
        return int(previous), left if previous else 0.0, int(current), left + expiry

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        self.windows.pop(key, None)

    async def clear(self, key: str) -> None:
        self.windows.pop(key, None)

    async def reset(self) -> int | None:
        count = len(self.windows)
        self.windows.clear()
        return count

    async def check(self) -> bool:
        return True

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("only the sliding-window counter is kept here")

    async def get(self, key: str) -> int:
        raise NotImplementedError("only the sliding-window counter is kept here")

    async def get_expiry(self, key: str) -> float:
        raise NotImplementedError("only the sliding-window counter is kept here")


class RateLimits:
    """The budgets of one app and where they are kept: this worker's memory, or Redis."""

    def __init__(
        self, per_second: int, burst: int, storage_url: str | None = None, *, inbound: tuple[int, int] | None = None
    ) -> None:
        self.policy = Policy.of(per_second, burst)
        self.inbound_policy = Policy.of(*inbound) if inbound else self.policy
        self.items = {
            policy: RateLimitItemPerSecond(policy.quota, policy.window) for policy in (self.policy, self.inbound_policy)
        }
        self.pool: redis.asyncio.ConnectionPool | None = None
        self.storage: RedisStorage | LocalStorage
        if storage_url:
            import redis.asyncio  # only then: it takes a noticeable part of the app's import time

            self.pool = redis.asyncio.ConnectionPool.from_url(
                storage_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
            )
            self.storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                key_prefix="dealcoach:rate_limit",
                wrap_exceptions=True,
                connection_pool=self.pool,  # type: ignore[arg-type]  # documented; typed narrowly by limits
            )
        else:
            self.storage = LocalStorage()
        self.penalised: dict[str, float] = {}  # address -> monotonic time its invalid keys may try again
        self.store_down_until = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits | None:
        if settings.rate_limit_per_second == 0:
            return None
        return cls(
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            settings.rate_limit_storage_url,
            inbound=(settings.rate_limit_inbound_per_second, settings.rate_limit_inbound_burst),
        )

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()

    async def charge(self, identity: str, cost: int, policy: Policy | None = None) -> Budget | None:
        """Spend `cost` units of `identity`'s budget (under `policy`, the clients' by default);
        None when the store cannot be reached (fail open)."""
        now = time.monotonic()
        if now < self.store_down_until:
            return None
        policy = policy or self.policy
        cost, key = min(cost, policy.quota), self.items[policy].key_for(identity)
        try:
            # limits' SlidingWindowCounterRateLimiter.hit, with the key built once for both calls
            allowed = await self.storage.acquire_sliding_window_entry(key, policy.quota, policy.window, cost)
            window = await self.storage.get_sliding_window(key, policy.window)
        except (StorageError, OSError) as exc:
            self.store_down_until = now + STORE_RETRY_SECONDS
            log.warning("rate limit store unreachable: not limiting for a while", error=repr(exc))
            return None
        return budget_of(allowed, window, policy, cost)

    async def charge_invalid_key(self, address: str) -> Budget | None:
        """The app refused a key: its address pays, and is refused outright once it cannot."""
        spent = await self.charge("address:" + address, 1)
        if spent is not None and not spent.allowed:
            self.penalised.pop(address, None)  # re-inserted last: the dict stays in order of expiry
            self.penalised[address] = time.monotonic() + spent.retry_after
        return spent

    def penalty(self, address: str) -> Budget | None:
        """A refusal for an address whose budget invalid keys have spent, or None."""
        now = time.monotonic()
        while self.penalised:
            oldest = next(iter(self.penalised))
            if self.penalised[oldest] > now:
                break
            del self.penalised[oldest]
        until = self.penalised.get(address)
        if until is None:
            return None
        wait = _whole_seconds(until - now)
        return Budget(allowed=False, remaining=0, reset=wait, retry_after=max(1, wait))


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits
        self.policy_fields = {
            name: (b"ratelimit-policy", f'"{name}";q={policy.quota};w={policy.window}'.encode())
            for name, policy in (
                ("key", limits.policy),
                ("token", limits.policy),
                ("address", limits.policy),
                ("inbound", limits.inbound_policy),
            )
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        token, name = _bearer_token(scope)
        address = ""
        inbound = scope["path"] in INBOUND_PATHS
        if inbound or token is not None:
            if self.limits.penalised:
                address = _address(scope)
                refused = self.limits.penalty(address)
                if refused is not None:
                    await self._refuse(scope, receive, send, "address", refused)
                    return
        if inbound:
            name, address = "inbound", address or _address(scope)
            spent = await self.limits.charge("inbound:" + address, 1, self.limits.inbound_policy)
        elif token is None:
            name, address = "address", _address(scope)
            spent = await self.limits.charge("address:" + address, _cost(scope))
        else:
            spent = await self.limits.charge(f"{name}:{hash_key(token)[:32]}", _cost(scope))
        if spent is None:
            await self.app(scope, receive, send)
            return
        if not spent.allowed:
            await self._refuse(scope, receive, send, name, spent)
            return

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                fields = self._fields(name, spent)
                if (token is not None or inbound) and message["status"] == 401:
                    paid = await self.limits.charge_invalid_key(address or _address(scope))
                    if paid is not None:
                        fields = self._fields("address", paid)
                message["headers"] = [*message.get("headers", []), *fields]
            await send(message)

        await self.app(scope, receive, send_with_fields)

    def _fields(self, name: str, spent: Budget) -> list[tuple[bytes, bytes]]:
        return [self.policy_fields[name], (b"ratelimit", f'"{name}";r={spent.remaining};t={spent.reset}'.encode())]

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, name: str, spent: Budget) -> None:
        whose = {"key": "this API key", "token": "this token", "inbound": "this address's webhooks"}.get(
            name, "this address"
        )
        response = problem(
            429,
            "rate_limited",
            f"Too many requests for {whose}; retry after {spent.retry_after} s.",
            scope["path"],
            headers={"Retry-After": str(spent.retry_after)}
            | {field.decode(): value.decode() for field, value in self._fields(name, spent)},
        )
        await response(scope, receive, send)


def _bearer_token(scope: Scope) -> tuple[str | None, str]:
    """The bearer token and whose budget it spends (`key` or `token`) when it has the shape of an
    API key or of a sign-in token; anything else counts as none."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer":
                return None, ""
            if looks_like_key(token):
                return token, "key"
            if looks_like_token(token):
                return token, "token"
            return None, ""
    return None, ""


def _address(scope: Scope) -> str:
    client = scope.get("client")
    host: str = client[0] if client else "unknown"
    if ":" in host:  # an IPv6 subscriber usually holds a whole /64
        try:
            return f"{ipaddress.IPv6Network((host, 64), strict=False).network_address}/64"
        except ValueError:
            pass
    return host


def _cost(scope: Scope) -> int:
    path: str = scope["path"]
    if path.startswith("/v1/analytics/") or (path == "/v1/deals/batch-upsert" and scope["method"] == "POST"):
        return EXPENSIVE_COST
    return 1
