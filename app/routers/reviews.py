from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.deps import ActorDep, Expansions, IdempotencyDeps, IfMatchDep, PageDep, UowDep
from app.domain import errors as de
from app.domain.development import FeedbackKind
from app.domain.reviews import ReviewStatus
from app.errors import problem_responses
from app.http.responses import ETAG_HEADER, LOCATION_HEADER, set_etag, set_location
from app.http.routes import ApiRoute
from app.routers.expansion import expanded
from app.schemas.common import IsoDate
from app.schemas.development import FeedbackItem, FeedbackPage
from app.schemas.reviews import (
    IsoWeek,
    LeadershipNoteCreate,
    LeadershipNotePublic,
    ReviewFilters,
    ReviewPage,
    ReviewPublic,
    ReviewUpdate,
    WeeklyReviews,
)
from app.services import development
from app.services import reviews as service

router = APIRouter(prefix="/v1", tags=["closed-lost-reviews"], route_class=ApiRoute)
_REVIEWS = "/closed-lost-reviews"


def render(view: service.ReviewView) -> ReviewPublic:
    review = view.review
    return ReviewPublic(
        id=review.id,
        deal_id=review.deal_id,
        owner_id=review.owner_id,
        reviewer_id=review.reviewer_id,
        status=ReviewStatus(review.status),
        deal_reopened=review.deal_reopened,
        closed_at=review.closed_at,
        due_on=review.due_on,
        overdue=view.overdue,
        suggested_skills=review.suggested_skills,
        loss_reason_code=review.loss_reason_code,
        loss_reason_confirmed=review.loss_reason_confirmed,
        competitor=review.competitor,
        root_cause=review.root_cause,
        what_went_well=review.what_went_well,
        lessons=review.lessons,
        skill_gaps=review.skill_gaps,
        product_feedback=review.product_feedback,
        enablement_feedback=review.enablement_feedback,
        action_items=review.action_items,
        seller_reflection=review.seller_reflection,
        leadership_notes=[LeadershipNotePublic.model_validate(n) for n in view.notes],
        completed_at=review.completed_at,
        version=review.version,
        created_at=review.created_at,
        updated_at=review.updated_at,
    )


def list_filters(
    status: ReviewStatus | None = None,
    reviewer_id: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
    deal_id: Annotated[uuid.UUID | None, Query(description="The review of this lost deal")] = None,
    week: Annotated[IsoWeek | None, Query(description="ISO week of the loss, e.g. 2026-W47")] = None,
    closed_from: Annotated[IsoDate | None, Query(description="Lost on or after this day (UTC)")] = None,
    closed_to: Annotated[IsoDate | None, Query(description="Lost on or before this day (UTC)")] = None,
) -> ReviewFilters:
    return ReviewFilters(
        status=status,
        reviewer_id=reviewer_id,
        owner_id=owner_id,
        deal_id=deal_id,
        week=week,
        closed_from=closed_from,
        closed_to=closed_to,
    )


@router.get(_REVIEWS, response_model=ReviewPage, responses=problem_responses())
async def list_reviews(
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    filters: Annotated[ReviewFilters, Depends(list_filters)],
    expand: Expansions = None,
) -> ReviewPage:
    """Closed-lost reviews the caller can see (their own, their line's, or all for leadership), oldest first."""
    result = await service.list_reviews(uow, actor, page, filters)
    items = [render(v) for v in result.items]
    return await expanded(uow, actor, ReviewPage(items=items, next_cursor=result.next_cursor), expand)


# Declared before /{review_id}, which would otherwise take "weekly" for an id.
@router.get(_REVIEWS + "/weekly", response_model=WeeklyReviews, responses=problem_responses(de.Forbidden))
async def get_weekly_reviews(
    actor: ActorDep,
    uow: UowDep,
    week: Annotated[
        IsoWeek | None, Query(description="ISO week, e.g. 2026-W47; the current week (UTC) when absent")
    ] = None,
    expand: Expansions = None,
) -> WeeklyReviews:
    """A week's losses grouped by reviewer: a manager's own group, every group for leadership."""
    weekly = WeeklyReviews.model_validate(await service.get_weekly_reviews(uow, actor, week))
    return await expanded(uow, actor, weekly, expand)


@router.get(_REVIEWS + "/feedback", response_model=FeedbackPage, responses=problem_responses(de.Forbidden))
async def list_closed_lost_feedback(
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    kind: Annotated[FeedbackKind, Query(description="`product_feedback` or `enablement_feedback`")],
    date_from: Annotated[
        IsoDate | None, Query(alias="from", description="Completed on or after this day (UTC)")
    ] = None,
    date_to: Annotated[IsoDate | None, Query(alias="to", description="Completed on or before this day (UTC)")] = None,
) -> FeedbackPage:
    """Completed reviews' product or enablement feedback, newest first (heads of sales and admins)."""
    result = await development.list_feedback(uow, actor, page, kind, date_from, date_to)
    return FeedbackPage(items=[FeedbackItem.model_validate(r) for r in result.items], next_cursor=result.next_cursor)


@router.get(
    _REVIEWS + "/{review_id}",
    response_model=ReviewPublic,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404)},
)
async def get_review(
    review_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    response: Response,
    expand: Expansions = None,
) -> ReviewPublic:
    """One closed-lost review (the seller, the reviewer, the seller's management line and leadership)."""
    view = await service.get_review(uow, actor, review_id)
    set_etag(response, view.review.version)
    return await expanded(uow, actor, render(view), expand)


@router.patch(
    _REVIEWS + "/{review_id}",
    response_model=ReviewPublic,
    responses={
        200: {"headers": ETAG_HEADER},
        **problem_responses(
            404, 412, de.NotTheReviewer, de.ReviewCompleted, de.UnknownLossReason, de.UnknownMember, de.UnknownSkill
        ),
    },
)
async def update_review(
    review_id: uuid.UUID, body: ReviewUpdate, actor: ActorDep, uow: UowDep, if_match: IfMatchDep, response: Response
) -> ReviewPublic:
    """Write the review: the reviewer its findings, the seller their reflection; completed reviews are read-only."""
    view = await service.update_review(uow, actor, review_id, body, if_match)
    set_etag(response, view.review.version)
    return render(view)


@router.post(
    _REVIEWS + "/{review_id}/complete",
    response_model=ReviewPublic,
    responses={
        200: {"headers": ETAG_HEADER},
        **problem_responses(404, de.NotTheReviewer, de.ReviewCompleted, de.ReviewIncomplete),
    },
    dependencies=IdempotencyDeps,
)
async def complete_review(review_id: uuid.UUID, actor: ActorDep, uow: UowDep, response: Response) -> ReviewPublic:
    """Complete the review (the reviewer) once the reason is confirmed, a lesson named and the seller has reflected."""
    view = await service.complete_review(uow, actor, review_id)
    set_etag(response, view.review.version)
    return render(view)


@router.post(
    _REVIEWS + "/{review_id}/leadership-notes",
    status_code=status.HTTP_201_CREATED,
    response_model=LeadershipNotePublic,
    responses={201: {"headers": LOCATION_HEADER}, **problem_responses(404, de.Forbidden)},
    dependencies=IdempotencyDeps,
)
async def create_leadership_note(
    review_id: uuid.UUID, body: LeadershipNoteCreate, actor: ActorDep, uow: UowDep, response: Response
) -> LeadershipNotePublic:
    """Add a head of sales's note to a review (completed ones too); the reviewer and the seller read it."""
    note = await service.create_leadership_note(uow, actor, review_id, body)
    set_location(response, f"/v1/closed-lost-reviews/{review_id}")
    return LeadershipNotePublic.model_validate(note)
