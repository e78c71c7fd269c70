"""One unit of work per request: one session, rolled back unless committed, and the
repositories bound to it. Services reach the database only through ``uow.<repository>``
and the few session operations below; they never touch the session itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property
from types import TracebackType
from typing import Any, Generic, TypeVar

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
from app.db.repositories.idempotency import DeferredClaim
from app.db.repositories.integrations import IntegrationRepository
from app.db.repositories.involvement import InvolvementRepository
from app.db.repositories.members import MemberRepository
from app.db.repositories.organizations import OrganizationRepository
from app.db.repositories.reviews import ReviewRepository
from app.db.repositories.strategy import StrategyRepository
from app.db.repositories.webhooks import WebhookRepository
from app.domain.errors import DomainError

Row = TypeVar("Row")
Repo = TypeVar("Repo")


class _Repository(Generic[Repo]):
    """A unit of work's repository, made on first use (most requests use one or two of them)."""

    def __init__(self, kind: Callable[[AsyncSession], Repo]) -> None:
        self.kind = kind

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, uow: UnitOfWork, owner: type | None = None) -> Repo:
        repository = self.kind(uow.session)
        uow.__dict__[self.name] = repository  # the next reads find it on the instance
        return repository


class UnitOfWork:
    """``within``: a connection whose transaction is already open (an idempotent POST's, see
    app/middleware/idempotency.py). The unit of work then runs in a savepoint of it: its commit
    releases the savepoint and its rollback undoes only its own writes; the transaction's owner
    commits the whole.

    ``claim``: an idempotent POST's claim made after it has run (app/db/repositories/idempotency.py
    ``DeferredClaim``). Its one-statement new deal is handed to the claim; entering the unit of
    work (``async with uow``) makes the claim first, and the unit of work then runs in its
    transaction, as in ``within``'s.

    The session and the repositories are made when first used: a write that takes the
    one-statement path (``deal_writes``) opens no session at all."""

    analytics = _Repository(AnalyticsRepository)
    api_keys = _Repository(ApiKeyRepository)
    approvals = _Repository(ApprovalRepository)
    assignments = _Repository(AssignmentRepository)
    calls = _Repository(CallRepository)
    catalogs = _Repository(CatalogRepository)
    coaching = _Repository(CoachingRepository)
    commitments = _Repository(CommitmentRepository)
    deals = _Repository(DealRepository)
    development = _Repository(DevelopmentRepository)
    events = _Repository(EventRepository)
    integrations = _Repository(IntegrationRepository)
    involvement = _Repository(InvolvementRepository)
    members = _Repository(MemberRepository)
    organizations = _Repository(OrganizationRepository)
    reviews = _Repository(ReviewRepository)
    strategy = _Repository(StrategyRepository)
    webhooks = _Repository(WebhookRepository)

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        within: AsyncConnection | None = None,
        claim: DeferredClaim | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._within = within
        self._claim = claim
        self._committed = False

    @cached_property
    def session(self) -> AsyncSession:
        within = self._within
        if self._claim is not None:
            within = self._claim.connection
            if within is None:
                raise RuntimeError(
                    "an idempotent request's unit of work is entered (async with uow) before its session"
                )
        if within is None:
            return self._sessionmaker()
        return self._sessionmaker(bind=within, join_transaction_mode="create_savepoint")

    @cached_property
    def deal_writes(self) -> DealWrites:
        """The one-statement deal writes: outside the session, on its engine (or in ``within``, or
        handed to ``claim``)."""
        return DealWrites(self._sessionmaker.kw["bind"], self._within, self._claim)

    @property
    def _opened(self) -> bool:
        return "session" in self.__dict__

    async def __aenter__(self) -> UnitOfWork:
        if self._claim is not None and self._claim.connection is None:
            await self._claim.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed and self._opened:
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
        if self._opened:
            await self.session.close()
