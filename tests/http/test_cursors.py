"""Opaque keyset cursors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.domain.errors import InvalidCursor
from app.http.cursors import decode_cursor, encode_cursor


def raw_cursor(value: Any) -> str:
    """A cursor built by hand from any JSON value, encoded the way encode_cursor does."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


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
    cursor = encode_cursor("deals", key)
    assert decode_cursor("deals", cursor, len(key)) == key


def test_cursor_is_url_safe_and_unpadded() -> None:
    cursor = encode_cursor("deals", ["???>>>~~~", 10**20])
    assert "=" not in cursor
    assert "+" not in cursor and "/" not in cursor


@pytest.mark.parametrize("cursor", ["", "!!!!", "a", "abcde", "é", "%%%", "not a cursor at all"])
def test_malformed_base64_or_json(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("deals", cursor, 1)


def test_base64_of_non_json() -> None:
    cursor = base64.urlsafe_b64encode(b"\xff\xfe garbage").decode()
    with pytest.raises(InvalidCursor):
        decode_cursor("deals", cursor, 1)


@pytest.mark.parametrize(
    "value",
    [
        None,
        1,
        "deals",
        "ab",  # a two-character string unpacks into two parts
        [],
        ["deals"],
        ["deals", [1], "extra"],
        {"deals": [1]},
        {"a": 1, "b": 2},  # a two-key object unpacks into its keys
        ["deals", "1"],  # key is not a list
        ["deals", {"0": 1}],
        ["deals", None],
    ],
)
def test_json_that_is_not_a_tag_key_pair(value: Any) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("deals", raw_cursor(value), 1)


@pytest.mark.parametrize("tag", ["members", "Deals", "", None, 1, ["deals"]])
def test_foreign_cursor_is_refused(tag: Any) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("deals", raw_cursor([tag, [1]]), 1)


def test_cursor_from_another_listing_is_refused() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("deals", encode_cursor("members", ["x", 1]), 2)


@pytest.mark.parametrize("arity", [0, 1, 3])
def test_wrong_arity(arity: int) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("deals", encode_cursor("deals", ["x", 1]), arity)


@pytest.mark.parametrize("part", [1.5, None, [1], {"a": 1}, True, False])
def test_parts_must_be_str_or_int_and_not_bool(part: Any) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("deals", raw_cursor(["deals", ["ok", part]]), 2)


def test_invalid_cursor_error_code() -> None:
    with pytest.raises(InvalidCursor) as info:
        decode_cursor("deals", "@@@", 1)
    assert info.value.code == "invalid_cursor"


def test_deeply_nested_cursor_is_refused_cleanly() -> None:
    cursor = base64.urlsafe_b64encode(b"[" * 2000).decode()
    with pytest.raises(InvalidCursor):
        decode_cursor("deals", cursor, 1)
