"""Coaching figures per manager, computed in one SQL statement on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Call, CallAttendee, ClosedLostReview, DealInvolvement, Intervention, Member, Observation
from app.domain.members import LINE_MANAGER_ROLES

_m = Member.__table__
_inv = DealInvolvement.__table__
_att = CallAttendee.__table__
_call = Call.__table__
_int = Intervention.__table__
_obs = Observation.__table__
_rev = ClosedLostReview.__table__


def _ratio(numerator: Any, denominator: Any) -> sa.ColumnElement[Any]:
    """numerator ÷ denominator as a float, NULL when the denominator is 0 or missing."""
    return sa.case(
        (sa.func.coalesce(denominator, 0) == 0, sa.null()),
        else_=sa.cast(sa.func.coalesce(numerator, 0), sa.Float) / denominator,
    )


def _in(column: Any, start: dt.datetime | None, end: dt.datetime | None) -> sa.ColumnElement[bool]:
    """``column`` within [start, end); an open end is unbounded (NULLs never match)."""
    conditions = [column.is_not(None)]
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return sa.and_(*conditions)


class CoachingRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def coaching_figures(
        self,
        organization_id: uuid.UUID,
        *,
        start: dt.datetime | None,
        end: dt.datetime | None,
        manager_id: uuid.UUID | None,
    ) -> list[sa.Row[Any]]:
        """One row per manager (and head of sales) in scope, every figure for [start, end)."""
        org = organization_id
        involvement = (
            sa.select(
                _inv.c.member_id.label("mid"),
                sa.func.count().label("deals"),
                sa.func.sum(sa.case((_inv.c.late.is_(True), 1), else_=0)).label("late"),
            )
            .where(_inv.c.organization_id == org, _in(_inv.c.first_at, start, end))
            .group_by(_inv.c.member_id)
            .subquery("involvement")
        )
        calls = (
            sa.select(_att.c.member_id.label("mid"), sa.func.count().label("calls"))
            .join(_call, _call.c.id == _att.c.call_id)
            .where(_att.c.organization_id == org, _in(_call.c.held_at, start, end))
            .group_by(_att.c.member_id)
            .subquery("calls")
        )
        takeovers = (
            sa.select(_int.c.member_id.label("mid"), sa.func.count().label("takeovers"))
            .join(_call, _call.c.id == _int.c.call_id)
            .where(_int.c.organization_id == org, _int.c.is_takeover.is_(True), _in(_call.c.held_at, start, end))
            .group_by(_int.c.member_id)
            .subquery("takeovers")
        )
        observations = (
            sa.select(
                _obs.c.observer_id.label("mid"),
                sa.func.count().label("given"),
                sa.func.sum(_obs.c.strengths_count).label("strengths"),
                sa.func.sum(_obs.c.improvements_count).label("improvements"),
                sa.func.sum(sa.case((_obs.c.status.in_(["shared", "acknowledged"]), 1), else_=0)).label("shared"),
                sa.func.sum(sa.case((_obs.c.status == "acknowledged", 1), else_=0)).label("acknowledged"),
            )
            .where(_obs.c.organization_id == org, _in(_obs.c.created_at, start, end))
            .group_by(_obs.c.observer_id)
            .subquery("observations")
        )
        reviews = (
            sa.select(
                _rev.c.reviewer_id.label("mid"),
                sa.func.count().label("reviews"),
                sa.func.sum(sa.case((_rev.c.status == "completed", 1), else_=0)).label("completed"),
            )
            .where(_rev.c.organization_id == org, _in(_rev.c.closed_at, start, end))
            .group_by(_rev.c.reviewer_id)
            .subquery("reviews")
        )
        # The portable median (SQLite has no percentile_cont): rank, keep the middle one or two, average.
        ranked = (
            sa.select(
                _rev.c.reviewer_id.label("mid"),
                _rev.c.days_to_complete.label("d"),
                sa.func.row_number()
                .over(partition_by=_rev.c.reviewer_id, order_by=_rev.c.days_to_complete)
                .label("rn"),
                sa.func.count().over(partition_by=_rev.c.reviewer_id).label("n"),
            )
            .where(
                _rev.c.organization_id == org,
                _rev.c.status == "completed",
                _rev.c.days_to_complete.is_not(None),
                _in(_rev.c.closed_at, start, end),
            )
            .subquery("ranked")
        )
        medians = (
            sa.select(ranked.c.mid, sa.func.avg(ranked.c.d).label("median"))
            .where(2 * ranked.c.rn >= ranked.c.n, 2 * ranked.c.rn <= ranked.c.n + 2)
            .group_by(ranked.c.mid)
            .subquery("medians")
        )
        stmt = (
            sa.select(
                _m.c.id.label("manager_id"),
                sa.func.coalesce(involvement.c.deals, 0).label("deals_involved"),
                _ratio(involvement.c.late, involvement.c.deals).label("late_first_involvement_share"),
                sa.func.coalesce(calls.c.calls, 0).label("calls_attended"),
                sa.func.coalesce(takeovers.c.takeovers, 0).label("takeovers"),
                _ratio(takeovers.c.takeovers, calls.c.calls).label("takeovers_per_call"),
                sa.func.coalesce(observations.c.given, 0).label("observations_given"),
                _ratio(observations.c.strengths, observations.c.improvements).label("strengths_per_improvement"),
                _ratio(observations.c.acknowledged, observations.c.shared).label("debrief_completion_rate"),
                sa.func.coalesce(reviews.c.completed, 0).label("reviews_completed"),
                _ratio(reviews.c.completed, reviews.c.reviews).label("review_completion_rate"),
                medians.c.median.label("median_days_to_review"),
            )
            .select_from(_m)
            .outerjoin(involvement, involvement.c.mid == _m.c.id)
            .outerjoin(calls, calls.c.mid == _m.c.id)
            .outerjoin(takeovers, takeovers.c.mid == _m.c.id)
            .outerjoin(observations, observations.c.mid == _m.c.id)
            .outerjoin(reviews, reviews.c.mid == _m.c.id)
            .outerjoin(medians, medians.c.mid == _m.c.id)
            .where(_m.c.organization_id == org, _m.c.role.in_([str(r) for r in LINE_MANAGER_ROLES]))
            .order_by(_m.c.id)
        )
        if manager_id is not None:
            stmt = stmt.where(_m.c.id == manager_id)
        return list((await self.session.execute(stmt)).all())
