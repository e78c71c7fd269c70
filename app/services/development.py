"""Seller development: a member's skill profile with its trend, the brief an observer reads before
a call, the team's skills, and the feedback lost deals leave for product and enablement."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.development import (
    BRIEF_COMMITMENTS,
    FOCUS_SKILLS,
    FeedbackKind,
    Trend,
    can_see_development,
    development_window,
    ensure_can_read_feedback,
    ensure_can_see_team_skills,
    ensure_manager_in_reach,
    ensure_ordered,
    skill_trend,
)
from app.domain.errors import InvalidCursor, NotFound
from app.domain.members import Actor, MemberRole
from app.domain.reviews import closed_range
from app.services.calls import get_call
from app.services.commitments import CommitmentView, view
from app.services.pagination import PageRequest, PageResult, after_key, build_page

FEEDBACK = "closed_lost_feedback"

# --- the profile -------------------------------------------------------------------------


@dataclass
class SkillProfileView:
    skill_code: str
    strengths: int
    improvements: int
    loss_gaps: int
    last_recognised_at: dt.datetime | None
    last_improvement_at: dt.datetime | None
    trend: Trend


@dataclass
class ProfileView:
    member_id: uuid.UUID
    date_from: dt.date
    date_to: dt.date
    skills: list[SkillProfileView]
    commitments: dict[str, int]
    debriefs: dict[str, int]
    reviews: dict[str, int]


async def get_profile(
    uow: UnitOfWork, actor: Actor, member_id: uuid.UUID, first: dt.date | None, last: dt.date | None
) -> ProfileView:
    """A member's skills, commitments, debriefs and losses over a window, for the member, their
    management line and heads of sales."""
    window = development_window(first, last, utcnow().date())
    chain = await uow.members.manager_chain(actor.organization_id, member_id)
    if not chain or not can_see_development(actor, member_id, chain[1:]):
        raise NotFound("No member with this id.")
    span = {"start": window.start, "mid": window.mid, "end": window.end}
    rows = await uow.development.profile_skills(actor.organization_id, member_id, **span)
    counts = await uow.development.profile_counts(actor.organization_id, member_id, today=utcnow().date(), **span)
    conversations_first = int(counts.observed_first) + int(counts.reviewed_first)
    conversations_second = int(counts.observed_second) + int(counts.reviewed_second)
    skills = [
        SkillProfileView(
            skill_code=row.skill_code,
            strengths=int(row.strengths),
            improvements=int(row.improvements),
            loss_gaps=int(row.loss_gaps),
            last_recognised_at=row.last_recognised_at,
            last_improvement_at=row.last_improvement_at,
            trend=skill_trend(
                mid=window.mid,
                first_mention_at=row.first_mention_at,
                last_recognised_at=row.last_recognised_at,
                last_need_at=row.last_need_at,
                needs_first=int(row.needs_first),
                needs_second=int(row.needs_second),
                conversations_first=conversations_first,
                conversations_second=conversations_second,
            ),
        )
        for row in rows
    ]
    shared = int(counts.observed_first) + int(counts.observed_second)
    return ProfileView(
        member_id=member_id,
        date_from=window.first,
        date_to=window.last,
        skills=skills,
        commitments={k: int(getattr(counts, k)) for k in ("open", "done", "dropped", "overdue")},
        debriefs={
            "shared": shared,
            "acknowledged": int(counts.acknowledged),
            "pending": shared - int(counts.acknowledged),
        },
        reviews={"lost": int(counts.lost), "completed": int(counts.reviewed_first) + int(counts.reviewed_second)},
    )


# --- the brief ----------------------------------------------------------------------------


@dataclass
class BriefView:
    call_id: uuid.UUID
    seller_id: uuid.UUID
    open_commitments: list[CommitmentView]
    focus_skills: list[Any]
    last_observation: Any | None


async def get_brief(uow: UnitOfWork, actor: Actor, call_id: uuid.UUID) -> BriefView:
    """What the seller leading the call is working on, for its attendees and whoever sees the call."""
    call = (await get_call(uow, actor, call_id)).call
    org, seller = actor.organization_id, call.lead_id
    commitments = await uow.commitments.open_of(org, seller, limit=BRIEF_COMMITMENTS)
    return BriefView(
        call_id=call.id,
        seller_id=seller,
        open_commitments=[view(c) for c in commitments],
        focus_skills=await uow.development.focus_skills(org, seller, limit=FOCUS_SKILLS),
        last_observation=await uow.development.last_acknowledged(org, seller),
    )


# --- the team -------------------------------------------------------------------------------


@dataclass
class SkillFiguresView:
    skill_code: str
    strengths: int
    improvements: int
    loss_gaps: int


@dataclass
class SellerSkillsView:
    member_id: uuid.UUID
    skills: list[SkillFiguresView]


@dataclass
class TeamSkillsView:
    date_from: dt.date
    date_to: dt.date
    sellers: list[SellerSkillsView]
    totals: list[SkillFiguresView]


async def get_team_skills(
    uow: UnitOfWork, actor: Actor, first: dt.date | None, last: dt.date | None, manager_id: uuid.UUID | None
) -> TeamSkillsView:
    """Sellers by skill, with totals: a manager's line (or a line below them), or for heads of
    sales the organisation (or one manager's line)."""
    window = development_window(first, last, utcnow().date())
    ensure_can_see_team_skills(actor)
    line_of = actor.member_id if actor.role == MemberRole.manager else None
    if manager_id is not None:
        ensure_manager_in_reach(actor, await uow.members.manager_chain(actor.organization_id, manager_id))
        line_of = manager_id
    rows = await uow.development.team_skills(actor.organization_id, start=window.start, end=window.end, line_of=line_of)
    sellers: dict[uuid.UUID, SellerSkillsView] = {}
    totals = []
    for row in rows:
        figures = SkillFiguresView(row.skill_code, int(row.strengths), int(row.improvements), int(row.loss_gaps))
        if row.member_id is not None:  # a seller's row; totals name no member
            sellers.setdefault(row.member_id, SellerSkillsView(row.member_id, [])).skills.append(figures)
        else:
            totals.append(figures)
    for seller in sellers.values():
        seller.skills.sort(key=lambda f: f.skill_code)
    totals.sort(key=lambda f: (-(f.improvements + f.loss_gaps), f.skill_code))
    return TeamSkillsView(
        date_from=window.first,
        date_to=window.last,
        sellers=[sellers[k] for k in sorted(sellers, key=str)],
        totals=totals,
    )


# --- the feedback digest --------------------------------------------------------------------


async def list_feedback(
    uow: UnitOfWork,
    actor: Actor,
    page: PageRequest,
    kind: FeedbackKind,
    first: dt.date | None,
    last: dt.date | None,
) -> PageResult[Any]:
    """Completed reviews' product or enablement feedback, newest first, for leadership and admins."""
    ensure_ordered(first, last)
    ensure_can_read_feedback(actor)
    start, end = closed_range(first, last)
    rows = await uow.development.feedback_page(
        actor.organization_id, kind, start=start, end=end, before=_after_completed(page), limit=page.limit + 1
    )
    return build_page(FEEDBACK, page, rows, key=lambda r: [r.completed_at.isoformat(), str(r.review_id)])


def _after_completed(page: PageRequest) -> tuple[dt.datetime, uuid.UUID] | None:
    key = after_key(FEEDBACK, page, 2)
    if key is None:
        return None
    try:
        completed_at = dt.datetime.fromisoformat(str(key[0]))
        review_id = uuid.UUID(str(key[1]))
    except ValueError:
        raise InvalidCursor() from None
    if completed_at.tzinfo is None:
        raise InvalidCursor()
    return completed_at, review_id
