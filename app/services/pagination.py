"""Keyset pages: fetch one row more than asked to know whether another page exists.

A page request carries the cursor as the client sent it and the codec that reads and
writes cursors; the codec is an HTTP convention (``app.http.cursors``), handed in by the
router, so services name their listing and sort key and never see the encoding.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from app.domain.errors import InvalidCursor

T = TypeVar("T")


class CursorCodec(Protocol):
    def encode(self, listing: str, key: list[Any]) -> str: ...

    def decode(self, listing: str, cursor: str, arity: int) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None
    codec: CursorCodec

    def key(self, listing: str, arity: int) -> list[Any] | None:
        """The sort key this page resumes after, or None for the first page."""
        return None if self.cursor is None else self.codec.decode(listing, self.cursor, arity)


class SealedCursors(Protocol):
    """The deployment's cursor codec, before the caller's organisation is known."""

    def peek(self, cursor: str, arity: int) -> list[Any]: ...

    def for_organization(self, organization_id: uuid.UUID) -> CursorCodec: ...


@dataclass(frozen=True, slots=True)
class CallerPageRequest:
    """A page request for a read that authenticates the caller in the statement it resumes
    with: the cursor is opened first and its seal checked once the organisation is known."""

    limit: int
    cursor: str | None
    cursors: SealedCursors

    def after(self) -> uuid.UUID | None:
        """The id the listing resumes after, not yet verified (see ``bound``)."""
        key = self.after_key(1)
        return None if key is None else _uuid_of(key)

    def after_key(self, arity: int) -> list[Any] | None:
        """The sort key the listing resumes after, not yet verified (see ``bound``)."""
        return None if self.cursor is None else self.cursors.peek(self.cursor, arity)

    def bound(self, listing: str, organization_id: uuid.UUID, arity: int = 1) -> PageRequest:
        """The page request of the caller's organisation; refuses a cursor not sealed for it."""
        page = PageRequest(self.limit, self.cursor, self.cursors.for_organization(organization_id))
        page.key(listing, arity)
        return page


@dataclass(frozen=True, slots=True)
class PageResult(Generic[T]):
    items: list[T]
    next_cursor: str | None


def after_id(listing: str, page: PageRequest) -> uuid.UUID | None:
    """The id a listing ordered by id resumes after."""
    key = page.key(listing, 1)
    return None if key is None else _uuid_of(key)


def _uuid_of(key: list[Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(key[0]))
    except ValueError:
        raise InvalidCursor() from None


def after_key(listing: str, page: PageRequest, arity: int) -> list[Any] | None:
    return page.key(listing, arity)


def _id_key(row: Any) -> list[Any]:
    return [str(row.id)]


def build_page(
    listing: str,
    page: PageRequest,
    rows: Sequence[T],
    key: Callable[[T], list[Any]] = _id_key,
) -> PageResult[T]:
    """``rows`` was fetched with ``page.limit + 1``; the extra row only says a next page exists."""
    items = list(rows[: page.limit])
    more = len(rows) > page.limit and items
    next_cursor = page.codec.encode(listing, key(items[-1])) if more else None
    return PageResult(items=items, next_cursor=next_cursor)
