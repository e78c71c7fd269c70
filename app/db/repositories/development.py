"""Seller development figures, computed in SQL on SQLite and PostgreSQL: a member's skill profile,
the observer's brief, the team's skills, the feedback digest.

A skill is *mentioned* by a shared observation of a call the seller led (as a strength or an
improvement, dated by the observation's ``shared_at``) and by a completed review of the seller's
lost deal (as a loss skill gap, dated by the loss, ``closed_at``; reviews of deals reopened since
are no losses)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ClosedLostReview, Commitment, Observation, ObservationSkill, ReviewSkillGap
from app.db.repositories.members import line_ids
from app.domain.calls import ObservationStatus
from app.domain.development import CommitmentStatus, FeedbackKind, SkillMention
from app.domain.reviews import ReviewStatus

_os = ObservationSkill.__table__
_obs = Observation.__table__
_rev = ClosedLostReview.__table__
_gap = ReviewSkillGap.__table__
_com = Commitment.__table__

# The kind of a mention that comes from a review rather than an observation.
LOSS_GAP = "loss_gap"
# Row kinds of the team statement: one seller's skill, or a skill's total over the team.
SELLER_ROW, TOTAL_ROW = "m", "t"
_NEEDS = (SkillMention.improvement.value, LOSS_GAP)


def _text(value: str) -> sa.ColumnElement[Any]:
    """A string constant inlined in the SQL (a bound parameter has no type in a UNION on PostgreSQL)."""
    return sa.literal_column(f"'{value}'", sa.String)


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _losses(organization_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    """Completed reviews of the organisation's losses (not since reopened)."""
    return [
        _rev.c.organization_id == organization_id,
        _rev.c.status == ReviewStatus.completed,
        _rev.c.deal_reopened.is_(False),
    ]


def _count(table: sa.Table, *conditions: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
    return sa.select(sa.func.count()).select_from(table).where(*conditions).scalar_subquery()


class DevelopmentRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_observation_skills(self, observation: Observation) -> None:
        """One row per skill a shared observation names as a strength or an improvement."""
        assert observation.shared_at is not None
        mentions = {
            (kind, item["skill_code"])
            for kind, items in (
                (SkillMention.strength, observation.strengths),
                (SkillMention.improvement, observation.improvements),
            )
            for item in items
        }
        rows = [
            {
                "observation_id": observation.id,
                "kind": kind.value,
                "skill_code": code,
                "organization_id": observation.organization_id,
                "seller_id": observation.seller_id,
                "shared_at": observation.shared_at,
            }
            for kind, code in sorted(mentions)
        ]
        if rows:
            await self.session.execute(sa.insert(_os), rows)

    # --- the profile ----------------------------------------------------------------------

    async def profile_skills(
        self,
        organization_id: uuid.UUID,
        member_id: uuid.UUID,
        *,
        start: dt.datetime,
        mid: dt.datetime,
        end: dt.datetime,
    ) -> list[sa.Row[Any]]:
        """Per skill mentioned in ``[start, end)``: its counts and last dates in the window, its
        needs (improvements and loss gaps) in each half, its first mention ever and its latest
        need up to ``end`` (what the trend reads). One statement over the member's mentions."""
        observed = sa.select(_os.c.skill_code, _os.c.kind, _os.c.shared_at.label("at")).where(
            _os.c.organization_id == organization_id, _os.c.seller_id == member_id, _os.c.shared_at < end
        )
        lost = (
            sa.select(_gap.c.skill_code, _text(LOSS_GAP).label("kind"), _rev.c.closed_at.label("at"))
            .select_from(_gap.join(_rev, _rev.c.id == _gap.c.review_id))
            .where(*_losses(organization_id), _rev.c.owner_id == member_id, _rev.c.closed_at < end)
        )
        m = sa.union_all(observed, lost).subquery("mentions")
        in_window = m.c.at >= start
        strength = m.c.kind == SkillMention.strength.value
        improvement = m.c.kind == SkillMention.improvement.value
        need = m.c.kind.in_(_NEEDS)
        stmt = (
            sa.select(
                m.c.skill_code,
                _count_if(sa.and_(in_window, strength)).label("strengths"),
                _count_if(sa.and_(in_window, improvement)).label("improvements"),
                _count_if(sa.and_(in_window, m.c.kind == LOSS_GAP)).label("loss_gaps"),
                sa.func.max(sa.case((sa.and_(in_window, strength), m.c.at))).label("last_recognised_at"),
                sa.func.max(sa.case((sa.and_(in_window, improvement), m.c.at))).label("last_improvement_at"),
                _count_if(sa.and_(in_window, m.c.at < mid, need)).label("needs_first"),
                _count_if(sa.and_(m.c.at >= mid, need)).label("needs_second"),
                sa.func.min(m.c.at).label("first_mention_at"),
                sa.func.max(sa.case((need, m.c.at))).label("last_need_at"),
            )
            .group_by(m.c.skill_code)
            .having(_count_if(in_window) > 0)
            .order_by(m.c.skill_code)
        )
        return list((await self.session.execute(stmt)).all())

    async def profile_counts(
        self,
        organization_id: uuid.UUID,
        member_id: uuid.UUID,
        *,
        start: dt.datetime,
        mid: dt.datetime,
        end: dt.datetime,
        today: dt.date,
    ) -> sa.Row[Any]:
        """The member's debriefs, losses and commitments in ``[start, end)`` in one row, and the
        conversations of each half the trend divides by."""
        org = organization_id
        observed = [_obs.c.organization_id == org, _obs.c.seller_id == member_id]
        lost = [_rev.c.organization_id == org, _rev.c.owner_id == member_id, _rev.c.deal_reopened.is_(False)]
        completed = _rev.c.status == ReviewStatus.completed
        made = [
            _com.c.organization_id == org,
            _com.c.member_id == member_id,
            _com.c.created_at >= start,
            _com.c.created_at < end,
        ]
        is_open = _com.c.status == CommitmentStatus.open
        stmt = sa.select(
            _count(_obs, *observed, _obs.c.shared_at >= start, _obs.c.shared_at < mid).label("observed_first"),
            _count(_obs, *observed, _obs.c.shared_at >= mid, _obs.c.shared_at < end).label("observed_second"),
            _count(
                _obs,
                *observed,
                _obs.c.shared_at >= start,
                _obs.c.shared_at < end,
                _obs.c.status == ObservationStatus.acknowledged,
            ).label("acknowledged"),
            _count(_rev, *lost, _rev.c.closed_at >= start, _rev.c.closed_at < end).label("lost"),
            _count(_rev, *lost, completed, _rev.c.closed_at >= start, _rev.c.closed_at < mid).label("reviewed_first"),
            _count(_rev, *lost, completed, _rev.c.closed_at >= mid, _rev.c.closed_at < end).label("reviewed_second"),
            _count(_com, *made, is_open).label("open"),
            _count(_com, *made, _com.c.status == CommitmentStatus.done).label("done"),
            _count(_com, *made, _com.c.status == CommitmentStatus.dropped).label("dropped"),
            _count(_com, *made, is_open, _com.c.due_on < today).label("overdue"),
        )
        return (await self.session.execute(stmt)).one()

    # --- the brief ----------------------------------------------------------------------------

    async def focus_skills(self, organization_id: uuid.UUID, seller_id: uuid.UUID, *, limit: int) -> list[sa.Row[Any]]:
        """The skills the seller was most recently asked to improve, with how often and when last."""
        last = sa.func.max(_os.c.shared_at)
        count = sa.func.count()
        stmt = (
            sa.select(_os.c.skill_code, count.label("improvements"), last.label("last_improvement_at"))
            .where(
                _os.c.organization_id == organization_id,
                _os.c.seller_id == seller_id,
                _os.c.kind == SkillMention.improvement,
            )
            .group_by(_os.c.skill_code)
            .order_by(last.desc(), count.desc(), _os.c.skill_code)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).all())

    async def last_acknowledged(self, organization_id: uuid.UUID, seller_id: uuid.UUID) -> sa.Row[Any] | None:
        """The seller's most recently acknowledged observation: its id, summary and when."""
        stmt = (
            sa.select(_obs.c.id, _obs.c.summary, _obs.c.acknowledged_at)
            .where(
                _obs.c.organization_id == organization_id,
                _obs.c.seller_id == seller_id,
                _obs.c.acknowledged_at.is_not(None),
            )
            .order_by(_obs.c.acknowledged_at.desc(), _obs.c.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).first()

    # --- the team -------------------------------------------------------------------------------

    async def team_skills(
        self,
        organization_id: uuid.UUID,
        *,
        start: dt.datetime,
        end: dt.datetime,
        line_of: uuid.UUID | None,
    ) -> list[sa.Row[Any]]:
        """Per seller and skill, and per skill over everyone in scope (``line_of``: a manager's line,
        transitively; None: the organisation), the mentions in ``[start, end)``.

        Each source is aggregated per (member, skill) where it is read, so only those sums (a few
        thousand rows for a large organisation) are kept for the totals. A line is read first, in
        its own statement: given as a list of ids, the planner probes each seller's index range
        instead of guessing the recursive walk's size and scanning the organisation."""
        observed = sa.select(
            _os.c.seller_id.label("member_id"),
            _os.c.skill_code,
            _count_if(_os.c.kind == SkillMention.strength).label("s"),
            _count_if(_os.c.kind == SkillMention.improvement).label("i"),
            sa.literal_column("0", sa.Integer).label("g"),
        ).where(_os.c.organization_id == organization_id, _os.c.shared_at >= start, _os.c.shared_at < end)
        lost = (
            sa.select(
                _rev.c.owner_id.label("member_id"),
                _gap.c.skill_code,
                sa.literal_column("0", sa.Integer).label("s"),
                sa.literal_column("0", sa.Integer).label("i"),
                sa.func.count().label("g"),
            )
            .select_from(_gap.join(_rev, _rev.c.id == _gap.c.review_id))
            .where(*_losses(organization_id), _rev.c.closed_at >= start, _rev.c.closed_at < end)
        )
        if line_of is not None:
            members = list((await self.session.execute(line_ids(organization_id, line_of))).scalars())
            if not members:
                return []
            observed = observed.where(_os.c.seller_id.in_(members))
            lost = lost.where(_rev.c.owner_id.in_(members))
        observed = observed.group_by(_os.c.seller_id, _os.c.skill_code)
        lost = lost.group_by(_rev.c.owner_id, _gap.c.skill_code)
        both = sa.union_all(observed, lost).subquery("mentions")
        per_seller = (
            sa.select(
                both.c.member_id,
                both.c.skill_code,
                sa.func.sum(both.c.s).label("strengths"),
                sa.func.sum(both.c.i).label("improvements"),
                sa.func.sum(both.c.g).label("loss_gaps"),
            )
            .group_by(both.c.member_id, both.c.skill_code)
            .cte("per_seller")
        )
        sellers = sa.select(_text(SELLER_ROW).label("kind"), *per_seller.c)
        totals = sa.select(
            _text(TOTAL_ROW).label("kind"),
            sa.cast(sa.null(), sa.Uuid).label("member_id"),
            per_seller.c.skill_code,
            sa.func.sum(per_seller.c.strengths).label("strengths"),
            sa.func.sum(per_seller.c.improvements).label("improvements"),
            sa.func.sum(per_seller.c.loss_gaps).label("loss_gaps"),
        ).group_by(per_seller.c.skill_code)
        return list((await self.session.execute(sa.union_all(sellers, totals))).all())

    # --- the feedback digest -------------------------------------------------------------------

    async def feedback_page(
        self,
        organization_id: uuid.UUID,
        kind: FeedbackKind,
        *,
        start: dt.datetime | None,
        end: dt.datetime | None,
        before: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[sa.Row[Any]]:
        """Completed reviews with feedback of ``kind``, completed in ``[start, end)``, newest first
        (ties by id), resuming after ``before``."""
        feedback = _rev.c.product_feedback if kind == FeedbackKind.product else _rev.c.enablement_feedback
        stmt = sa.select(
            _rev.c.id.label("review_id"),
            _rev.c.deal_id,
            _rev.c.loss_reason_code,
            _rev.c.competitor,
            _rev.c.completed_at,
            feedback.label("feedback"),
        ).where(
            _rev.c.organization_id == organization_id,
            _rev.c.status == ReviewStatus.completed,
            _rev.c.completed_at.is_not(None),
            feedback.is_not(None),
            feedback != "",
        )
        if start is not None:
            stmt = stmt.where(_rev.c.completed_at >= start)
        if end is not None:
            stmt = stmt.where(_rev.c.completed_at < end)
        if before is not None:
            completed_at, review_id = before
            stmt = stmt.where(
                sa.or_(
                    _rev.c.completed_at < completed_at,
                    sa.and_(_rev.c.completed_at == completed_at, _rev.c.id < review_id),
                )
            )
        stmt = stmt.order_by(_rev.c.completed_at.desc(), _rev.c.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).all())
