"""Analytics: what the organisation's losses and coaching add up to, scoped to what the caller leads."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from app.db.repositories.analytics import (
    LOSS_GROUP_MEDIAN_ROW,
    LOSS_GROUP_ROW,
    LOSS_TOTAL_MEDIAN_ROW,
)
from app.db.uow import UnitOfWork
from app.domain.members import Actor
from app.domain.money import Money
from app.domain.reviews import LossGroupBy, closed_range, ensure_can_see_loss_analytics, sees_every_review

# --- closed-lost analytics -------------------------------------------------------


@dataclass
class ClosedLostFiguresView:
    key: str | None
    count: int = 0
    completed: int = 0
    amounts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    median_days_to_review: float | None = None

    @property
    def lost_amounts(self) -> list[dict[str, str]]:
        return [Money(m, c).to_json() for c, m in sorted(self.amounts.items())]

    @property
    def review_completion_rate(self) -> float | None:
        return self.completed / self.count if self.count else None


@dataclass
class ClosedLostAnalyticsView:
    groups: list[ClosedLostFiguresView]
    total: ClosedLostFiguresView


async def get_closed_lost_analytics(
    uow: UnitOfWork, actor: Actor, first: dt.date | None, last: dt.date | None, group_by: LossGroupBy
) -> ClosedLostAnalyticsView:
    """Losses closed between two days (inclusive, UTC), grouped; leadership sees the organisation,
    a manager their line (the owners below them, transitively); sellers are refused."""
    ensure_can_see_loss_analytics(actor)
    closed_from, closed_before = closed_range(first, last)
    rows = await uow.analytics.closed_lost_figures(
        actor.organization_id,
        group_by=group_by,
        closed_from=closed_from,
        closed_before=closed_before,
        line_of=None if sees_every_review(actor) else actor.member_id,
    )
    return _fold_closed_lost(rows)


def _fold_closed_lost(rows: list[Any]) -> ClosedLostAnalyticsView:
    """The statement's rows (per key and currency, per currency, medians) into groups and a total."""
    groups: dict[str | None, ClosedLostFiguresView] = {}
    total = ClosedLostFiguresView(key=None)
    for row in rows:
        key = None if row.key is None else str(row.key) if isinstance(row.key, uuid.UUID) else row.key
        if row.kind in (LOSS_GROUP_ROW, LOSS_GROUP_MEDIAN_ROW):
            figures = groups.setdefault(key, ClosedLostFiguresView(key=key))
        else:
            figures = total
        if row.kind in (LOSS_GROUP_MEDIAN_ROW, LOSS_TOTAL_MEDIAN_ROW):
            # The overall median row is there even when nothing was completed (a NULL average).
            figures.median_days_to_review = None if row.median is None else float(row.median)
            continue
        figures.count += int(row.n)
        figures.completed += int(row.completed)
        if row.currency is not None and row.amount_minor is not None:
            figures.amounts[row.currency] += int(row.amount_minor)
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.key is None, g.key or ""))
    return ClosedLostAnalyticsView(groups=ordered, total=total)
