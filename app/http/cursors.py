"""Opaque keyset cursors: the sort key of a page's last row, sealed for its listing and organisation.

A cursor is ``base64url(key as JSON) "." base64url(HMAC-SHA256(secret, org "\\n" listing "\\n" key)[:16])``.
The MAC makes it tamper-evident and binds it to the listing and the organisation that issued it:
a cursor edited by hand, taken from another listing or brought from another organisation is
refused (422 invalid_cursor) before its key is even parsed. The secret is the setting
``DEALCOACH_SECRET_KEY``; every worker and instance must share it, or a cursor issued by one is
refused by another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from typing import Any

from app.domain.errors import InvalidCursor

# Longer than any cursor we issue (a timestamp and a UUID seal into about 120 characters);
# anything longer is refused unread, whatever its length.
MAX_CURSOR_LENGTH = 512
_MAC_BYTES = 16  # 128 bits: truncated HMAC-SHA256
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):  # b64decode would skip stray characters instead
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor() from None
    if _b64(raw) != text:  # the unused bits of a last character: one cursor, one spelling
        raise InvalidCursor()
    return raw


class Cursors:
    """The cursor codec of a deployment, keyed with its secret."""

    def __init__(self, secret: str | bytes) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else secret

    def for_organization(self, organization_id: uuid.UUID) -> OrganizationCursors:
        """The codec a page request of this organisation carries."""
        return OrganizationCursors(self, organization_id)

    def _mac(self, organization_id: uuid.UUID, listing: str, payload: bytes) -> bytes:
        message = f"{organization_id}\n{listing}\n".encode() + payload
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, organization_id: uuid.UUID, listing: str, key: list[Any]) -> str:
        """An opaque cursor resuming ``listing`` after the row whose sort key is ``key``."""
        payload = json.dumps(key, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(organization_id, listing, payload))}"

    def decode(self, organization_id: uuid.UUID, listing: str, cursor: str, arity: int) -> list[Any]:
        """The sort key sealed in ``cursor``; anything we did not issue for this listing and
        organisation, or whose key does not have ``arity`` str/int parts, is refused."""
        payload, mac = _opened(cursor)
        if not hmac.compare_digest(mac, self._mac(organization_id, listing, payload)):
            raise InvalidCursor()
        return _key(payload, arity)

    def peek(self, cursor: str, arity: int) -> list[Any]:
        """The sort key in ``cursor`` before its seal is checked, for a read that learns the
        caller's organisation in the same statement it resumes with (one round trip). Whoever
        peeks answers nothing the key selected until ``decode`` for that organisation accepts
        the cursor; a malformed cursor is refused here already."""
        payload, _mac = _opened(cursor)
        return _key(payload, arity)


def _opened(cursor: str) -> tuple[bytes, bytes]:
    """A cursor's payload and seal, as bytes; refused when it is not shaped like one of ours."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor()
    body, dot, seal = cursor.partition(".")
    if not dot:
        raise InvalidCursor()
    return _unb64(body), _unb64(seal)


def _key(payload: bytes, arity: int) -> list[Any]:
    try:
        key = json.loads(payload)
    except (ValueError, RecursionError):  # sealed by us, so only after a change of format
        raise InvalidCursor() from None
    if not isinstance(key, list) or len(key) != arity:
        raise InvalidCursor()
    if any(not isinstance(part, (str, int)) or isinstance(part, bool) for part in key):
        raise InvalidCursor()
    return key


class OrganizationCursors:
    """The codec bound to one organisation: what ``PageRequest.codec`` holds."""

    __slots__ = ("_cursors", "_organization_id")

    def __init__(self, cursors: Cursors, organization_id: uuid.UUID) -> None:
        self._cursors = cursors
        self._organization_id = organization_id

    def encode(self, listing: str, key: list[Any]) -> str:
        return self._cursors.encode(self._organization_id, listing, key)

    def decode(self, listing: str, cursor: str, arity: int) -> list[Any]:
        return self._cursors.decode(self._organization_id, listing, cursor, arity)
