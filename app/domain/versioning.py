"""Optimistic concurrency: a write names the version it read, or it is refused."""

from __future__ import annotations

from app.domain.errors import VersionConflict


def ensure_version(current: int, expected: int | None) -> None:
    """A write with If-Match applies only to the version the caller saw."""
    if expected is not None and expected != current:
        raise VersionConflict(f"The resource is at version {current}, not {expected}.")


def parse_if_match(header: str | None) -> int | None:
    """The version in an If-Match header (`"3"`, `W/"3"`); `*` or no header means any.

    A value that is no version of ours can match nothing, so it is returned as -1.
    """
    if header is None:
        return None
    value = header.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int(value) if value.isdigit() and len(value) < 12 else -1
