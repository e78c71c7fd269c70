"""Opaque keyset cursors, sealed for their listing and organisation (app/http/cursors.py)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from app.domain.errors import InvalidCursor
from app.http.cursors import MAX_CURSOR_LENGTH, Cursors

ORG = uuid.UUID("01900000-0000-7000-8000-000000000001")
OTHER_ORG = uuid.UUID("01900000-0000-7000-8000-000000000002")
CURSORS = Cursors("a test secret of some length")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sealed(key: Any, listing: str = "deals", org: uuid.UUID = ORG) -> str:
    """Any JSON value as the key, sealed the way the codec seals keys."""
    payload = json.dumps(key, separators=(",", ":")).encode()
    return f"{b64(payload)}.{b64(CURSORS._mac(org, listing, payload))}"


@pytest.mark.parametrize(
    "key",
    [
        ["2024-01-01T00:00:00Z", "0190d7a8-0000-7000-8000-000000000000"],
        [0],
        [-5, "x"],
        [""],
        ["naïve ünïcode ✓", 2**70],
        [],
    ],
)
def test_round_trip(key: list[Any]) -> None:
    cursor = CURSORS.encode(ORG, "deals", key)
    assert CURSORS.decode(ORG, "deals", cursor, len(key)) == key
    bound = CURSORS.for_organization(ORG)
    assert bound.decode("deals", bound.encode("deals", key), len(key)) == key


def test_cursor_is_url_safe_unpadded_and_opaque() -> None:
    cursor = CURSORS.encode(ORG, "deals", ["???>>>~~~", 10**20])
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert "deals" not in base64.urlsafe_b64decode(cursor.partition(".")[0] + "==").decode()


def test_the_longest_key_we_issue_fits_well_within_the_bound() -> None:
    cursor = CURSORS.encode(ORG, "calls", ["2026-11-03T14:00:00.123456+00:00", str(uuid.uuid4())])
    assert len(cursor) < MAX_CURSOR_LENGTH // 3


def test_another_listing_or_organisation_refuses_it() -> None:
    cursor = CURSORS.encode(ORG, "members", ["x"])
    with pytest.raises(InvalidCursor):
        CURSORS.decode(ORG, "deals", cursor, 1)
    with pytest.raises(InvalidCursor):
        CURSORS.decode(OTHER_ORG, "members", cursor, 1)
    with pytest.raises(InvalidCursor):
        CURSORS.for_organization(OTHER_ORG).decode("members", cursor, 1)


def test_another_secret_refuses_it() -> None:
    cursor = CURSORS.encode(ORG, "deals", ["x"])
    with pytest.raises(InvalidCursor):
        Cursors("another deployment's secret").decode(ORG, "deals", cursor, 1)


def test_every_single_character_change_is_refused() -> None:
    cursor = CURSORS.encode(ORG, "deals", ["0190d7a8-0000-7000-8000-000000000000"])
    for i, char in enumerate(cursor):
        for other in {"A", "b", "-", "_", "."} - {char}:
            tampered = cursor[:i] + other + cursor[i + 1 :]
            with pytest.raises(InvalidCursor):
                CURSORS.decode(ORG, "deals", tampered, 1)


def test_an_edited_key_with_the_old_seal_is_refused() -> None:
    cursor = CURSORS.encode(ORG, "deals", ["0190d7a8-0000-7000-8000-000000000000"])
    forged = b64(b'["0190d7a8-0000-7000-8000-00000000ffff"]') + "." + cursor.partition(".")[2]
    with pytest.raises(InvalidCursor):
        CURSORS.decode(ORG, "deals", forged, 1)


@pytest.mark.parametrize("length", [MAX_CURSOR_LENGTH + 1, 10_000, 1_000_000])
def test_over_long_cursors_are_refused_whatever_the_length(length: int) -> None:
    with pytest.raises(InvalidCursor):
        CURSORS.decode(ORG, "deals", "a" * length, 1)
    padded = sealed(["x" * length])
    with pytest.raises(InvalidCursor):
        CURSORS.decode(ORG, "deals", padded, 1)


@pytest.mark.parametrize(
    "cursor",
    ["", ".", "a", "a.", ".a", "!!!!", "abcde", "é", "%%%", "not a cursor at all", "a.b.c", "YQ.YQ", "YQ==.YQ"],
)
def test_malformed_cursors(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        CURSORS.decode(ORG, "deals", cursor, 1)


@pytest.mark.parametrize("arity", [0, 1, 3])
def test_wrong_arity(arity: int) -> None:
    with pytest.raises(InvalidCursor):
        CURSORS.decode(ORG, "deals", CURSORS.encode(ORG, "deals", ["x", 1]), arity)


@pytest.mark.parametrize("key", [None, 1, "x", {"0": 1}, [1.5], [None], [[1]], [{"a": 1}], [True], [False]])
def test_a_sealed_key_must_be_a_list_of_str_or_int(key: Any) -> None:
    with pytest.raises(InvalidCursor):
        CURSORS.decode(ORG, "deals", sealed(key), 1)


def test_a_sealed_payload_that_is_not_json_is_refused_cleanly() -> None:
    for payload in (b"\xff\xfe garbage", b"[" * 5000):
        cursor = f"{b64(payload)}.{b64(CURSORS._mac(ORG, 'deals', payload))}"
        with pytest.raises(InvalidCursor):
            CURSORS.decode(ORG, "deals", cursor, 1)


def test_invalid_cursor_error_code() -> None:
    with pytest.raises(InvalidCursor) as info:
        CURSORS.decode(ORG, "deals", "@@@", 1)
    assert info.value.code == "invalid_cursor"
