"""UUIDv7 identifiers."""

from __future__ import annotations

import os
import time
import uuid

from app.domain import ids
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


def test_unique_across_many_buffers() -> None:
    # The random bytes come from the OS a buffer at a time: ids stay unique across refills.
    ids = [uuid7() for _ in range(5000)]
    assert len({u.int & ((1 << 74) - 1) for u in ids}) == 5000


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    uuid7()  # the parent holds random bytes not handed out yet
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next ids, through the pipe
        os.close(read)
        os.write(write, b"".join(uuid7().bytes for _ in range(100)))
        os._exit(0)
    os.close(write)
    received = b""
    while chunk := os.read(read, 4096):
        received += chunk
    os.close(read)
    os.waitpid(child, 0)
    childs = {received[n : n + 16] for n in range(0, len(received), 16)}
    parents = {uuid7().bytes for _ in range(100)}
    assert len(childs) == 100
    # The time part may match (same millisecond); the random part never does.
    assert not {b[6:] for b in childs} & {b[6:] for b in parents}


def test_the_random_bits_go_where_rfc_9562_puts_them(monkeypatch) -> None:
    """The 80 random bits of an id: the first 12 are rand_a (after the version), the other 62
    rand_b (after the variant), under the 48 bits of Unix milliseconds."""
    random_bytes = bytes(range(215, 255)) * 103  # one 4 KiB read: 409 ids of 10 bytes
    monkeypatch.setattr(ids, "_buffer", b"")
    monkeypatch.setattr(ids.os, "urandom", lambda n: random_bytes[:n])
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_764_000_000_123_456_789)
    for n in range(3):
        rand = int.from_bytes(random_bytes[10 * n : 10 * n + 10], "big")
        expected = (
            (1_764_000_000_123 << 80)
            | (0x7 << 76)
            | (((rand >> 62) & 0xFFF) << 64)
            | (0b10 << 62)
            | (rand & (2**62 - 1))
        )
        made = uuid7()
        assert made == uuid.UUID(int=expected) and str(made) == str(uuid.UUID(int=expected))
        assert type(made) is uuid.UUID and made.is_safe is uuid.SafeUUID.unknown
