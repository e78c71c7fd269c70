"""My tasks, in one statement: the API key's member, and everything waiting on them across deals.

Each kind of task that waits on the member themself is one SELECT that finds the rows in the state
that waits on them by an index on (organisation, member, state, time), newest first, at most a
page of them, joined to their deals. The kinds that wait on a deal's owner (a proposed role, an
open suggestion) are found by (organisation, state, time) and merged newest first before their
deals are read, so only the deals of what makes the page are read (the owner is the deal's).
The parts are a UNION ALL, ordered by (created_at, id) and cut to the page. A page after the
first resumes below the last (created_at, id) in every kind alike (keyset), so a deep page costs
what the first does. Like the deal reads (app/db/repositories/reads.py), the statement reads the
key's member itself and runs in autocommit: one round trip, no transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models import (
    Approval,
    Assignment,
    ClosedLostReview,
    Commitment,
    Deal,
    Observation,
    StrategyNextStep,
    Suggestion,
)
from app.db.repositories.auth import actor_params
from app.db.repositories.reads import ME, VISIBLE, fetch_rows, with_actor
from app.db.types import UTCDateTime
from app.domain.approvals import ApprovalStatus
from app.domain.assignments import AssignmentStatus
from app.domain.calls import ObservationStatus
from app.domain.deals import CLOSED_STAGES
from app.domain.development import CommitmentStatus
from app.domain.oidc import SignedIn
from app.domain.reviews import ReviewStatus
from app.domain.strategy import NextStepStatus, SuggestionStatus
from app.domain.tasks import TaskKind

_d = Deal.__table__
_step = StrategyNextStep.__table__
_assignment = Assignment.__table__
_suggestion = Suggestion.__table__
_approval = Approval.__table__
_observation = Observation.__table__
_review = ClosedLostReview.__table__
_commitment = Commitment.__table__

_LIMIT = sa.bindparam("limit", type_=sa.Integer())
_AFTER_AT = sa.bindparam("after_at", type_=UTCDateTime())
_AFTER_ID = sa.bindparam("after_id", type_=sa.Uuid())
_NO_TEXT = sa.cast(sa.null(), sa.String())
_NO_DATE = sa.cast(sa.null(), sa.Date())


def _is(column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
    # A literal, not a parameter: each kind's state is part of the statement its plan is made for.
    return column == sa.literal_column(f"'{value}'")


@dataclass(frozen=True, slots=True)
class _Kind:
    """Where one kind of task lives and what it shows."""

    table: sa.Table
    id: sa.ColumnElement[Any]
    label: sa.ColumnElement[Any]
    detail: sa.ColumnElement[Any]
    due_on: sa.ColumnElement[Any]
    created_at: sa.ColumnElement[Any]
    waiting: tuple[sa.ColumnElement[bool], ...]  # the member it waits on, in the state that waits
    on_owned_deal: bool = False  # waits on the deal's owner (``waiting`` holds the state alone)


def _me(me: sa.CTE) -> tuple[sa.ScalarSelect[Any], sa.ScalarSelect[Any]]:
    """The caller's member id and organisation, as scalars of the ``me`` CTE."""
    return sa.select(me.c.id).scalar_subquery(), sa.select(me.c.organization_id).scalar_subquery()


def _kinds(me: sa.CTE, visible: sa.ColumnElement[bool]) -> dict[TaskKind, _Kind]:
    """The kinds, for the caller's member ``me`` (a CTE of id, organization_id, role) and the deals
    they see (``visible``, a condition on Deal)."""
    s, a, g, p, o, r, c = _step.c, _assignment.c, _suggestion.c, _approval.c, _observation.c, _review.c, _commitment.c
    me_id, me_org = _me(me)
    open_deal = _d.c.stage.not_in([sa.literal_column(f"'{stage.value}'") for stage in sorted(CLOSED_STAGES)])
    review_open = (_is(r.status, ReviewStatus.pending), sa.not_(r.deal_reopened))
    kinds = {
        # A step of a closed deal's strategy can no longer be done (the strategy is read-only), and
        # one on a deal the member does not see (a request for help not yet accepted) waits on that.
        TaskKind.next_step: _Kind(
            _step,
            s.id,
            _NO_TEXT,
            s.description,
            s.due_date,
            s.assigned_at,
            (s.assignee_id == me_id, _is(s.status, NextStepStatus.open), open_deal, visible),
        ),
        TaskKind.assignment_request: _Kind(
            _assignment,
            a.id,
            a.role,
            a.purpose,
            _NO_DATE,
            a.created_at,
            (a.member_id == me_id, _is(a.status, AssignmentStatus.requested)),
        ),
        TaskKind.assignment_proposal: _Kind(
            _assignment,
            a.id,
            a.role,
            a.purpose,
            _NO_DATE,
            a.created_at,
            (_is(a.status, AssignmentStatus.proposed),),
            on_owned_deal=True,
        ),
        TaskKind.suggestion: _Kind(
            _suggestion,
            g.id,
            g.section,
            g.body,
            _NO_DATE,
            g.created_at,
            (_is(g.status, SuggestionStatus.open),),
            on_owned_deal=True,
        ),
        TaskKind.approval: _Kind(
            _approval,
            p.id,
            _NO_TEXT,
            _NO_TEXT,
            _NO_DATE,
            p.created_at,
            (p.approver_id == me_id, _is(p.status, ApprovalStatus.pending)),
        ),
        TaskKind.observation_to_share: _Kind(
            _observation,
            o.id,
            _NO_TEXT,
            o.summary,
            _NO_DATE,
            o.created_at,
            (o.observer_id == me_id, _is(o.status, ObservationStatus.draft)),
        ),
        # Waiting since it was shared.
        TaskKind.observation_to_acknowledge: _Kind(
            _observation,
            o.id,
            _NO_TEXT,
            o.summary,
            _NO_DATE,
            o.shared_at,
            (o.seller_id == me_id, _is(o.status, ObservationStatus.shared)),
        ),
        # Waiting since the loss that (re)opened it; a review whose deal was reopened waits on no one.
        TaskKind.review_to_complete: _Kind(
            _review,
            r.id,
            r.loss_reason_code,
            _NO_TEXT,
            r.due_on,
            r.closed_at,
            (r.reviewer_id == me_id, *review_open),
        ),
        TaskKind.review_to_reflect: _Kind(
            _review,
            r.id,
            r.loss_reason_code,
            _NO_TEXT,
            r.due_on,
            r.closed_at,
            (
                r.owner_id == me_id,
                *review_open,
                sa.or_(r.seller_reflection.is_(None), r.seller_reflection == sa.literal_column("''")),
            ),
        ),
        TaskKind.commitment: _Kind(
            _commitment,
            c.id,
            _NO_TEXT,
            c.text,
            c.due_on,
            c.created_at,
            (c.member_id == me_id, _is(c.status, CommitmentStatus.open)),
        ),
    }
    # Every row of the member's own organisation only.
    return {
        kind: replace(spec, waiting=(spec.table.c.organization_id == me_org, *spec.waiting))
        for kind, spec in kinds.items()
    }


def _resuming(spec: _Kind, after: bool) -> list[sa.ColumnElement[bool]]:
    """What a kind's rows must meet: waiting, and below the cursor when there is one."""
    conditions = list(spec.waiting)
    if after:
        # The first bound is implied by the second; it is there for the index: the scan starts at
        # the cursor instead of filtering out everything newer (what makes a deep page cost more).
        conditions.append(spec.created_at <= _AFTER_AT)
        conditions.append(sa.or_(spec.created_at < _AFTER_AT, spec.id < _AFTER_ID))
    return conditions


def _branch(kind: TaskKind, spec: _Kind, after: bool) -> sa.Select[Any]:
    """One kind's tasks: at most a page, newest first, below the cursor when there is one."""
    rows = (
        sa.select(
            sa.literal_column(f"'{kind.value}'").label("kind"),
            spec.id.label("id"),
            _d.c.id.label("deal_id"),
            _d.c.name.label("deal_name"),
            spec.label.label("label"),
            spec.detail.label("detail"),
            spec.due_on.label("due_on"),
            spec.created_at.label("created_at"),
        )
        .select_from(spec.table.join(_d, _d.c.id == spec.table.c.deal_id))
        .where(*_resuming(spec, after))
        .order_by(spec.created_at.desc(), spec.id.desc())
        .limit(_LIMIT)
        .subquery(f"t_{kind.value}")
    )
    # Wrapped: SQLite takes ORDER BY and LIMIT in a UNION's parts only inside a subquery.
    return sa.select(*rows.c)


def _on_owned_deals(me: sa.CTE, kinds: list[tuple[TaskKind, _Kind]], after: bool) -> sa.Select[Any]:
    """The tasks of these kinds, which wait on the deal's owner: at most a page, newest first.

    The open rows of every kind are merged newest first before their deals are read, and the
    deals are read until the page is full: a page of 50 reads about 50 deals by primary key, where
    a page of each kind read before merging would read 50 per kind. The deal's owner is compared
    with IS NOT DISTINCT FROM (the same as = here, owner and member never NULL), which no index
    can serve: with =, PostgreSQL may read all the owner's deals by the owner index and hash them
    (25,000 for one seller in the bench, 20 ms a page) to find the few with an open task.
    """
    parts = [
        sa.select(
            sa.literal_column(f"'{kind.value}'").label("kind"),
            spec.id.label("id"),
            spec.table.c.deal_id.label("deal_id"),
            spec.label.label("label"),
            spec.detail.label("detail"),
            spec.due_on.label("due_on"),
            spec.created_at.label("created_at"),
        ).where(*_resuming(spec, after))
        for kind, spec in kinds
    ]
    newest_first = (sa.literal_column("created_at").desc(), sa.literal_column("id").desc())
    merged = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).order_by(*newest_first).subquery("owned")
    me_id, me_org = _me(me)
    rows = (
        sa.select(
            merged.c.kind,
            merged.c.id,
            _d.c.id.label("deal_id"),
            _d.c.name.label("deal_name"),
            merged.c.label,
            merged.c.detail,
            merged.c.due_on,
            merged.c.created_at,
        )
        .select_from(merged.join(_d, _d.c.id == merged.c.deal_id))
        .where(_d.c.organization_id == me_org, _d.c.owner_id.is_not_distinct_from(me_id))
        .order_by(merged.c.created_at.desc(), merged.c.id.desc())
        .limit(_LIMIT)
        .subquery("t_owned")
    )
    return sa.select(*rows.c)


def _listing(me: sa.CTE, visible: sa.ColumnElement[bool], kinds: tuple[TaskKind, ...], after: bool) -> sa.Subquery:
    """A page of the tasks of these kinds of the member ``me``, newest first."""
    specs = _kinds(me, visible)
    branches = [_branch(kind, specs[kind], after) for kind in kinds if not specs[kind].on_owned_deal]
    owned = [(kind, specs[kind]) for kind in kinds if specs[kind].on_owned_deal]
    if owned:
        branches.append(_on_owned_deals(me, owned, after))
    tasks = (branches[0] if len(branches) == 1 else sa.union_all(*branches)).subquery("tasks")
    newest_first = (tasks.c.created_at.desc(), tasks.c.id.desc())
    return sa.select(*tasks.c).order_by(*newest_first).limit(_LIMIT).subquery("page")


@functools.cache
def _tasks_page(kinds: tuple[TaskKind, ...], after: bool, by_token: bool) -> sa.Select[Any]:
    """The listing for one set of kinds and caller kind (API key or sign-in token), built once;
    the caller, the cursor and the limit are bound at execution."""
    page = _listing(ME[by_token], VISIBLE[by_token], kinds, after)
    return with_actor(ME[by_token], page).order_by(page.c.created_at.desc(), page.c.id.desc())


@dataclass(frozen=True, slots=True)
class TaskListing:
    """What a page of tasks asks for: the kinds (all when None) and where it resumes."""

    kinds: Sequence[TaskKind] | None
    after: tuple[dt.datetime, uuid.UUID] | None
    limit: int


class TaskReads:
    """The member's tasks, bound to an engine whose connections run in autocommit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(self, credential: str | SignedIn, listing: TaskListing) -> tuple[uuid.UUID, list[Any]] | None:
        """None: the caller (an API key's hash or a verified token) is unknown. Otherwise the
        caller's organisation and up to ``listing.limit``
        tasks, newest first (rows of kind, id, deal_id, deal_name, label, detail, due_on, created_at)."""
        wanted = set(listing.kinds or TaskKind)
        kinds = tuple(kind for kind in TaskKind if kind in wanted)  # one statement per set of kinds
        stmt = _tasks_page(kinds, listing.after is not None, not isinstance(credential, str))
        params = actor_params(credential)
        params["limit"] = listing.limit
        if listing.after is not None:
            params["after_at"], params["after_id"] = listing.after
        rows = await fetch_rows(self.engine, stmt, params)
        if not rows:
            return None
        return rows[0].actor_organization_id, [row for row in rows if row.id is not None]
