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


# The parts of a UUIDv7 around its 48-bit time: the version, the variant, and where the 80 random
# bits go (12 as rand_a above the variant, 62 as rand_b below it).
_VERSION_AND_VARIANT = 0x7 << 76 | 0b10 << 62
_RAND_A = 0xFFF << 64
_RAND_B = 0x3FFF_FFFF_FFFF_FFFF
# A UUID made from its integer as uuid.UUID(int=...) makes it, without the checks of the
# constructor's other forms: a batch upsert of 500 deals makes some 1,500 ids.
_new_uuid = object.__new__
_set_field = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def uuid7() -> uuid.UUID:
    """A random UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    global _buffer, _offset
    ms = time.time_ns() // 1_000_000
    start = _offset
    _offset = end = start + _ID_BYTES
    if end > len(_buffer):
        _buffer, start, _offset = os.urandom(_BUFFER_SIZE), 0, _ID_BYTES
        end = _ID_BYTES
    rand = int.from_bytes(_buffer[start:end], "big")  # 80 random bits from the OS's generator
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | (rand << 2) & _RAND_A | rand & _RAND_B | _VERSION_AND_VARIANT
    made = _new_uuid(uuid.UUID)
    _set_field(made, "int", value)
    _set_field(made, "is_safe", _SAFE_UNKNOWN)
    return made
