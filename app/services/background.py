"""What the background workers share (the webhook dispatcher, the CRM inbox applier): a loop that
leases due rows from its table and handles each as a task of its own, at most ``max_in_flight``
at once, until told to stop; a worker that handles rows better together (one transaction for
many) takes them ``rows_per_task`` at a time.

Leasing is the worker's repository's job: a claim marks rows ``leased_until`` in one statement
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of workers in any number of processes
share the work without taking a row twice; SQLite has one writer at a time). A worker killed
mid-way loses nothing: its leases run out and the rows are due again. A worker polls its table
every ``poll_interval`` when idle; ``wake()`` makes it look at once (the process that stored new
work calls it, so work stored by this process waits for no poll).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.uow import UnitOfWork


class LeasingWorker(ABC):
    """A background worker over one table of due rows; subclasses say how to claim and handle them."""

    name = "worker"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        poll_interval: float,
        max_in_flight: int,
        housekeeping_every: float,
        stop_grace: float,
        rows_per_task: int = 1,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.poll_interval = poll_interval
        self.max_in_flight = max_in_flight
        self.rows_per_task = rows_per_task
        self.housekeeping_every = housekeeping_every
        self.stop_grace = stop_grace  # how long a stop waits for the work under way
        self.log = structlog.get_logger(f"dealcoach.{self.name}")
        self._inflight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    # --- what a worker does -------------------------------------------------------------

    @abstractmethod
    async def claim(self, uow: UnitOfWork, limit: int) -> Sequence[Any]:
        """Lease up to ``limit`` due rows in ``uow`` (committed by the caller) and return what
        handling each needs (read after the commit, in the same unit of work)."""

    @abstractmethod
    async def handle(self, row: Any) -> None:
        """Handle one claimed row and record the outcome; an exception leaves the row's lease to
        run out (it is then due again)."""

    async def handle_many(self, rows: Sequence[Any]) -> None:
        """Handle up to ``rows_per_task`` claimed rows in one task; by default one after another."""
        for row in rows:
            await self._handle_safely(row)

    async def housekeeping(self) -> None:
        """Every ``housekeeping_every`` seconds while running: metrics, pruning."""
        return None

    def describe(self, row: Any) -> dict[str, Any]:
        """What the log says about a row whose handling failed."""
        return {"id": str(getattr(row, "id", ""))}

    async def close(self) -> None:
        """Release what the worker holds (clients); the loop has stopped."""
        return None

    # --- the loop -------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due rows now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then wait a little for the work under way (work cut off is not
        lost: its lease runs out and it is taken again)."""
        stopping = asyncio.ensure_future(stop.wait())
        next_housekeeping = 0.0
        try:
            while not stop.is_set():
                claimed = 0
                free = self.max_in_flight - len(self._inflight)
                if free > 0:
                    self._wake.clear()
                    claimed = await self._claim_and_start(free)
                if time.monotonic() >= next_housekeeping:
                    await self._housekeeping_safely()
                    next_housekeeping = time.monotonic() + self.housekeeping_every
                if claimed == 0 or claimed == free:
                    # Idle, or full: wait for the next poll, a wake-up, finished work, or the stop.
                    woken = asyncio.ensure_future(self._wake.wait())
                    waiters: set[asyncio.Future[Any]] = {stopping, woken, *self._inflight}
                    try:
                        await asyncio.wait(waiters, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        woken.cancel()
        finally:
            stopping.cancel()
            if self._inflight:
                await asyncio.wait(self._inflight, timeout=self.stop_grace)
            for task in self._inflight:
                task.cancel()

    async def drain(self, *, timeout: float = 30.0) -> None:
        """Handle everything due now and wait for it (tests and one-off runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = await self._claim_and_start(self.max_in_flight)
            if self._inflight:
                await asyncio.wait(self._inflight)
            elif not started:
                return

    async def _claim_and_start(self, tasks: int) -> int:
        """Claim rows for up to ``tasks`` tasks and start them; how many were started."""
        try:
            rows = await self._claim(tasks * self.rows_per_task)
        except Exception:
            self.log.warning(f"{self.name}: its table is unavailable", exc_info=True)
            await asyncio.sleep(self.poll_interval)
            return 0
        started = 0
        for start in range(0, len(rows), self.rows_per_task):
            chunk = rows[start : start + self.rows_per_task]
            task = asyncio.create_task(self._handle_many_safely(chunk))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            started += 1
        return started

    async def _claim(self, limit: int) -> Sequence[Any]:
        uow = UnitOfWork(self.sessionmaker)
        try:
            async with uow:
                return await self.claim(uow, limit)
        finally:
            await uow.close()

    async def _handle_safely(self, row: Any) -> None:
        try:
            await self.handle(row)
        except asyncio.CancelledError:
            raise
        except Exception:  # the lease runs out and the row is taken again
            self.log.exception(f"{self.name}: a row could not be handled", **self.describe(row))

    async def _handle_many_safely(self, rows: Sequence[Any]) -> None:
        try:
            await self.handle_many(rows)
        except asyncio.CancelledError:
            raise
        except Exception:  # their leases run out and the rows are taken again
            self.log.exception(f"{self.name}: rows could not be handled", ids=[self.describe(row) for row in rows])

    async def _housekeeping_safely(self) -> None:
        try:
            await self.housekeeping()
        except Exception:
            self.log.warning(f"{self.name}: housekeeping failed", exc_info=True)
