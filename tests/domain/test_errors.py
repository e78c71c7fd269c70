"""The error tree: stable, unique codes."""

from __future__ import annotations

import inspect
import re

import pytest

from app.domain import errors
from app.domain.errors import DomainError

ERRORS = [
    obj
    for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, DomainError) and obj.__module__ == errors.__name__
]
CONCRETE = [cls for cls in ERRORS if cls is not DomainError]
CODES = {cls.code: cls for cls in ERRORS}

API_MD_CODES = [
    "not_found",
    "unauthenticated",
    "forbidden",
    "invalid_cursor",
    "version_conflict",
    "idempotency_key_reused",
    "idempotency_in_progress",
    "database_unavailable",
    "invalid_reporting_line",
    "email_taken",
    "code_taken",
    "precondition_required",
    "held_in_future",
]


def test_found_the_error_tree() -> None:
    assert len(CONCRETE) >= len(API_MD_CODES)


def test_every_error_has_its_own_code() -> None:
    codes = [cls.code for cls in ERRORS]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    assert not duplicates


@pytest.mark.parametrize("cls", CONCRETE, ids=lambda c: c.__name__)
def test_code_is_snake_case_and_defined_on_the_class(cls: type[DomainError]) -> None:
    assert "code" in vars(cls), f"{cls.__name__} inherits its code"
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", cls.code)
    assert "title" in vars(cls) and cls.title.strip()


@pytest.mark.parametrize("code", API_MD_CODES)
def test_codes_named_in_api_md_exist(code: str) -> None:
    assert code in CODES


def test_detail_defaults_to_title_and_extra_is_kept() -> None:
    err = errors.NotFound()
    assert err.detail == errors.NotFound.title
    assert str(err) == err.detail
    err = errors.UnknownSkill("bad", unknown=["x"])
    assert err.detail == "bad" and str(err) == "bad"
    assert err.extra == {"unknown": ["x"]}
    assert isinstance(err, errors.RuleViolation)
