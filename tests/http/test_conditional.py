"""Optimistic concurrency: If-Match parsing and version checks."""

from __future__ import annotations

import pytest

from app.domain.errors import PreconditionRequired, VersionConflict
from app.domain.versioning import ensure_precondition, ensure_version
from app.http.conditional import parse_if_match


@pytest.mark.parametrize(
    ("current", "expected"), [(1, None), (1, frozenset({1})), (7, frozenset({7})), (0, None), (4, frozenset({3, 4}))]
)
def test_ensure_version_accepts_matching_or_no_expectation(current: int, expected: frozenset[int] | None) -> None:
    ensure_version(current, expected)


@pytest.mark.parametrize(
    ("current", "expected"), [(2, frozenset({1})), (1, frozenset({2})), (3, frozenset()), (0, frozenset({1, 2}))]
)
def test_ensure_version_refuses_mismatch(current: int, expected: frozenset[int]) -> None:
    with pytest.raises(VersionConflict) as info:
        ensure_version(current, expected)
    assert info.value.code == "version_conflict"
    assert str(current) in info.value.detail


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        (None, None),
        ("*", None),
        ("  *  ", None),
        ('"3"', {3}),
        ('W/"3"', {3}),
        ("3", {3}),
        ('  "42"  ', {42}),
        ('"0"', {0}),
        ('"99999999999"', {99999999999}),  # 11 digits
        ('"3", "4"', {3, 4}),
        ('"3", W/"5", garbage', {3, 5}),
    ],
)
def test_parse_if_match_versions(header: str | None, versions: set[int] | None) -> None:
    assert parse_if_match(header) == (None if versions is None else frozenset(versions))


@pytest.mark.parametrize(
    "header",
    ["garbage", '"abc"', '""', "", '"-1"', '"3.0"', '"1e3"', 'W/"x"', '"999999999999"', "**", '"³"', '"١٢"', '"3'],
)
def test_parse_if_match_garbage_matches_nothing(header: str) -> None:
    assert parse_if_match(header) == frozenset()


def test_garbage_if_match_always_conflicts() -> None:
    with pytest.raises(VersionConflict):
        ensure_version(0, parse_if_match("garbage"))


@pytest.mark.parametrize(
    ("header", "outcome"), [(None, PreconditionRequired), ('"1"', VersionConflict), ('"2"', None), ("*", None)]
)
def test_a_whole_document_replace_requires_if_match(header: str | None, outcome: type[Exception] | None) -> None:
    def check() -> None:
        ensure_precondition(2, parse_if_match(header), given=header is not None)

    if outcome is None:
        check()
    else:
        with pytest.raises(outcome):
            check()
