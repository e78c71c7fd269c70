"""Closed-lost review rules: ISO weeks, due days, who writes what, completion, overdue, medians."""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from app.domain.errors import Forbidden, NotTheReviewer, ReviewCompleted, ReviewIncomplete
from app.domain.members import Actor, MemberRole
from app.domain.reviews import (
    REVIEWER_FIELDS,
    SELLER_FIELDS,
    choose_reviewer,
    closed_range,
    days_to_complete,
    due_on,
    ensure_can_add_leadership_note,
    ensure_can_complete,
    ensure_can_see_loss_analytics,
    ensure_can_see_weekly,
    ensure_can_write,
    ensure_open,
    is_overdue,
    iso_week,
    median,
    missing_for_completion,
    parse_iso_week,
    sees_every_review,
    week_days,
)

R = MemberRole
OWNER = uuid.uuid4()
REVIEWER = uuid.uuid4()


@dataclass
class ReviewStub:
    """A minimal ReviewLike that can be completed."""

    owner_id: uuid.UUID = OWNER
    reviewer_id: uuid.UUID | None = REVIEWER
    status: str = "pending"
    due_on: dt.date = dt.date(2026, 11, 23)
    loss_reason_confirmed: bool = True
    lessons: list[str] = field(default_factory=lambda: ["Reach the economic buyer earlier"])
    seller_reflection: str | None = "I let procurement set the pace."


def actor(role: MemberRole = R.seller, member_id: uuid.UUID | None = None) -> Actor:
    return Actor(
        member_id=member_id or uuid.uuid4(),
        organization_id=uuid.uuid4(),
        role=role,
        manager_id=None,
        api_key_id=uuid.uuid4(),
    )


SELLER = actor(R.seller, OWNER)
THE_REVIEWER = actor(R.manager, REVIEWER)


# --- ISO weeks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "week"),
    [
        (dt.date(2026, 11, 16), "2026-W47"),  # Monday
        (dt.date(2026, 11, 22), "2026-W47"),  # Sunday
        (dt.date(2026, 1, 1), "2026-W01"),  # a Thursday: week 1 of its own year
        (dt.date(2027, 1, 1), "2026-W53"),  # a Friday: the last week of the year before
        (dt.date(2024, 12, 30), "2025-W01"),  # a Monday in December: week 1 of the next year
        (dt.date(1, 1, 1), "0001-W01"),
    ],
)
def test_iso_week_of_a_day(day: dt.date, week: str) -> None:
    assert iso_week(day) == week


def test_iso_week_of_an_instant_is_taken_in_utc() -> None:
    sunday_night_in_new_york = dt.datetime(2026, 11, 22, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert iso_week(sunday_night_in_new_york) == "2026-W48"  # already Monday 01:00 UTC
    assert iso_week(dt.datetime(2026, 11, 22, 23, 59, 59, tzinfo=dt.UTC)) == "2026-W47"


@pytest.mark.parametrize("week", ["2026-W47", "2026-W01", "2026-W53", "2020-W53", "0001-W01", "9999-W52"])
def test_valid_weeks_parse_to_themselves(week: str) -> None:
    assert parse_iso_week(week) == week


@pytest.mark.parametrize(
    "week",
    [
        "2026-W00",
        "2025-W53",
        "2026-W54",
        "2026-W99",
        "0000-W01",
        "2026W47",
        "2026-w47",
        "2026-W4",
        "26-W47",
        "2026-W47 ",
        "",
        "2026-47",
        "２０２６-W47",
    ],
)
def test_invalid_weeks_are_refused(week: str) -> None:
    with pytest.raises(ValueError):
        parse_iso_week(week)


def test_week_days_are_monday_to_sunday() -> None:
    assert week_days("2026-W47") == (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    assert week_days("2026-W53") == (dt.date(2026, 12, 28), dt.date(2027, 1, 3))


# --- dates ----------------------------------------------------------------------


def test_due_on_counts_days_from_the_utc_close_day() -> None:
    assert due_on(dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC), 7) == dt.date(2026, 11, 27)
    late_in_tokyo = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert due_on(late_in_tokyo, 1) == dt.date(2026, 11, 21)  # 23:00 UTC on the 20th


def test_closed_range_is_inclusive_and_open_ended() -> None:
    start, end = closed_range(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert start == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert closed_range(None, None) == (None, None)
    assert closed_range(dt.date.min, dt.date.max) == (dt.datetime(1, 1, 1, tzinfo=dt.UTC), None)


def test_overdue_only_after_the_due_day_and_never_once_completed() -> None:
    review = ReviewStub(due_on=dt.date(2026, 11, 23))
    assert not is_overdue(review, dt.date(2026, 11, 22))
    assert not is_overdue(review, dt.date(2026, 11, 23))
    assert is_overdue(review, dt.date(2026, 11, 24))
    assert not is_overdue(ReviewStub(status="completed", due_on=dt.date(2026, 1, 1)), dt.date(2026, 11, 24))


def test_days_to_complete_is_fractional() -> None:
    closed = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)
    assert days_to_complete(closed, closed + dt.timedelta(days=3, hours=12)) == 3.5
    assert days_to_complete(closed, closed) == 0.0


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([4.0], 4.0),
        ([3.0, 1.0], 2.0),
        ([2.0, 6.5, 4.0], 4.0),
        ([6.5, 2.0, 3.0, 4.0], 3.5),
        ([1, 1, 9, 9], 5.0),
    ],
)
def test_median(values: list[float], expected: float | None) -> None:
    assert median(values) == expected
    if values:
        assert median(values) == statistics.median(values)


# --- the reviewer ---------------------------------------------------------------------


def test_the_owners_manager_reviews_else_a_head_of_sales() -> None:
    manager, hos = uuid.uuid4(), uuid.uuid4()
    assert choose_reviewer(manager, hos) == manager
    assert choose_reviewer(None, hos) == hos
    assert choose_reviewer(None, None) is None


@pytest.mark.parametrize("role", list(MemberRole))
def test_only_leadership_sees_every_review(role: MemberRole) -> None:
    assert sees_every_review(actor(role)) == (role in (R.head_of_sales, R.admin))


# --- who writes what ---------------------------------------------------------------------


def test_the_two_writers_own_disjoint_fields() -> None:
    assert REVIEWER_FIELDS.isdisjoint(SELLER_FIELDS)
    assert SELLER_FIELDS == {"seller_reflection"}


@pytest.mark.parametrize("name", sorted(REVIEWER_FIELDS))
def test_the_reviewer_writes_the_findings(name: str) -> None:
    ensure_can_write(THE_REVIEWER, ReviewStub(), [name])


def test_the_seller_writes_the_reflection() -> None:
    ensure_can_write(SELLER, ReviewStub(), ["seller_reflection"])


@pytest.mark.parametrize("name", sorted(REVIEWER_FIELDS))
def test_the_seller_writes_no_finding(name: str) -> None:
    with pytest.raises(NotTheReviewer) as info:
        ensure_can_write(SELLER, ReviewStub(), ["seller_reflection", name])
    assert info.value.code == "not_the_reviewer" and isinstance(info.value, Forbidden)


def test_the_reviewer_does_not_write_the_sellers_reflection() -> None:
    with pytest.raises(NotTheReviewer):
        ensure_can_write(THE_REVIEWER, ReviewStub(), ["root_cause", "seller_reflection"])


@pytest.mark.parametrize("role", [R.manager, R.head_of_sales, R.admin, R.seller, R.integration])
@pytest.mark.parametrize("name", ["root_cause", "seller_reflection"])
def test_others_write_nothing(role: MemberRole, name: str) -> None:
    with pytest.raises(NotTheReviewer):
        ensure_can_write(actor(role), ReviewStub(), [name])


def test_without_a_reviewer_nobody_writes_the_findings() -> None:
    with pytest.raises(NotTheReviewer):
        ensure_can_write(actor(R.head_of_sales), ReviewStub(reviewer_id=None), ["lessons"])
    ensure_can_write(SELLER, ReviewStub(reviewer_id=None), ["seller_reflection"])


def test_writing_nothing_is_allowed_to_anyone() -> None:
    ensure_can_write(actor(R.admin), ReviewStub(), [])


def test_a_completed_review_is_read_only() -> None:
    ensure_open(ReviewStub())
    with pytest.raises(ReviewCompleted) as info:
        ensure_open(ReviewStub(status="completed"))
    assert info.value.code == "review_completed"


# --- completion ---------------------------------------------------------------------------


def test_the_reviewer_completes_a_ready_review() -> None:
    ensure_can_complete(THE_REVIEWER, ReviewStub())


@pytest.mark.parametrize("who", [SELLER, actor(R.head_of_sales), actor(R.admin), actor(R.manager)])
def test_only_the_reviewer_completes(who: Actor) -> None:
    with pytest.raises(NotTheReviewer):
        ensure_can_complete(who, ReviewStub())


def test_completion_names_everything_missing() -> None:
    empty = ReviewStub(loss_reason_confirmed=False, lessons=[], seller_reflection=None)
    assert missing_for_completion(empty) == ["loss_reason_confirmed", "lessons", "seller_reflection"]
    with pytest.raises(ReviewIncomplete) as info:
        ensure_can_complete(THE_REVIEWER, empty)
    assert info.value.code == "review_incomplete"
    assert info.value.extra == {"missing": ["loss_reason_confirmed", "lessons", "seller_reflection"]}


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"loss_reason_confirmed": False}, ["loss_reason_confirmed"]),
        ({"lessons": []}, ["lessons"]),
        ({"lessons": ["  "]}, ["lessons"]),
        ({"seller_reflection": "   "}, ["seller_reflection"]),
        ({"seller_reflection": None, "lessons": []}, ["lessons", "seller_reflection"]),
    ],
)
def test_each_requirement_is_named(changes: dict[str, object], missing: list[str]) -> None:
    assert missing_for_completion(ReviewStub(**changes)) == missing  # type: ignore[arg-type]


def test_a_completed_review_is_not_completed_again() -> None:
    with pytest.raises(ReviewCompleted):
        ensure_can_complete(THE_REVIEWER, ReviewStub(status="completed"))
    with pytest.raises(NotTheReviewer):  # who comes before state
        ensure_can_complete(SELLER, ReviewStub(status="completed"))


# --- leadership, the weekly view, analytics -----------------------------------------------


@pytest.mark.parametrize("role", list(MemberRole))
def test_only_a_head_of_sales_writes_leadership_notes(role: MemberRole) -> None:
    if role == R.head_of_sales:
        ensure_can_add_leadership_note(actor(role))
        return
    with pytest.raises(Forbidden) as info:
        ensure_can_add_leadership_note(actor(role))
    assert info.value.code == "forbidden"


@pytest.mark.parametrize("check", [ensure_can_see_weekly, ensure_can_see_loss_analytics])
@pytest.mark.parametrize("role", list(MemberRole))
def test_managers_and_leadership_see_weeks_and_analytics(check: Callable[[Actor], None], role: MemberRole) -> None:
    if role in (R.manager, R.head_of_sales, R.admin):
        check(actor(role))
        return
    with pytest.raises(Forbidden):
        check(actor(role))
