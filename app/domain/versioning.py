"""Optimistic concurrency: a write names the version it read, or it is refused."""

from __future__ import annotations

from collections.abc import Collection

from app.domain.errors import VersionConflict


def ensure_version(current: int, expected: Collection[int] | None) -> None:
    """A write with If-Match applies only to a version the caller saw."""
    if expected is not None and current not in expected:
        raise VersionConflict(f"The resource is at version {current}; If-Match names another.")
