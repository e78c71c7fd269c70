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


@dataclass(frozen=True, slots=True)
class PageResult(Generic[T]):
    items: list[T]
    next_cursor: str | None


def after_id(listing: str, page: PageRequest) -> uuid.UUID | None:
    """The id a listing ordered by id resumes after."""
    key = page.key(listing, 1)
    if key is None:
        return None
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
