"""Reads outside any transaction: the read-only sibling of the unit of work.

A hot read is one statement that authenticates the key, applies the visibility rule and returns
what the response renders. It needs no transaction, so it runs on a connection in autocommit:
no BEGIN/ROLLBACK round trips, no session and no identity map. Services reach these reads
through ``reads.<repository>``, as they reach writes through ``uow.<repository>``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.engine import autocommit
from app.db.repositories.reads import DealListing, DealReads, MemberReads, OrganizationReads
from app.db.repositories.tasks import TaskListing, TaskReads

__all__ = ["DealListing", "Reads", "TaskListing"]


class Reads:
    """One per application: it holds the engine, nothing per request."""

    def __init__(self, engine: AsyncEngine) -> None:
        engine = autocommit(engine)
        self.deals = DealReads(engine)
        self.members = MemberReads(engine)
        self.organizations = OrganizationReads(engine)
        self.tasks = TaskReads(engine)
