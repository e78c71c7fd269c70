"""One unit of work per request: one session, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.errors import DomainError


class UnitOfWork:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.session: AsyncSession = sessionmaker()
        self._committed = False

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
