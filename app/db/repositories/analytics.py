"""Analytics queries: aggregates computed in SQL, identically on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ClosedLostReview, ReviewSkillGap
from app.db.repositories.members import line_ids
from app.domain.reviews import LossGroupBy, ReviewStatus

# --- closed-lost analytics -------------------------------------------------------

_review = ClosedLostReview.__table__
_gap = ReviewSkillGap.__table__

_LOSS_KEYS = {
    LossGroupBy.reason: _review.c.loss_reason_code,
    LossGroupBy.competitor: _review.c.competitor,
    LossGroupBy.owner: _review.c.owner_id,
    LossGroupBy.reviewer: _review.c.reviewer_id,
}

# Row kinds in the closed-lost figures statement.
LOSS_GROUP_ROW, LOSS_TOTAL_ROW, LOSS_GROUP_MEDIAN_ROW, LOSS_TOTAL_MEDIAN_ROW = "g", "t", "gm", "tm"


def _kind(tag: str) -> sa.ColumnElement[Any]:
    return sa.literal_column(f"'{tag}'", sa.String).label("kind")


def _none(name: str, type_: Any) -> sa.ColumnElement[Any]:
    """A typed NULL: PostgreSQL resolves UNION column types pairwise and would take a bare NULL for text."""
    return sa.cast(sa.null(), type_).label(name)


def _loss_median_rows(source: Any, tag: str, key: Any | None, key_type: Any) -> sa.Select[Any]:
    """The median of days_to_complete over a source's completed reviews, per key (or overall):
    rank each value, keep the middle one (odd n) or two (even n), and average them — the
    portable form of percentile_cont(0.5), which SQLite lacks."""
    partition = [key] if key is not None else None
    ranked = (
        sa.select(
            *([key.label("key")] if key is not None else []),
            source.c.days_to_complete.label("d"),
            sa.func.row_number().over(partition_by=partition, order_by=source.c.days_to_complete).label("rn"),
            sa.func.count().over(partition_by=partition).label("n"),
        )
        .where(source.c.status == ReviewStatus.completed, source.c.days_to_complete.is_not(None))
        .subquery(f"ranked_{tag}")
    )
    # The middle ranks are those with n <= 2 * rn <= n + 2.
    middle = sa.and_(2 * ranked.c.rn >= ranked.c.n, 2 * ranked.c.rn <= ranked.c.n + 2)
    stmt = sa.select(
        _kind(tag),
        ranked.c.key if key is not None else _none("key", key_type),
        _none("currency", sa.String()),
        _none("n", sa.BigInteger()),
        _none("completed", sa.BigInteger()),
        _none("amount_minor", sa.Numeric()),
        sa.func.avg(ranked.c.d).label("median"),
    ).where(middle)
    return stmt.group_by(ranked.c.key) if key is not None else stmt


class AnalyticsRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def closed_lost_figures(
        self,
        organization_id: uuid.UUID,
        *,
        group_by: LossGroupBy,
        closed_from: dt.datetime | None,
        closed_before: dt.datetime | None,
        line_of: uuid.UUID | None,
    ) -> list[sa.Row[Any]]:
        """Every closed-lost figure of one request in one statement.

        ``scoped`` is the losses in range and in the caller's scope (``line_of``: a manager's line);
        reviews of deals reopened since are no losses. ``keyed`` gives each loss its group key (a loss
        naming several skill gaps is in several skill groups; one naming none has a null key). The
        statement returns rows of four kinds: per (key, currency) counts and sums, per currency
        totals over distinct losses, per key medians and the overall median.
        """
        conditions = [_review.c.organization_id == organization_id, _review.c.deal_reopened.is_(False)]
        if closed_from is not None:
            conditions.append(_review.c.closed_at >= closed_from)
        if closed_before is not None:
            conditions.append(_review.c.closed_at < closed_before)
        if line_of is not None:
            conditions.append(_review.c.owner_id.in_(line_ids(organization_id, line_of)))
        columns = [
            _review.c.id,
            _review.c.status,
            _review.c.amount_minor,
            _review.c.currency,
            _review.c.days_to_complete,
        ]
        if group_by == LossGroupBy.skill_gap:
            scoped = sa.select(*columns).where(*conditions).cte("scoped")
            keyed = (
                sa.select(*scoped.c, _gap.c.skill_code.label("key"))
                .select_from(
                    scoped.outerjoin(
                        _gap, sa.and_(_gap.c.review_id == scoped.c.id, _gap.c.organization_id == organization_id)
                    )
                )
                .cte("keyed")
            )
        else:
            scoped = sa.select(*columns, _LOSS_KEYS[group_by].label("key")).where(*conditions).cte("scoped")
            keyed = scoped

        def sums(source: Any) -> list[sa.ColumnElement[Any]]:
            return [
                source.c.currency,
                sa.func.count().label("n"),
                sa.func.sum(sa.case((source.c.status == ReviewStatus.completed, 1), else_=0)).label("completed"),
                sa.func.sum(source.c.amount_minor).label("amount_minor"),
                _none("median", sa.Float()),
            ]

        groups = sa.select(_kind(LOSS_GROUP_ROW), keyed.c.key, *sums(keyed)).group_by(keyed.c.key, keyed.c.currency)
        key_type = keyed.c.key.type
        totals = sa.select(_kind(LOSS_TOTAL_ROW), _none("key", key_type), *sums(scoped)).group_by(scoped.c.currency)
        stmt = sa.union_all(
            groups,
            totals,
            _loss_median_rows(keyed, LOSS_GROUP_MEDIAN_ROW, keyed.c.key, key_type),
            _loss_median_rows(scoped, LOSS_TOTAL_MEDIAN_ROW, None, key_type),
        )
        return list((await self.session.execute(stmt)).all())
