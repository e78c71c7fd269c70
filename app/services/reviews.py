"""Closed-lost reviews: opened by a loss, written by the reviewer and the seller, completed by the
reviewer, read by leadership, gathered into each manager's weekly agenda."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from app.db.models import ClosedLostReview, Deal, LeadershipNote, LossReason
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.catalogs import ensure_known_skills
from app.domain.development import CommitmentSource, commitments_from_action_items
from app.domain.errors import NotFound, UnknownLossReason, UnknownMember
from app.domain.members import Actor
from app.domain.money import Money
from app.domain.reviews import (
    ReviewStatus,
    choose_reviewer,
    closed_range,
    days_to_complete,
    due_on,
    ensure_can_add_leadership_note,
    ensure_can_complete,
    ensure_can_see_weekly,
    ensure_can_write,
    ensure_open,
    is_overdue,
    iso_week,
    sees_every_review,
)
from app.domain.versioning import ensure_version
from app.schemas.reviews import LeadershipNoteCreate, ReviewFilters, ReviewUpdate
from app.services.commitments import record_commitments
from app.services.pagination import PageRequest, PageResult, after_id, build_page

LISTING = "closed_lost_reviews"


@dataclass
class ReviewView:
    review: ClosedLostReview
    notes: list[LeadershipNote] = field(default_factory=list)
    overdue: bool = False


def _view(review: ClosedLostReview, notes: list[LeadershipNote]) -> ReviewView:
    return ReviewView(review, notes, is_overdue(review, utcnow().date()))


# --- opened by the deal's loss (called inside the deal's transaction) ---------------


async def open_or_reuse_review(uow: UnitOfWork, actor: Actor, deal: Deal) -> ClosedLostReview:
    """Open the review a loss calls for; a deal lost again brings back its one review, pending
    again, with the new loss's facts and reviewer, and the earlier conversation kept."""
    assert deal.closed_at is not None and deal.loss_reason_code is not None
    facts = await uow.reviews.opening_facts(deal.organization_id, deal.owner_id, deal.loss_reason_code)
    reviewer_id = choose_reviewer(facts.manager_id, facts.head_of_sales_id)
    values: dict[str, Any] = {
        "owner_id": deal.owner_id,
        "reviewer_id": reviewer_id,
        "status": ReviewStatus.pending,
        "deal_reopened": False,
        "closed_at": deal.closed_at,
        "closed_week": iso_week(deal.closed_at),
        "due_on": due_on(deal.closed_at, facts.review_due_days),
        "amount_minor": deal.amount_minor,
        "currency": deal.currency,
        "loss_reason_code": deal.loss_reason_code,
        "loss_reason_confirmed": False,
        "competitor": deal.loss_competitor,
        "suggested_skills": list(facts.suggested_skills or []),
        "completed_at": None,
        "days_to_complete": None,
    }
    review = await uow.reviews.get_by_deal(deal.id)
    reused = review is not None
    if review is None:
        review = ClosedLostReview(organization_id=deal.organization_id, deal_id=deal.id, **values)
        uow.add(review)
    else:
        for key, value in values.items():
            setattr(review, key, value)
        review.version += 1
        review.updated_at = utcnow()
    await uow.flush()
    data = {
        "owner_id": str(review.owner_id),
        "reviewer_id": str(reviewer_id) if reviewer_id else None,
        "loss_reason_code": review.loss_reason_code,
        "due_on": review.due_on.isoformat(),
        "reused": reused,
    }
    await _event(uow, actor, review, "opened", data)
    return review


async def mark_reopened(uow: UnitOfWork, actor: Actor, deal: Deal) -> None:
    """A reopened deal is no loss for now: its review says so (and leaves the weekly view and analytics)."""
    review = await uow.reviews.get_by_deal(deal.id)
    if review is None or review.deal_reopened:
        return
    review.deal_reopened = True
    review.version += 1
    review.updated_at = utcnow()
    await uow.flush()
    await _event(uow, actor, review, "deal_reopened", {"stage": str(deal.stage)})


# --- reading ------------------------------------------------------------------


async def get_review(uow: UnitOfWork, actor: Actor, review_id: uuid.UUID) -> ReviewView:
    review = await visible_review(uow, actor, review_id)
    notes = await uow.reviews.notes_of([review.id])
    return _view(review, notes[review.id])


async def visible_review(
    uow: UnitOfWork, actor: Actor, review_id: uuid.UUID, *, for_update: bool = False
) -> ClosedLostReview:
    """The review if the actor may see it; otherwise it does not exist (404)."""
    review = await uow.reviews.get_visible(actor, review_id, for_update=for_update)
    if review is None:
        raise NotFound("No closed-lost review with this id.")
    return review


async def list_reviews(
    uow: UnitOfWork, actor: Actor, page: PageRequest, filters: ReviewFilters
) -> PageResult[ReviewView]:
    closed_from, closed_before = closed_range(filters.closed_from, filters.closed_to)
    rows = await uow.reviews.list_page(
        actor,
        after=after_id(LISTING, page),
        limit=page.limit + 1,
        status=filters.status,
        reviewer_id=filters.reviewer_id,
        owner_id=filters.owner_id,
        deal_id=filters.deal_id,
        week=filters.week,
        closed_from=closed_from,
        closed_before=closed_before,
    )
    result = build_page(LISTING, page, rows)
    notes = await uow.reviews.notes_of([r.id for r in result.items])
    return PageResult([_view(r, notes[r.id]) for r in result.items], result.next_cursor)


# --- writing ------------------------------------------------------------------


async def update_review(
    uow: UnitOfWork, actor: Actor, review_id: uuid.UUID, data: ReviewUpdate, if_match: frozenset[int] | None
) -> ReviewView:
    async with uow:
        review = await visible_review(uow, actor, review_id, for_update=True)
        ensure_version(review.version, if_match)
        fields = data.model_dump(mode="json", exclude_unset=True)
        if data.action_items is not None and "action_items" in fields:  # whole items, defaults included
            fields["action_items"] = [item.model_dump(mode="json") for item in data.action_items]
        ensure_can_write(actor, review, fields)
        ensure_open(review)
        changes = {k: v for k, v in fields.items() if getattr(review, k) != v}
        notes = await uow.reviews.notes_of([review.id])
        if not changes:
            return _view(review, notes[review.id])
        if "loss_reason_code" in changes:
            review.suggested_skills = await _suggested_skills(uow, actor, changes["loss_reason_code"])
        if "skill_gaps" in changes:
            known = await uow.catalogs.active_skill_codes(actor.organization_id, changes["skill_gaps"])
            ensure_known_skills(changes["skill_gaps"], known)
            await uow.reviews.replace_skill_gaps(review.organization_id, review.id, changes["skill_gaps"])
        if "action_items" in changes:
            await _ensure_assignees(uow, actor, changes["action_items"])
        for key, value in changes.items():
            setattr(review, key, value)
        review.version += 1
        review.updated_at = utcnow()
        await uow.flush()
        # Names only: the event feed reaches everyone who sees the deal, the review's text does not.
        await _event(uow, actor, review, "updated", {"fields": sorted(changes)})
        await uow.commit()
    return _view(review, notes[review.id])


async def complete_review(uow: UnitOfWork, actor: Actor, review_id: uuid.UUID) -> ReviewView:
    async with uow:
        review = await visible_review(uow, actor, review_id, for_update=True)
        ensure_can_complete(actor, review)
        now = utcnow()
        review.status = ReviewStatus.completed
        review.completed_at = now
        review.days_to_complete = days_to_complete(review.closed_at, now)
        review.version += 1
        review.updated_at = now
        await uow.flush()
        await _event(uow, actor, review, "completed", {"days_to_complete": review.days_to_complete})
        await record_commitments(
            uow,
            actor,
            source=CommitmentSource.closed_lost_review,
            source_id=review.id,
            deal_id=review.deal_id,
            made=commitments_from_action_items(review.action_items),
        )
        notes = await uow.reviews.notes_of([review.id])
        await uow.commit()
    return _view(review, notes[review.id])


async def create_leadership_note(
    uow: UnitOfWork, actor: Actor, review_id: uuid.UUID, data: LeadershipNoteCreate
) -> LeadershipNote:
    """A head of sales reviews the manager's review; allowed on completed reviews too."""
    async with uow:
        review = await visible_review(uow, actor, review_id, for_update=True)
        ensure_can_add_leadership_note(actor)
        now = utcnow()
        note = LeadershipNote(
            organization_id=review.organization_id,
            review_id=review.id,
            author_id=actor.member_id,
            note=data.note,
            created_at=now,
        )
        uow.add(note)
        # The note is part of the review's representation, so its version (ETag) moves.
        review.version += 1
        review.updated_at = now
        await uow.flush()
        await _event(uow, actor, review, "leadership_noted", {"note_id": str(note.id)})
        await uow.commit()
    return note


async def _suggested_skills(uow: UnitOfWork, actor: Actor, code: str) -> list[str]:
    reason = await uow.catalogs.get(LossReason, actor.organization_id, code)
    if reason is None or not reason.active:
        raise UnknownLossReason(f"{code!r} is not an active loss reason of the organisation.")
    return list(reason.suggested_skills)


async def _ensure_assignees(uow: UnitOfWork, actor: Actor, items: list[dict[str, Any]]) -> None:
    wanted = {uuid.UUID(item["assignee_id"]) for item in items if item.get("assignee_id")}
    unknown = wanted - await uow.reviews.active_member_ids(actor.organization_id, wanted)
    if unknown:
        raise UnknownMember("An action item's assignee_id names no active member of the organisation.")


async def _event(uow: UnitOfWork, actor: Actor, review: ClosedLostReview, verb: str, data: dict[str, Any]) -> None:
    await uow.events.record(
        actor,
        f"review.{verb}",
        subject_type="closed_lost_review",
        subject_id=review.id,
        deal_id=review.deal_id,
        data=data,
    )


# --- the weekly view ------------------------------------------------------------


@dataclass
class WeeklyReviewView:
    id: uuid.UUID
    deal_id: uuid.UUID
    deal_name: str
    owner_id: uuid.UUID
    amount: dict[str, str] | None
    status: str
    due_on: dt.date
    overdue: bool


@dataclass
class WeeklyGroupView:
    reviewer_id: uuid.UUID | None
    pending: int = 0
    completed: int = 0
    overdue: int = 0
    lost_amounts: list[dict[str, str]] = field(default_factory=list)
    reviews: list[WeeklyReviewView] = field(default_factory=list)


@dataclass
class WeeklyView:
    week: str
    groups: list[WeeklyGroupView]


async def get_weekly_reviews(uow: UnitOfWork, actor: Actor, week: str | None) -> WeeklyView:
    """The week's losses grouped by reviewer: a manager's own group, or every group for leadership.
    Without a week, the current ISO week (UTC): this week's meeting."""
    ensure_can_see_weekly(actor)
    week = week or iso_week(utcnow())
    only = None if sees_every_review(actor) else actor.member_id
    rows = await uow.reviews.weekly_rows(actor.organization_id, week, only)
    today = utcnow().date()
    groups: dict[uuid.UUID | None, WeeklyGroupView] = {}
    sums: dict[uuid.UUID | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        group = groups.setdefault(row.reviewer_id, WeeklyGroupView(row.reviewer_id))
        overdue = is_overdue(row, today)
        amount = None
        if row.amount_minor is not None and row.currency is not None:
            amount = Money(row.amount_minor, row.currency).to_json()
            sums[row.reviewer_id][row.currency] += row.amount_minor
        group.reviews.append(
            WeeklyReviewView(
                id=row.id,
                deal_id=row.deal_id,
                deal_name=row.deal_name,
                owner_id=row.owner_id,
                amount=amount,
                status=row.status,
                due_on=row.due_on,
                overdue=overdue,
            )
        )
        if row.status == ReviewStatus.completed:
            group.completed += 1
        else:
            group.pending += 1
        group.overdue += int(overdue)
    for reviewer_id, group in groups.items():
        group.lost_amounts = [Money(minor, currency).to_json() for currency, minor in sorted(sums[reviewer_id].items())]
    ordered = sorted(groups.values(), key=lambda g: (g.reviewer_id is None, str(g.reviewer_id)))
    return WeeklyView(week=week, groups=ordered)
