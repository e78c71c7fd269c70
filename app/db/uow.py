"""One unit of work per request: one session, rolled back unless committed, and the
repositories bound to it. Services reach the database only through ``uow.<repository>``
and the few session operations below; they never touch the session itself."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.db.repositories.analytics import AnalyticsRepository
from app.db.repositories.api_keys import ApiKeyRepository
from app.db.repositories.approvals import ApprovalRepository
from app.db.repositories.assignments import AssignmentRepository
from app.db.repositories.calls import CallRepository
from app.db.repositories.catalogs import CatalogRepository
from app.db.repositories.coaching import CoachingRepository
from app.db.repositories.commitments import CommitmentRepository
from app.db.repositories.deal_writes import DealWrites
from app.db.repositories.deals import DealRepository
from app.db.repositories.development import DevelopmentRepository
from app.db.repositories.events import EventRepository
from app.db.repositories.integrations import IntegrationRepository
from app.db.repositories.involvement import InvolvementRepository
from app.db.repositories.members import MemberRepository
from app.db.repositories.organizations import OrganizationRepository
from app.db.repositories.reviews import ReviewRepository
from app.db.repositories.strategy import StrategyRepository
from app.db.repositories.webhooks import WebhookRepository
from app.domain.errors import DomainError

Row = TypeVar("Row")


class UnitOfWork:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, within: AsyncConnection | None = None
    ) -> None:
        """``within``: a connection whose transaction is already open (an idempotent POST's, see
        app/middleware/idempotency.py). The unit of work then runs in a savepoint of it: its commit
        releases the savepoint and its rollback undoes only its own writes; the transaction's owner
        commits the whole."""
        if within is None:
            self.session: AsyncSession = sessionmaker()
        else:
            self.session = sessionmaker(bind=within, join_transaction_mode="create_savepoint")
        self._committed = False
        session = self.session
        self.analytics = AnalyticsRepository(session)
        self.api_keys = ApiKeyRepository(session)
        self.approvals = ApprovalRepository(session)
        self.assignments = AssignmentRepository(session)
        self.calls = CallRepository(session)
        self.catalogs = CatalogRepository(session)
        self.coaching = CoachingRepository(session)
        self.commitments = CommitmentRepository(session)
        self.deals = DealRepository(session)
        # The one-statement deal creation: outside the session, on its engine (or in ``within``).
        self.deal_writes = DealWrites(sessionmaker.kw["bind"], within)
        self.development = DevelopmentRepository(session)
        self.events = EventRepository(session)
        self.integrations = IntegrationRepository(session)
        self.involvement = InvolvementRepository(session)
        self.members = MemberRepository(session)
        self.organizations = OrganizationRepository(session)
        self.reviews = ReviewRepository(session)
        self.strategy = StrategyRepository(session)
        self.webhooks = WebhookRepository(session)

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            # Detach what was loaded first, so a caller may still render it (a no-op
            # update returns the row as it was); rolling back would expire it.
            self.session.expunge_all()
            await self.session.rollback()
        self._committed = False

    def add(self, row: Any) -> None:
        """Stage a new row; it is written at the next flush."""
        self.session.add(row)

    def add_all(self, rows: Iterable[Any]) -> None:
        self.session.add_all(rows)

    async def get(self, model: type[Row], id: Any) -> Row | None:
        """A row by primary key (from this unit of work's identity map when already loaded)."""
        return await self.session.get(model, id)

    async def commit(self) -> None:
        await self.session.commit()
        self._committed = True

    async def flush(self, *, conflict: DomainError | None = None) -> None:
        """Write pending changes; a unique-constraint race becomes ``conflict`` when given."""
        try:
            await self.session.flush()
        except IntegrityError:
            if conflict is None:
                raise
            raise conflict from None

    async def close(self) -> None:
        await self.session.close()
