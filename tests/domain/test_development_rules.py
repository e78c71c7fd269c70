"""Pure tests for seller development: the trend, windows, and the commitment and visibility rules."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest

from app.domain.development import (
    CommitmentStatus,
    Trend,
    Window,
    can_see_development,
    commitments_from_action_items,
    commitments_from_debrief,
    development_window,
    ensure_can_close_commitment,
    ensure_can_read_feedback,
    ensure_can_see_team_skills,
    ensure_commitment_skills,
    ensure_manager_in_reach,
    ensure_ordered,
    is_overdue,
    skill_trend,
)
from app.domain.errors import CommitmentClosed, Forbidden, MissingFields, OwnerDecides
from app.domain.members import Actor, MemberRole

ORG = uuid.uuid4()
MID = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
BEFORE, AFTER = MID - dt.timedelta(days=10), MID + dt.timedelta(days=10)
EARLY, LATE = MID - dt.timedelta(days=20), MID + dt.timedelta(days=20)


def actor(role: MemberRole = MemberRole.seller, member_id: uuid.UUID | None = None) -> Actor:
    return Actor(member_id or uuid.uuid4(), ORG, role, None, uuid.uuid4())


# --- the trend --------------------------------------------------------------------------

# (first mention, last recognised, last need, needs 1st half, needs 2nd half, conversations 1st, 2nd) -> trend
TRENDS = [
    # new: no mention before the middle of the window, whatever else holds
    ("first seen in the second half", (MID, None, AFTER, 0, 1, 2, 2), Trend.new),
    ("first seen at the middle instant", (MID, LATE, AFTER, 0, 1, 0, 1), Trend.new),
    ("recognised late, but new", (AFTER, LATE, None, 0, 0, 1, 1), Trend.new),
    # improving: recognised after the latest need
    ("recognised after the latest improvement", (EARLY, LATE, AFTER, 2, 1, 2, 2), Trend.improving),
    ("recognised after a need before the window", (EARLY, AFTER, EARLY, 0, 0, 0, 1), Trend.improving),
    ("recognised even though needs rose", (EARLY, LATE, AFTER, 0, 2, 2, 2), Trend.improving),
    # recognition before the latest need does not count
    ("recognised, then asked again", (EARLY, BEFORE, AFTER, 1, 2, 2, 2), Trend.needs_attention),
    ("recognised at the same instant as the need", (EARLY, AFTER, AFTER, 1, 1, 1, 1), Trend.steady),
    ("a strength never asked to improve", (EARLY, LATE, None, 0, 0, 3, 3), Trend.steady),
    # needs per conversation, second half against first
    ("more needs per conversation", (EARLY, None, AFTER, 1, 2, 2, 2), Trend.needs_attention),
    ("needs where the first half had no conversation", (EARLY, None, AFTER, 0, 1, 0, 3), Trend.needs_attention),
    ("same rate on more conversations", (EARLY, None, AFTER, 1, 2, 2, 4), Trend.steady),
    ("fewer needs per conversation", (EARLY, None, AFTER, 2, 1, 2, 2), Trend.improving),
    ("a lower rate though more needs", (EARLY, None, AFTER, 1, 2, 1, 5), Trend.improving),
    ("nothing observed in the second half", (EARLY, None, BEFORE, 2, 0, 2, 0), Trend.steady),
    ("no needs at all", (EARLY, None, None, 0, 0, 2, 2), Trend.steady),
]


@pytest.mark.parametrize(("case", "facts", "trend"), TRENDS, ids=[t[0] for t in TRENDS])
def test_the_trend(case: str, facts: tuple, trend: Trend) -> None:
    first, recognised, need, needs_1, needs_2, conv_1, conv_2 = facts
    assert (
        skill_trend(
            mid=MID,
            first_mention_at=first,
            last_recognised_at=recognised,
            last_need_at=need,
            needs_first=needs_1,
            needs_second=needs_2,
            conversations_first=conv_1,
            conversations_second=conv_2,
        )
        == trend
    )


# --- windows --------------------------------------------------------------------------------

TODAY = dt.date(2026, 11, 28)


def test_the_default_window_is_the_90_days_ending_today() -> None:
    window = development_window(None, None, TODAY)
    assert (window.first, window.last) == (dt.date(2026, 8, 31), TODAY)
    assert window.start == dt.datetime(2026, 8, 31, tzinfo=dt.UTC)
    assert window.end == dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    assert window.mid == dt.datetime(2026, 10, 15, tzinfo=dt.UTC)  # 45 days in


def test_a_window_of_odd_days_splits_at_noon() -> None:
    window = Window(dt.date(2026, 1, 1), dt.date(2026, 1, 3))
    assert window.mid == dt.datetime(2026, 1, 2, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (None, dt.date(2026, 3, 31), (dt.date(2026, 1, 1), dt.date(2026, 3, 31))),  # 90 days ending on `to`
        (dt.date(2026, 11, 1), None, (dt.date(2026, 11, 1), TODAY)),  # from a day to today
        (dt.date(2026, 5, 5), dt.date(2026, 5, 5), (dt.date(2026, 5, 5), dt.date(2026, 5, 5))),  # one day
        (dt.date(2025, 11, 28), TODAY, (dt.date(2025, 11, 28), TODAY)),  # 366 days: the longest
        (None, dt.date(1, 1, 5), (dt.date.min, dt.date(1, 1, 5))),  # the calendar's start bounds the default
    ],
)
def test_windows(first: dt.date | None, last: dt.date | None, expected: tuple[dt.date, dt.date]) -> None:
    window = development_window(first, last, TODAY)
    assert (window.first, window.last) == expected


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        (dt.date(2026, 5, 6), dt.date(2026, 5, 5), "from"),  # from after to
        (dt.date(2025, 11, 27), TODAY, "from"),  # 367 days
        (dt.date(2026, 12, 1), None, "from"),  # from after today's default `to`
        (dt.date(9999, 12, 1), dt.date.max, "to"),  # the window would end after the calendar
    ],
)
def test_refused_windows(first: dt.date, last: dt.date | None, field: str) -> None:
    with pytest.raises(MissingFields) as refused:
        development_window(first, last, TODAY)
    assert refused.value.code == "validation_error"
    assert refused.value.fields[0].path == (field,)


def test_an_open_range_is_ordered() -> None:
    ensure_ordered(None, None)
    ensure_ordered(TODAY, None)
    ensure_ordered(TODAY, TODAY)
    with pytest.raises(MissingFields):
        ensure_ordered(TODAY, TODAY - dt.timedelta(days=1))


# --- commitments ----------------------------------------------------------------------------


@dataclass
class Commitment:
    member_id: uuid.UUID
    status: str = CommitmentStatus.open
    due_on: dt.date | None = None


@pytest.mark.parametrize(
    ("status", "due_on", "overdue"),
    [
        (CommitmentStatus.open, TODAY - dt.timedelta(days=1), True),
        (CommitmentStatus.open, TODAY, False),  # due today is not late yet
        (CommitmentStatus.open, None, False),
        (CommitmentStatus.done, TODAY - dt.timedelta(days=1), False),
        (CommitmentStatus.dropped, TODAY - dt.timedelta(days=1), False),
    ],
)
def test_overdue_is_open_past_its_due_day(status: CommitmentStatus, due_on: dt.date | None, overdue: bool) -> None:
    assert is_overdue(Commitment(uuid.uuid4(), status, due_on), TODAY) is overdue


def test_only_the_member_who_committed_closes_an_open_commitment() -> None:
    seller = actor()
    ensure_can_close_commitment(seller, Commitment(seller.member_id))
    for other in (actor(), actor(MemberRole.manager), actor(MemberRole.head_of_sales), actor(MemberRole.admin)):
        with pytest.raises(OwnerDecides):
            ensure_can_close_commitment(other, Commitment(seller.member_id))
    for status in (CommitmentStatus.done, CommitmentStatus.dropped):
        with pytest.raises(CommitmentClosed):
            ensure_can_close_commitment(seller, Commitment(seller.member_id, status))
    with pytest.raises(OwnerDecides):  # someone else learns nothing about its state
        ensure_can_close_commitment(actor(), Commitment(seller.member_id, CommitmentStatus.done))


def test_a_commitment_names_only_an_improvement_of_its_observation() -> None:
    ensure_commitment_skills([None, "negotiation", None], {"negotiation", "closing"})
    ensure_commitment_skills([], set())
    with pytest.raises(MissingFields) as refused:
        ensure_commitment_skills([None, "negotiation", "discovery"], {"negotiation"})
    assert [f.path for f in refused.value.fields] == [("commitments", 2, "skill_code")]


def test_a_debrief_s_commitments_are_the_seller_s() -> None:
    seller = uuid.uuid4()
    made = commitments_from_debrief(seller, [("Agree a next step", None), ("Confirm value first", "negotiation")])
    assert [(c.member_id, c.text, c.skill_code, c.due_on) for c in made] == [
        (seller, "Agree a next step", None, None),
        (seller, "Confirm value first", "negotiation", None),
    ]


def test_a_review_s_assigned_action_items_become_commitments() -> None:
    seller, manager = uuid.uuid4(), uuid.uuid4()
    items = [
        {"description": "Role-play pricing", "assignee_id": str(seller), "due_date": "2026-12-15"},
        {"description": "Nobody's", "assignee_id": None, "due_date": None},
        {"description": "Pair on the next proposal", "assignee_id": str(manager), "due_date": None},
    ]
    made = commitments_from_action_items(items)
    assert [(c.member_id, c.text, c.skill_code, c.due_on) for c in made] == [
        (seller, "Role-play pricing", None, dt.date(2026, 12, 15)),
        (manager, "Pair on the next proposal", None, None),
    ]


# --- who reads what ------------------------------------------------------------------------------


def test_a_member_s_development_is_seen_by_the_member_their_line_and_heads_of_sales() -> None:
    member, line_manager, senior = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    line = [line_manager, senior]
    assert can_see_development(actor(member_id=member), member, line)
    assert can_see_development(actor(MemberRole.manager, line_manager), member, line)
    assert can_see_development(actor(MemberRole.manager, senior), member, line)
    assert can_see_development(actor(MemberRole.head_of_sales), member, [])
    assert not can_see_development(actor(), member, line)  # another seller
    assert not can_see_development(actor(MemberRole.manager), member, line)  # another manager
    assert not can_see_development(actor(MemberRole.admin), member, line)
    assert not can_see_development(actor(MemberRole.integration), member, line)
    assert can_see_development(actor(MemberRole.admin, member), member, [])  # an admin's own commitments


def test_team_skills_are_for_managers_and_heads_of_sales() -> None:
    ensure_can_see_team_skills(actor(MemberRole.manager))
    ensure_can_see_team_skills(actor(MemberRole.head_of_sales))
    for role in (MemberRole.seller, MemberRole.admin, MemberRole.integration):
        with pytest.raises(Forbidden):
            ensure_can_see_team_skills(actor(role))


def test_a_manager_reads_their_line_and_the_lines_below() -> None:
    me = actor(MemberRole.manager)
    junior = uuid.uuid4()
    ensure_manager_in_reach(me, [me.member_id])
    ensure_manager_in_reach(me, [junior, me.member_id, uuid.uuid4()])
    with pytest.raises(Forbidden):
        ensure_manager_in_reach(me, [uuid.uuid4(), uuid.uuid4()])  # a peer's line, or above me
    with pytest.raises(Forbidden):
        ensure_manager_in_reach(me, [])  # nobody
    ensure_manager_in_reach(actor(MemberRole.head_of_sales), [])


def test_the_feedback_digest_is_for_heads_of_sales_and_admins() -> None:
    ensure_can_read_feedback(actor(MemberRole.head_of_sales))
    ensure_can_read_feedback(actor(MemberRole.admin))
    for role in (MemberRole.seller, MemberRole.manager, MemberRole.integration):
        with pytest.raises(Forbidden):
            ensure_can_read_feedback(actor(role))
