"""The rate limiter's arithmetic and its per-worker store, on a clock the test moves."""

from __future__ import annotations

from limits import RateLimitItemPerSecond
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from app.middleware.rate_limit import LocalStorage, Policy, _address, _cost, budget_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_policy_keeps_the_sustained_rate_and_at_least_the_burst() -> None:
    assert Policy.of(50, 100) == Policy(quota=100, window=2)
    assert Policy.of(2, 20) == Policy(quota=20, window=10)
    assert Policy.of(30, 100) == Policy(quota=120, window=4)  # windows are whole seconds
    assert Policy.of(1000, 100) == Policy(quota=1000, window=1)


async def test_the_previous_window_fades_out_over_the_current_one() -> None:
    clock, policy = Clock(), Policy(quota=10, window=10)
    storage = LocalStorage(clock)
    limiter, item = SlidingWindowCounterRateLimiter(storage), RateLimitItemPerSecond(10, 10)

    async def hit(cost: int = 1) -> bool:
        return await limiter.hit(item, "k", cost=cost)

    async def left(cost: int = 1):  # type: ignore[no-untyped-def]
        return budget_of(True, await storage.get_sliding_window(item.key_for("k"), 10), policy, cost)

    assert [await hit() for _ in range(11)] == [True] * 10 + [False]
    assert (await left()).remaining == 0
    assert (await left()).reset == 11  # the window must end before anything fades
    clock.now += 10  # a new window: the previous one still counts in full
    assert not await hit()
    clock.now += 5  # half faded
    assert (await left()).remaining == 5
    assert (await left(cost=8)).retry_after == 3  # 8 fit once the 5 left fade below 3, just after 2 s
    assert await hit(cost=5)
    assert not await hit()
    clock.now += 20  # two windows idle: a fresh start
    assert (await left()).remaining == 10
    assert [await hit() for _ in range(10)] == [True] * 10


async def test_idle_keys_are_dropped_as_others_arrive() -> None:
    clock = Clock()
    storage = LocalStorage(clock)
    for n in range(1000):
        await storage.acquire_sliding_window_entry(f"k{n}", 10, 2)
    assert len(storage.windows) == 1000
    clock.now += 4
    await storage.acquire_sliding_window_entry("new", 10, 2)
    assert list(storage.windows) == ["new"]


async def test_a_cost_above_the_quota_never_fits() -> None:
    assert not await LocalStorage().acquire_sliding_window_entry("k", 10, 2, amount=11)


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert _address({"client": ("2001:db8:1:2:aaaa::1", 1)}) == "2001:db8:1:2::/64"
    assert _address({"client": ("2001:db8:1:2:bbbb::7", 1)}) == "2001:db8:1:2::/64"
    assert _address({"client": ("192.0.2.7", 1)}) == "192.0.2.7"
    assert _address({"client": None}) == "unknown"


def test_batch_upsert_and_analytics_cost_more() -> None:
    assert _cost({"path": "/v1/deals/batch-upsert", "method": "POST"}) == 10
    assert _cost({"path": "/v1/analytics/coaching", "method": "GET"}) == 10
    assert _cost({"path": "/v1/deals", "method": "POST"}) == 1
