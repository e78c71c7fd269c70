"""Keyset pages: fetch one row more than asked to know whether another page exists."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.domain.errors import InvalidCursor
from app.domain.pagination import decode_cursor, encode_cursor

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class PageResult(Generic[T]):
    items: list[T]
    next_cursor: str | None


def after_id(listing: str, page: PageRequest) -> uuid.UUID | None:
    """The id a listing ordered by id resumes after."""
    if page.cursor is None:
        return None
    (raw,) = decode_cursor(listing, page.cursor, 1)
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise InvalidCursor() from None


def after_key(listing: str, page: PageRequest, arity: int) -> list[Any] | None:
    return None if page.cursor is None else decode_cursor(listing, page.cursor, arity)


def build_page(
    listing: str, rows: Sequence[T], limit: int, key: Callable[[T], list[Any]] = lambda r: [str(r.id)]  # type: ignore[attr-defined]
) -> PageResult[T]:
    """``rows`` was fetched with ``limit + 1``; the extra row only says a next page exists."""
    items = list(rows[:limit])
    next_cursor = encode_cursor(listing, key(items[-1])) if len(rows) > limit and items else None
    return PageResult(items=items, next_cursor=next_cursor)
