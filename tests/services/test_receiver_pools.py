"""The webhook dispatcher's connection pools: per receiver origin, small, as many as needed."""

from __future__ import annotations

import contextlib

import pytest

from app.domain.webhooks import Target
from app.services import webhook_dispatcher
from app.services.webhook_dispatcher import CONNECTIONS_PER_POOL, ReceiverPools

A = Target("https", "hooks.example.com", 443)
B = Target("https", "bi.example.net", 443)


async def test_attempts_take_the_least_busy_pool_of_their_origin_and_add_one_when_all_are_full() -> None:
    pools = ReceiverPools(max_in_flight=3 * CONNECTIONS_PER_POOL, timeout=5)
    try:
        async with contextlib.AsyncExitStack() as attempts:
            transports = [
                await attempts.enter_async_context(pools.transport(A)) for _ in range(2 * CONNECTIONS_PER_POOL + 1)
            ]
            assert len(pools.origins[A]) == 3  # two full pools, and a third for the next attempt
            assert len(set(map(id, transports))) == 3
            assert [p.busy for p in pools.origins[A]] == [CONNECTIONS_PER_POOL, CONNECTIONS_PER_POOL, 1]
            # Another origin never shares a pool (or a connection) with this one.
            other = await attempts.enter_async_context(pools.transport(B))
            assert other not in transports and len(pools.origins[B]) == 1
            # At the limit, the least busy pool is taken, however busy.
            for _ in range(CONNECTIONS_PER_POOL):
                await attempts.enter_async_context(pools.transport(A))
            assert len(pools.origins[A]) == 3 and sum(p.busy for p in pools.origins[A]) == 3 * CONNECTIONS_PER_POOL + 1
        assert [p.busy for p in pools.origins[A]] == [0, 0, 0]
        # A pool that is free again is used again: no new one.
        async with pools.transport(A) as again:
            assert again in transports
        assert len(pools.origins[A]) == 3
    finally:
        await pools.close()


async def test_the_pools_of_an_origin_with_no_attempt_for_a_while_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    pools = ReceiverPools(max_in_flight=8, timeout=5)
    try:
        async with pools.transport(A), pools.transport(B):
            pass
        await pools.close_idle()
        assert set(pools.origins) == {A, B}  # used just now
        pool_a = pools.origins[A][0]
        monkeypatch.setattr(webhook_dispatcher, "IDLE_ORIGIN_SECONDS", 0.0)
        async with pools.transport(B):
            await pools.close_idle()  # B is busy: kept
        assert set(pools.origins) == {B} and pool_a.closed and not pools.origins[B][0].closed
    finally:
        await pools.close()
