"""UUIDv7 identifiers."""

from __future__ import annotations

import time
import uuid

from app.domain.ids import uuid7


def test_version_and_variant() -> None:
    for _ in range(100):
        u = uuid7()
        assert isinstance(u, uuid.UUID)
        assert u.version == 7
        assert u.variant == uuid.RFC_4122


def test_timestamp_is_unix_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    u = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= u.int >> 80 <= after


def test_ordered_across_milliseconds() -> None:
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    assert first < second
    assert str(first) < str(second)
    assert first.bytes < second.bytes


def test_unique() -> None:
    assert len({uuid7() for _ in range(1000)}) == 1000
