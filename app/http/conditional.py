"""Conditional requests: the versions an If-Match header names."""

from __future__ import annotations

from typing import NamedTuple


class IfMatch(NamedTuple):
    """An If-Match header as a write that requires one sees it: whether it was sent at all, and
    the versions it names (None: any, `*`)."""

    given: bool
    versions: frozenset[int] | None


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


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def none_match(header: str, etag: str) -> bool:
    """Whether If-None-Match names this ETag (weak comparison, RFC 9110), or is `*`."""
    if header.strip() == "*":
        return True
    current = _opaque(etag)
    return any(_opaque(tag) == current for tag in header.split(","))
