"""The inbox applier: applies the events CRMs sent (app/services/crm_inbox.py) to deals. It runs
inside every `dealcoach serve` worker (unless `DEALCOACH_INBOX_APPLIER=off`) and in
`dealcoach webhooks`, on the loop the webhook dispatcher uses (app/services/background.py): any
number of appliers share the inbox, each event is applied once, and one CRM object's events are
applied in the order they arrived."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.integrations import InboxOutcome
from app.services.background import LeasingWorker
from app.services.crm_inbox import DealState, apply_event, apply_upserts, read_state, upserts
from app.services.hubspot_api import CrmUnavailable, HubSpotClient
from app.settings import Settings

# An event that keeps failing for no rule's reason (a bug, a database error) is tried again after
# 1, 2, 4, ... seconds, up to this many times; then it is rejected as `apply_failed`.
MAX_ATTEMPTS = 8
# An event whose CRM does not answer (down, rate-limited) waits 1, 2, 4, ... seconds, at most this
# long, or what the CRM's Retry-After says; it stays pending however long that lasts.
MAX_CRM_BACKOFF = dt.timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ApplierConfig:
    poll_interval: float = 0.25
    max_in_flight: int = 8
    # Events applied together, in one transaction (set-based: app/services/deal_batch.py).
    events_per_task: int = 50
    lease: dt.timedelta = dt.timedelta(seconds=60)
    housekeeping_every: float = 5.0
    hubspot_api_url: str = "https://api.hubapi.com"

    @classmethod
    def from_settings(cls, settings: Settings) -> ApplierConfig:
        return cls(poll_interval=settings.inbox_poll_interval, hubspot_api_url=settings.hubspot_api_url)


class InboxApplier(LeasingWorker):
    name = "inbox"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], config: ApplierConfig | None = None) -> None:
        config = config or ApplierConfig()
        super().__init__(
            sessionmaker,
            poll_interval=config.poll_interval,
            max_in_flight=config.max_in_flight,
            housekeeping_every=config.housekeeping_every,
            stop_grace=config.lease.total_seconds() / 4,
            rows_per_task=config.events_per_task,
        )
        self.config = config
        self.applied = 0
        self.hubspot = HubSpotClient(config.hubspot_api_url)

    async def close(self) -> None:
        await self.hubspot.close()

    async def housekeeping(self) -> None:
        """Park the events held behind a retry out of the claims' way."""
        uow = UnitOfWork(self.sessionmaker)
        try:
            async with uow:
                if await uow.integrations.park_held(utcnow()):
                    await uow.commit()
        finally:
            await uow.close()

    async def claim(self, uow: UnitOfWork, limit: int) -> list[Any]:
        now = utcnow()
        ids = await uow.integrations.claim_due(now=now, lease_until=now + self.config.lease, limit=limit)
        await uow.commit()
        if not ids:
            return []
        return await uow.integrations.apply_inputs(ids)

    def describe(self, row: Any) -> dict[str, Any]:
        return {"inbound_event_id": str(row.id), "provider": row.provider}

    async def handle_many(self, rows: Sequence[Any]) -> None:
        """Read what the events say (HubSpot's from its API, all at once), then apply the upserts
        of each integration together, and the rest (deletions, deals gone from the CRM) one by
        one. Should applying together fail for no rule's reason, each event is applied alone."""
        read = await asyncio.gather(*(self._read(row) for row in rows))
        together: dict[Any, list[tuple[Any, DealState]]] = defaultdict(list)
        alone: list[tuple[Any, DealState]] = []
        for row, state in zip(rows, read, strict=True):
            if state is None:
                continue
            if upserts(row, state):
                together[row.integration_id].append((row, state))
            else:
                alone.append((row, state))
        for events in together.values():
            uow = UnitOfWork(self.sessionmaker)
            try:
                applied = await apply_upserts(uow, events)
                self.applied += applied  # not `+= await`: that reads the count before awaiting
            except Exception:
                self.log.warning("events not applied together; applying each alone", exc_info=True)
                alone.extend(events)
            finally:
                await uow.close()
        for row, state in alone:
            await self._apply_alone(row, state)

    async def handle(self, row: Any) -> None:
        state = await self._read(row)
        if state is not None:
            await self._apply_alone(row, state)

    async def _read(self, row: Any) -> DealState | None:
        """The state the event applies (before any transaction: no lock is held while a CRM answers);
        None when its CRM does not answer (the event stays pending)."""
        try:
            return await read_state(row, self.hubspot)
        except CrmUnavailable as exc:
            self.log.warning("CRM unavailable; the event stays pending", detail=exc.detail, **self.describe(row))
            await self._when_crm_answers(row, exc)
            return None

    async def _apply_alone(self, row: Any, state: DealState) -> None:
        uow = UnitOfWork(self.sessionmaker)
        try:
            if await apply_event(uow, row, state):
                self.applied += 1
        except Exception:
            self.log.exception("inbound event not applied; trying again later", **self.describe(row))
            await self._later(row)
        finally:
            await uow.close()

    async def _later(self, row: Any) -> None:
        uow = UnitOfWork(self.sessionmaker)
        try:
            async with uow:
                now = utcnow()
                if row.attempts + 1 >= MAX_ATTEMPTS:
                    problem = {"code": "apply_failed", "detail": "The event could not be applied; see the logs."}
                    await uow.integrations.finish(row.id, InboxOutcome.rejected, now=now, problem=problem)
                else:
                    await uow.integrations.retry_later(row.id, at=now + dt.timedelta(seconds=2**row.attempts))
                await uow.commit()
        finally:
            await uow.close()

    async def _when_crm_answers(self, row: Any, exc: CrmUnavailable) -> None:
        """Try again after Retry-After, or a growing backoff; the event is never given up on."""
        backoff = min(dt.timedelta(seconds=2 ** min(row.attempts, 20)), MAX_CRM_BACKOFF)
        delay = backoff if exc.retry_after is None else dt.timedelta(seconds=max(exc.retry_after, 1.0))
        uow = UnitOfWork(self.sessionmaker)
        try:
            async with uow:
                problem = {"code": "crm_unavailable", "detail": exc.detail[:500]}
                await uow.integrations.retry_later(row.id, at=utcnow() + delay, problem=problem)
                await uow.commit()
        finally:
            await uow.close()
