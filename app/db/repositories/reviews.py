"""Closed-lost review queries: visibility, opening facts, keyset listing, the weekly agenda."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ClosedLostReview, Deal, LeadershipNote, LossReason, Member, Organization, ReviewSkillGap
from app.db.repositories.members import line_ids
from app.domain.members import Actor, MemberRole
from app.domain.reviews import ReviewStatus, sees_every_review

_m = Member.__table__
_review = ClosedLostReview.__table__

# What opening reviews for a batch's losses reads, in one round trip: per owner, their active
# manager; and on every row the organisation's due days and its first active head of sales.
_owner, _manager = _m.alias("owner"), _m.alias("manager")
_OPENING_FACTS = (
    sa.select(
        _owner.c.id.label("owner_id"),
        _manager.c.id.label("manager_id"),
        sa.select(Organization.review_due_days)
        .where(Organization.id == sa.bindparam("org"))
        .scalar_subquery()
        .label("review_due_days"),
        sa.select(_m.c.id)
        .where(
            _m.c.organization_id == sa.bindparam("org"),
            _m.c.role == MemberRole.head_of_sales,
            _m.c.active.is_(True),
        )
        .order_by(_m.c.id)
        .limit(1)
        .scalar_subquery()
        .label("head_of_sales_id"),
    )
    .select_from(_owner.outerjoin(_manager, sa.and_(_manager.c.id == _owner.c.manager_id, _manager.c.active.is_(True))))
    .where(_owner.c.id.in_(sa.bindparam("owners", expanding=True)))
)
_BY_DEALS = sa.select(*_review.c).where(_review.c.deal_id.in_(sa.bindparam("deals", expanding=True))).with_for_update()
# What opening (or reopening) a review sets; the rest is the reviewer's and the seller's.
_OPENING_WRITES = (
    "owner_id",
    "reviewer_id",
    "status",
    "deal_reopened",
    "closed_at",
    "closed_week",
    "due_on",
    "amount_minor",
    "currency",
    "loss_reason_code",
    "loss_reason_confirmed",
    "competitor",
    "suggested_skills",
    "completed_at",
    "days_to_complete",
    "version",
    "updated_at",
)
_INSERT_REVIEWS = sa.insert(_review)
_UPDATE_REVIEWS = (
    sa.update(_review)
    .where(_review.c.id == sa.bindparam("b_id"))
    .values({name: sa.bindparam(f"b_{name}", type_=_review.c[name].type) for name in _OPENING_WRITES})
)


def visibility(actor: Actor) -> sa.ColumnElement[bool] | None:
    """Which reviews the actor sees, as a condition on ClosedLostReview; None means all of the
    organisation's. The seller and the reviewer see theirs, a manager their line's (transitively),
    heads of sales and admins every review."""
    if sees_every_review(actor):
        return None
    conditions = [ClosedLostReview.owner_id == actor.member_id, ClosedLostReview.reviewer_id == actor.member_id]
    if actor.role == MemberRole.manager:
        conditions.append(ClosedLostReview.owner_id.in_(line_ids(actor.organization_id, actor.member_id)))
    return sa.or_(*conditions)


class ReviewRepository:
    """The queries of this module, bound to one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_visible(
        self, actor: Actor, review_id: uuid.UUID, *, for_update: bool = False
    ) -> ClosedLostReview | None:
        stmt = sa.select(ClosedLostReview).where(
            ClosedLostReview.id == review_id, ClosedLostReview.organization_id == actor.organization_id
        )
        condition = visibility(actor)
        if condition is not None:
            stmt = stmt.where(condition)
        if for_update:
            stmt = stmt.with_for_update(of=ClosedLostReview).execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def id_of_deal(self, deal_id: uuid.UUID) -> uuid.UUID | None:
        """The id of the deal's review, if it has one."""
        stmt = sa.select(ClosedLostReview.id).where(ClosedLostReview.deal_id == deal_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_by_deal(self, deal_id: uuid.UUID) -> ClosedLostReview | None:
        """The deal's review, under a row lock (one review per deal, reused when it is lost again)."""
        stmt = (
            sa.select(ClosedLostReview)
            .where(ClosedLostReview.deal_id == deal_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def opening_facts(self, organization_id: uuid.UUID, owner_id: uuid.UUID, reason_code: str) -> sa.Row[Any]:
        """What opening a review reads, in one round trip: the organisation's due days, the loss
        reason's suggested skills, the owner's (active) manager and the first active head of sales."""
        owner, manager = _m.alias("owner"), _m.alias("manager")
        due_days = sa.select(Organization.review_due_days).where(Organization.id == organization_id)
        skills = sa.select(LossReason.suggested_skills).where(
            LossReason.organization_id == organization_id, LossReason.code == reason_code
        )
        manager_id = (
            sa.select(manager.c.id)
            .select_from(owner.join(manager, manager.c.id == owner.c.manager_id))
            .where(owner.c.id == owner_id, manager.c.active.is_(True))
        )
        head_of_sales_id = (
            sa.select(_m.c.id)
            .where(
                _m.c.organization_id == organization_id,
                _m.c.role == MemberRole.head_of_sales,
                _m.c.active.is_(True),
            )
            .order_by(_m.c.id)
            .limit(1)
        )
        stmt = sa.select(
            due_days.scalar_subquery().label("review_due_days"),
            skills.scalar_subquery().label("suggested_skills"),
            manager_id.scalar_subquery().label("manager_id"),
            head_of_sales_id.scalar_subquery().label("head_of_sales_id"),
        )
        return (await self.session.execute(stmt)).one()

    async def opening_facts_of_owners(
        self, organization_id: uuid.UUID, owner_ids: Iterable[uuid.UUID]
    ) -> list[sa.Row[Any]]:
        """``opening_facts`` for many owners at once (the loss reasons' skills come from the
        catalog): a row per owner with ``owner_id``, ``manager_id`` (active, or None),
        ``review_due_days`` and ``head_of_sales_id``."""
        params = {"org": organization_id, "owners": list(set(owner_ids))}
        return list((await self.session.execute(_OPENING_FACTS, params)).all())

    async def by_deals(self, deal_ids: Iterable[uuid.UUID]) -> list[sa.Row[Any]]:
        """The reviews of these deals, every column, under row locks (as ``get_by_deal``)."""
        ids = list(set(deal_ids))
        if not ids:
            return []
        return list((await self.session.execute(_BY_DEALS, {"deals": ids})).all())

    async def insert_many(self, reviews: Sequence[dict[str, Any]]) -> None:
        """New reviews, each a dict of every column."""
        if reviews:
            await self.session.execute(_INSERT_REVIEWS, list(reviews))

    async def update_many(self, reviews: Sequence[dict[str, Any]]) -> None:
        """Reused or reopened reviews, each a dict of every column; what opening sets is written."""
        if reviews:
            await self.session.execute(
                _UPDATE_REVIEWS,
                [{"b_id": r["id"]} | {f"b_{name}": r[name] for name in _OPENING_WRITES} for r in reviews],
            )

    async def list_page(
        self,
        actor: Actor,
        *,
        after: uuid.UUID | None,
        limit: int,
        status: ReviewStatus | None = None,
        reviewer_id: uuid.UUID | None = None,
        owner_id: uuid.UUID | None = None,
        deal_id: uuid.UUID | None = None,
        week: str | None = None,
        closed_from: dt.datetime | None = None,
        closed_before: dt.datetime | None = None,
    ) -> list[ClosedLostReview]:
        stmt = sa.select(ClosedLostReview).where(ClosedLostReview.organization_id == actor.organization_id)
        condition = visibility(actor)
        if condition is not None:
            stmt = stmt.where(condition)
        if status is not None:
            stmt = stmt.where(ClosedLostReview.status == status)
        if reviewer_id is not None:
            stmt = stmt.where(ClosedLostReview.reviewer_id == reviewer_id)
        if owner_id is not None:
            stmt = stmt.where(ClosedLostReview.owner_id == owner_id)
        if deal_id is not None:  # one review per deal (a unique index)
            stmt = stmt.where(ClosedLostReview.deal_id == deal_id)
        if week is not None:
            stmt = stmt.where(ClosedLostReview.closed_week == week)
        if closed_from is not None:
            stmt = stmt.where(ClosedLostReview.closed_at >= closed_from)
        if closed_before is not None:
            stmt = stmt.where(ClosedLostReview.closed_at < closed_before)
        if after is not None:
            stmt = stmt.where(ClosedLostReview.id > after)
        stmt = stmt.order_by(ClosedLostReview.id).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def notes_of(self, review_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[LeadershipNote]]:
        """Leadership notes of many reviews in one query, oldest first."""
        notes: dict[uuid.UUID, list[LeadershipNote]] = {review_id: [] for review_id in review_ids}
        if not review_ids:
            return notes
        stmt = (
            sa.select(LeadershipNote)
            .where(LeadershipNote.review_id.in_(list(review_ids)))
            .order_by(LeadershipNote.review_id, LeadershipNote.id)
        )
        for note in (await self.session.execute(stmt)).scalars():
            notes[note.review_id].append(note)
        return notes

    async def replace_skill_gaps(self, organization_id: uuid.UUID, review_id: uuid.UUID, codes: Iterable[str]) -> None:
        """Keep one ReviewSkillGap row per skill gap the review names (analytics group on them)."""
        table = ReviewSkillGap.__table__
        await self.session.execute(sa.delete(table).where(table.c.review_id == review_id))
        rows = [{"review_id": review_id, "skill_code": code, "organization_id": organization_id} for code in codes]
        if rows:
            await self.session.execute(sa.insert(table), rows)

    async def active_member_ids(self, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        wanted = list(set(ids))
        if not wanted:
            return set()
        stmt = sa.select(_m.c.id).where(
            _m.c.organization_id == organization_id, _m.c.id.in_(wanted), _m.c.active.is_(True)
        )
        return set((await self.session.execute(stmt)).scalars())

    async def weekly_rows(
        self, organization_id: uuid.UUID, week: str, reviewer_id: uuid.UUID | None
    ) -> list[sa.Row[Any]]:
        """A week's losses (reviews of deals not since reopened) with their deal's name; plain rows.
        ``reviewer_id`` limits them to one reviewer's agenda."""
        r = ClosedLostReview.__table__
        stmt = (
            sa.select(
                r.c.id,
                r.c.deal_id,
                Deal.name.label("deal_name"),
                r.c.owner_id,
                r.c.reviewer_id,
                r.c.amount_minor,
                r.c.currency,
                r.c.status,
                r.c.due_on,
            )
            .select_from(r.join(Deal, Deal.id == r.c.deal_id))
            .where(r.c.organization_id == organization_id, r.c.closed_week == week, r.c.deal_reopened.is_(False))
        )
        if reviewer_id is not None:
            stmt = stmt.where(r.c.reviewer_id == reviewer_id)
        stmt = stmt.order_by(r.c.closed_at, r.c.id)
        return list((await self.session.execute(stmt)).all())
