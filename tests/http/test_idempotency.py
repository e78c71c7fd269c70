"""Idempotent POSTs: request fingerprints and what a retry gets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from app.domain.errors import IdempotencyInProgress, IdempotencyKeyReused
from app.http.idempotency import Decision, decide, fingerprint

NOW = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
LOCK = 30


@dataclass
class Stored:
    fingerprint: str
    completed: bool
    locked_at: dt.datetime


BASE = ("POST", "/v1/deals", "a=1", b'{"name": "Acme", "amount": 10}')


def test_fingerprint_is_deterministic_hex() -> None:
    fp = fingerprint(*BASE)
    assert fp == fingerprint(*BASE)
    assert len(fp) == 64 and int(fp, 16) >= 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"amount":10,"name":"Acme"}',
        b'{\n  "amount": 10,\n  "name": "Acme"\n}\n',
        b'  {"name":"Acme","amount":10}  ',
    ],
)
def test_fingerprint_ignores_key_order_and_whitespace(body: bytes) -> None:
    assert fingerprint("POST", "/v1/deals", "a=1", body) == fingerprint(*BASE)


def test_fingerprint_ignores_nested_key_order() -> None:
    a = fingerprint("POST", "/p", "", b'{"x": {"b": 1, "a": [1, {"d": 2, "c": 3}]}}')
    b = fingerprint("POST", "/p", "", b'{"x":{"a":[1,{"c":3,"d":2}],"b":1}}')
    assert a == b


@pytest.mark.parametrize(
    "other",
    [
        ("PUT", *BASE[1:]),
        ("POST", "/v1/members", *BASE[2:]),
        ("POST", "/v1/deals", "a=2", BASE[3]),
        ("POST", "/v1/deals", "", BASE[3]),
        (*BASE[:3], b'{"name": "Acme", "amount": 11}'),
        (*BASE[:3], b'{"name": "Acme"}'),
        (*BASE[:3], b'[10, "Acme"]'),
        (*BASE[:3], b""),
    ],
)
def test_fingerprint_differs_by_method_path_query_and_body(other: tuple[str, str, str, bytes]) -> None:
    assert fingerprint(*other) != fingerprint(*BASE)


def test_fingerprint_array_order_matters() -> None:
    assert fingerprint("POST", "/p", "", b"[1, 2]") != fingerprint("POST", "/p", "", b"[2, 1]")


def test_fingerprint_parts_are_length_delimited() -> None:
    # Moving bytes between parts must not produce the same fingerprint.
    assert fingerprint("POST", "/ab", "c", b"") != fingerprint("POST", "/a", "bc", b"")
    assert fingerprint("POST", "/a", "", b"") != fingerprint("POS", "T/a", "", b"")


def test_non_json_body_counts_byte_for_byte() -> None:
    assert fingerprint("POST", "/p", "", b"a=1&b=2") == fingerprint("POST", "/p", "", b"a=1&b=2")
    assert fingerprint("POST", "/p", "", b"a=1&b=2") != fingerprint("POST", "/p", "", b"b=2&a=1")
    assert fingerprint("POST", "/p", "", b"not json ") != fingerprint("POST", "/p", "", b"not json")
    assert fingerprint("POST", "/p", "", b"\xff\xfe") != fingerprint("POST", "/p", "", b"\xff")


# --- decide -------------------------------------------------------------------


def test_completed_same_fingerprint_replays() -> None:
    stored = Stored("fp", completed=True, locked_at=NOW - dt.timedelta(hours=1))
    assert decide(stored, "fp", now=NOW, lock_seconds=LOCK) is Decision.replay


def test_completed_replays_even_if_recent() -> None:
    stored = Stored("fp", completed=True, locked_at=NOW)
    assert decide(stored, "fp", now=NOW, lock_seconds=LOCK) is Decision.replay


@pytest.mark.parametrize("completed", [True, False])
@pytest.mark.parametrize("age", [0, LOCK - 1, LOCK, LOCK * 100])
def test_different_fingerprint_is_key_reuse(completed: bool, age: int) -> None:
    stored = Stored("fp", completed=completed, locked_at=NOW - dt.timedelta(seconds=age))
    with pytest.raises(IdempotencyKeyReused) as info:
        decide(stored, "other", now=NOW, lock_seconds=LOCK)
    assert info.value.code == "idempotency_key_reused"


@pytest.mark.parametrize("age", [0.0, 1.0, LOCK - 0.001])
def test_fresh_in_progress_is_refused(age: float) -> None:
    stored = Stored("fp", completed=False, locked_at=NOW - dt.timedelta(seconds=age))
    with pytest.raises(IdempotencyInProgress) as info:
        decide(stored, "fp", now=NOW, lock_seconds=LOCK)
    assert info.value.code == "idempotency_in_progress"


@pytest.mark.parametrize("age", [LOCK, LOCK + 1, 86_400])
def test_stale_in_progress_is_taken_over(age: int) -> None:
    stored = Stored("fp", completed=False, locked_at=NOW - dt.timedelta(seconds=age))
    assert decide(stored, "fp", now=NOW, lock_seconds=LOCK) is Decision.take_over


def test_decide_with_real_fingerprints() -> None:
    fp = fingerprint(*BASE)
    reordered = fingerprint("POST", "/v1/deals", "a=1", b'{"amount":10,"name":"Acme"}')
    stored = Stored(fp, completed=True, locked_at=NOW)
    assert decide(stored, reordered, now=NOW, lock_seconds=LOCK) is Decision.replay
    with pytest.raises(IdempotencyKeyReused):
        decide(stored, fingerprint("POST", "/v1/deals", "a=1", b'{"amount":11}'), now=NOW, lock_seconds=LOCK)


def test_fingerprint_of_deeply_nested_body_does_not_crash() -> None:
    fingerprint("POST", "/p", "", b"[" * 2000)
