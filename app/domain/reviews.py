"""Closed-lost reviews: the conversation a lost deal opens between the seller and their manager."""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Protocol

from app.domain.errors import Forbidden, NotTheReviewer, ReviewCompleted, ReviewIncomplete
from app.domain.members import Actor, MemberRole


class ReviewStatus(enum.StrEnum):
    pending = "pending"
    completed = "completed"


class LossGroupBy(enum.StrEnum):
    """The dimensions closed-lost analytics group by."""

    reason = "reason"
    competitor = "competitor"
    skill_gap = "skill_gap"
    owner = "owner"
    reviewer = "reviewer"


# Who writes what: the reviewer leads the conversation, the seller reflects on it.
REVIEWER_FIELDS = frozenset(
    {
        "loss_reason_code",
        "loss_reason_confirmed",
        "competitor",
        "root_cause",
        "what_went_well",
        "lessons",
        "skill_gaps",
        "product_feedback",
        "enablement_feedback",
        "action_items",
    }
)
SELLER_FIELDS = frozenset({"seller_reflection"})

# Roles that see every review, every weekly group and the whole organisation's analytics.
REVIEW_LEADERSHIP_ROLES = frozenset({MemberRole.head_of_sales, MemberRole.admin})

_WEEK = re.compile(r"^([0-9]{4})-W([0-9]{2})$")


class ReviewLike(Protocol):
    @property
    def owner_id(self) -> uuid.UUID: ...
    @property
    def reviewer_id(self) -> uuid.UUID | None: ...
    @property
    def status(self) -> str: ...
    @property
    def due_on(self) -> dt.date: ...


class CompletableReview(ReviewLike, Protocol):
    loss_reason_confirmed: bool
    lessons: list[str]
    seller_reflection: str | None


# --- ISO weeks and dates ------------------------------------------------------


def iso_week(moment: dt.date | dt.datetime) -> str:
    """The ISO 8601 week of a day (of a UTC instant), as ``2026-W47``."""
    if isinstance(moment, dt.datetime):
        moment = moment.astimezone(dt.UTC).date()
    year, week, _ = moment.isocalendar()
    return f"{year:04d}-W{week:02d}"


def parse_iso_week(text: str) -> str:
    """The canonical ``YYYY-Www`` for a valid ISO week; ValueError for anything else (W53 exists
    only in long years, W00 never)."""
    match = _WEEK.match(text)
    if match is None:
        raise ValueError("week must be an ISO week such as 2026-W47")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        monday = dt.date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{text} is not a week of the ISO calendar") from None
    return iso_week(monday)


def week_days(week: str) -> tuple[dt.date, dt.date]:
    """The Monday and the Sunday of an ISO week."""
    canonical = parse_iso_week(week)
    year, number = int(canonical[:4]), int(canonical[6:])
    return dt.date.fromisocalendar(year, number, 1), dt.date.fromisocalendar(year, number, 7)


def due_on(closed_at: dt.datetime, review_due_days: int) -> dt.date:
    """A review is due ``review_due_days`` after the day (UTC) the deal was lost."""
    return closed_at.astimezone(dt.UTC).date() + dt.timedelta(days=review_due_days)


def closed_range(first: dt.date | None, last: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Inclusive days as a half-open range of UTC instants ``[start, end)``; None is unbounded."""
    start = None if first is None else dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    end = None
    if last is not None and last < dt.date.max:
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return start, end


def is_overdue(review: ReviewLike, today: dt.date) -> bool:
    """A review not completed by its due day is overdue from the day after."""
    return review.status != ReviewStatus.completed and today > review.due_on


def days_to_complete(closed_at: dt.datetime, completed_at: dt.datetime) -> float:
    """How long the conversation took after the loss, in (fractional) days."""
    return (completed_at - closed_at).total_seconds() / 86_400


def median(values: Sequence[float]) -> float | None:
    """The middle value, or the mean of the two middle values; None for no values. (The SQL in
    analytics computes the same with ROW_NUMBER/COUNT; this is its reference.)"""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None
    return (ordered[(n + 1) // 2 - 1] + ordered[(n + 2) // 2 - 1]) / 2


# --- who may do what ------------------------------------------------------------


def choose_reviewer(owner_manager_id: uuid.UUID | None, head_of_sales_id: uuid.UUID | None) -> uuid.UUID | None:
    """The owner's manager reviews the loss; a seller without a manager is reviewed by a head of sales."""
    return owner_manager_id if owner_manager_id is not None else head_of_sales_id


def sees_every_review(actor: Actor) -> bool:
    """Heads of sales (who review the managers' reviews) and admins see every review."""
    return actor.role in REVIEW_LEADERSHIP_ROLES


def ensure_can_write(actor: Actor, review: ReviewLike, fields: Iterable[str]) -> None:
    """The reviewer writes the review, the seller their reflection; nobody writes the other's part."""
    for name in fields:
        if name in SELLER_FIELDS and actor.member_id != review.owner_id:
            raise NotTheReviewer("Only the seller who owned the deal writes seller_reflection.")
        if name in REVIEWER_FIELDS and (review.reviewer_id is None or actor.member_id != review.reviewer_id):
            raise NotTheReviewer(f"Only the reviewer writes {name}.")


def ensure_open(review: ReviewLike) -> None:
    """A completed review is the record of the conversation: read-only (leadership notes aside)."""
    if review.status == ReviewStatus.completed:
        raise ReviewCompleted()


def missing_for_completion(review: CompletableReview) -> list[str]:
    """What a review still needs before it can be completed, in a stable order."""
    missing = []
    if not review.loss_reason_confirmed:
        missing.append("loss_reason_confirmed")
    if not any(lesson.strip() for lesson in review.lessons):
        missing.append("lessons")
    if not (review.seller_reflection or "").strip():
        missing.append("seller_reflection")
    return missing


def ensure_can_complete(actor: Actor, review: CompletableReview) -> None:
    """Only the reviewer completes, once, with a confirmed reason, a lesson and the seller's reflection."""
    if review.reviewer_id is None or actor.member_id != review.reviewer_id:
        raise NotTheReviewer("Only the reviewer completes the review.")
    ensure_open(review)
    missing = missing_for_completion(review)
    if missing:
        raise ReviewIncomplete(f"Completion needs: {', '.join(missing)}.", missing=missing)


def ensure_can_add_leadership_note(actor: Actor) -> None:
    """Heads of sales review the managers' reviews; nobody else writes leadership notes."""
    if actor.role != MemberRole.head_of_sales:
        raise Forbidden("Only a head of sales writes leadership notes.")


def ensure_can_see_weekly(actor: Actor) -> None:
    """The weekly view is a reviewer's agenda: managers see their own group, leadership every group."""
    if actor.role not in (MemberRole.manager, *REVIEW_LEADERSHIP_ROLES):
        raise Forbidden("The weekly view is for managers and leadership.")


def ensure_can_see_loss_analytics(actor: Actor) -> None:
    """Loss analytics are for managers (their line) and leadership (the organisation)."""
    if actor.role not in (MemberRole.manager, *REVIEW_LEADERSHIP_ROLES):
        raise Forbidden("Closed-lost analytics are for managers and leadership.")
