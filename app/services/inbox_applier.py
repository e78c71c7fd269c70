"""The inbox applier: applies the events CRMs sent (app/services/crm_inbox.py) to deals. It runs
inside every `dealcoach serve` worker (unless `DEALCOACH_INBOX_APPLIER=off`) and in
`dealcoach webhooks`, on the loop the webhook dispatcher uses (app/services/background.py): any
number of appliers share the inbox, each event is applied once, and one CRM object's events are
applied in the order they arrived."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.integrations import InboxOutcome
from app.services.background import LeasingWorker
from app.services.crm_inbox import apply_event, read_state
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
        )
        self.config = config
        self.applied = 0
        self.hubspot = HubSpotClient(config.hubspot_api_url)

    async def close(self) -> None:
        await self.hubspot.close()

    async def claim(self, uow: UnitOfWork, limit: int) -> list[Any]:
        now = utcnow()
        ids = await uow.integrations.claim_due(now=now, lease_until=now + self.config.lease, limit=limit)
        await uow.commit()
        if not ids:
            return []
        return await uow.integrations.apply_inputs(ids)

    def describe(self, row: Any) -> dict[str, Any]:
        return {"inbound_event_id": str(row.id), "provider": row.provider}

    async def handle(self, row: Any) -> None:
        try:
            state = await read_state(row, self.hubspot)  # before the transaction: no lock held on the CRM
        except CrmUnavailable as exc:
            self.log.warning("CRM unavailable; the event stays pending", detail=exc.detail, **self.describe(row))
            await self._when_crm_answers(row, exc)
            return
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
