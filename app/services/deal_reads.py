"""Reading deals: one deal, and the listing, each in one statement with the caller's credential.

The statement authenticates the caller (an API key, or a verified token's member), applies the
visibility rule and returns the rows with their external references, so a read costs one round
trip and no transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, NamedTuple

from app.db.reads import DealListing
from app.domain.deals import STAGES_BY_STATUS, Stage
from app.domain.errors import InvalidCursor, NotFound
from app.schemas.deals import ListFilters
from app.services.auth import Caller, authenticate, unknown
from app.services.pagination import CallerPageRequest, PageResult, build_page

LISTING = "deals"


class ExternalRefRow(NamedTuple):
    source: str
    external_id: str


class DealRow(NamedTuple):
    """A deal as its row reads, with its external references (and its review's id)."""

    deal: Any

    @property
    def ref_documents(self) -> list[dict[str, str]]:
        """The references as the API renders them: the statement's JSON array is that already
        (``refs_json``: {source, external_id}, in order), passed on as it was decoded."""
        return self.deal.external_refs or []

    @property
    def review_id(self) -> Any:
        return self.deal.review_id


def refs_of(row: Any) -> list[ExternalRefRow]:
    """A hot statement's ``external_refs`` (a JSON array) as rows."""
    return [ExternalRefRow(r["source"], r["external_id"]) for r in row.external_refs or ()]


def _view(row: Any) -> DealRow:
    return DealRow(row)


async def read_deal(caller: Caller, deal_id: uuid.UUID) -> DealRow:
    """The deal if the caller's member may see it; otherwise it does not exist (404)."""
    row = await caller.reads.deals.one(caller.credential, deal_id)
    if row is None:
        raise unknown(caller)
    if row.id is None:
        raise NotFound("No deal with this id.")
    return _view(row)


async def list_deals(caller: Caller, page: CallerPageRequest, filters: ListFilters) -> PageResult[DealRow]:
    """Deals the caller's member can see, in id order, filtered. The cursor is opened before the
    statement and its seal checked against the organisation the statement found the caller in,
    before anything it selected is answered."""
    try:
        after = page.after()
    except InvalidCursor:
        await authenticate(caller)  # an unknown caller is 401, whatever cursor it sent
        raise
    stages: list[Stage] | None = None
    if filters.status is not None:
        stages = list(STAGES_BY_STATUS[filters.status])
    if filters.stage is not None:
        stages = [filters.stage] if stages is None or filters.stage in stages else []
    listing = DealListing(
        after=after,
        limit=page.limit + 1,
        owner_id=filters.owner_id,
        stages=stages,
        closed_from=_day_start(filters.closed_from),
        closed_before=_day_start(filters.closed_to + dt.timedelta(days=1)) if filters.closed_to else None,
        updated_since=filters.updated_since,
        q=filters.q,
    )
    found = await caller.reads.deals.page(caller.credential, listing)
    if found is None:
        raise unknown(caller)
    organization_id, rows = found
    result = build_page(LISTING, page.bound(LISTING, organization_id), rows)
    return PageResult([_view(row) for row in result.items], result.next_cursor)


def _day_start(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
