"""Optimistic concurrency: a write names the version it read, or it is refused."""

from __future__ import annotations

from collections.abc import Collection

from app.domain.errors import PreconditionRequired, VersionConflict


def ensure_version(current: int, expected: Collection[int] | None) -> None:
    """A write with If-Match applies only to a version the caller saw."""
    if expected is not None and current not in expected:
        raise VersionConflict(f"The resource is at version {current}; If-Match names another.")


def ensure_precondition(current: int, expected: Collection[int] | None, *, given: bool) -> None:
    """A whole-document replace names the version it replaces (If-Match, or `*` to replace any
    knowingly): a client that never read the document would otherwise erase what others wrote."""
    if not given:
        raise PreconditionRequired(
            f'This replaces the whole document: send If-Match with the ETag you read (now "{current}"), '
            "or If-Match: * to replace whatever is there."
        )
    ensure_version(current, expected)
