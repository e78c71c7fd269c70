"""Optimistic concurrency: a write names the version it read, or it is refused."""

from __future__ import annotations

from collections.abc import Collection

from app.domain.errors import VersionConflict


def ensure_version(current: int, expected: Collection[int] | None) -> None:
    """A write with If-Match applies only to a version the caller saw."""
    if expected is not None and current not in expected:
        raise VersionConflict(f"The resource is at version {current}; If-Match names another.")


def parse_if_match(header: str | None) -> frozenset[int] | None:
    """The versions an If-Match header names (`"3"`, `W/"3"`, `"3", "4"`); None means any
    (no header, or `*`). Tags that are no version of ours match nothing."""
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if len(tag) >= 3 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        if tag.isascii() and tag.isdigit() and len(tag) < 12:  # a bare 3 is accepted too
            versions.add(int(tag))
    return frozenset(versions)
