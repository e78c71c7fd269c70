"""Opaque keyset cursors: the sort key of the last row of a page, tagged with its listing."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from app.domain.errors import InvalidCursor


def encode_cursor(listing: str, key: list[Any]) -> str:
    """An opaque cursor that resumes ``listing`` after the row whose sort key is ``key``."""
    raw = json.dumps([listing, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str, arity: int) -> list[Any]:
    """The sort key in ``cursor``; a malformed cursor or one from another listing is refused."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise InvalidCursor() from None
    if tag != listing or not isinstance(key, list) or len(key) != arity:
        raise InvalidCursor()
    if any(not isinstance(part, (str, int)) or isinstance(part, bool) for part in key):
        raise InvalidCursor()
    return key


class Cursors:
    """The cursor codec handed to services with each page request."""

    def encode(self, listing: str, key: list[Any]) -> str:
        return encode_cursor(listing, key)

    def decode(self, listing: str, cursor: str, arity: int) -> list[Any]:
        return decode_cursor(listing, cursor, arity)


CURSORS = Cursors()
