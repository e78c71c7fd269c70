"""UUID version 7 identifiers: time-ordered, so new rows land at the end of indexes."""

from __future__ import annotations

import os
import time
import uuid

# Random bytes are read from the OS 4 KiB at a time (one read serves 409 ids; a batch of 500 deals
# makes some 1,500 ids, and a read per id was 8 % of a batch upsert's CPU). A forked child starts
# with an empty buffer, so no two processes ever hand out the same bytes.
_BUFFER_SIZE = 4096
_ID_BYTES = 10
_buffer = b""
_offset = 0


def _forget_buffer() -> None:
    global _buffer, _offset
    _buffer, _offset = b"", 0


os.register_at_fork(after_in_child=_forget_buffer)


def _random_bits() -> int:
    """80 random bits from the OS's generator."""
    global _buffer, _offset
    if _offset + _ID_BYTES > len(_buffer):
        _buffer, _offset = os.urandom(_BUFFER_SIZE), 0
    start, _offset = _offset, _offset + _ID_BYTES
    return int.from_bytes(_buffer[start:_offset], "big")


# A UUID made from its integer as uuid.UUID(int=...) makes it, without the checks of the
# constructor's other forms: a batch upsert of 500 deals makes some 1,500 ids, and UUID.__init__
# was half the cost of each.
_new_uuid = object.__new__
_set_field = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def uuid7() -> uuid.UUID:
    """A random UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000
    rand = _random_bits()
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b, 62 bits
    made = _new_uuid(uuid.UUID)
    _set_field(made, "int", value)
    _set_field(made, "is_safe", _SAFE_UNKNOWN)
    return made
