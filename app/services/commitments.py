"""Commitments: made in a debrief or by a completed review, tracked by the member until done or
dropped, read by the member's management line."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.db.models import Commitment
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.development import (
    CommitmentSource,
    CommitmentStatus,
    NewCommitment,
    ensure_can_close_commitment,
    is_overdue,
)
from app.domain.errors import NotFound
from app.domain.ids import uuid7
from app.domain.members import Actor
from app.services.pagination import PageRequest, PageResult, after_id, build_page

LISTING = "commitments"


@dataclass
class CommitmentView:
    commitment: Commitment
    overdue: bool


def view(commitment: Commitment) -> CommitmentView:
    return CommitmentView(commitment, is_overdue(commitment, utcnow().date()))


# --- made inside the debrief's or the review's transaction ---------------------------


async def record_commitments(
    uow: UnitOfWork,
    actor: Actor,
    *,
    source: CommitmentSource,
    source_id: uuid.UUID,
    deal_id: uuid.UUID,
    made: Sequence[NewCommitment],
) -> list[Commitment]:
    """Record what was committed to, each once per source; the caller commits."""
    if not made:
        return []
    already = await uow.commitments.made_from(source_id)
    now = utcnow()
    ids = iter(sorted(uuid7() for _ in made))  # ids minted in one millisecond keep the given order
    rows = []
    for item in made:
        if (item.member_id, item.text) in already:
            continue
        already.add((item.member_id, item.text))
        rows.append(
            Commitment(
                id=next(ids),
                organization_id=actor.organization_id,
                member_id=item.member_id,
                source=source,
                source_id=source_id,
                deal_id=deal_id,
                text=item.text,
                skill_code=item.skill_code,
                due_on=item.due_on,
                status=CommitmentStatus.open,
                created_at=now,
                updated_at=now,
            )
        )
    uow.add_all(rows)
    await uow.flush()
    for row in rows:
        await _event(
            uow,
            actor,
            row,
            "created",
            {
                "source": str(row.source),
                "source_id": str(row.source_id),
                "skill_code": row.skill_code,
                "due_on": row.due_on.isoformat() if row.due_on else None,
            },
        )
    return rows


# --- reading ------------------------------------------------------------------------


async def visible_commitment(
    uow: UnitOfWork, actor: Actor, commitment_id: uuid.UUID, *, for_update: bool = False
) -> Commitment:
    """The commitment if the actor may see it (the member, their line, heads of sales); else 404."""
    commitment = await uow.commitments.get_visible(actor, commitment_id, for_update=for_update)
    if commitment is None:
        raise NotFound("No commitment with this id.")
    return commitment


async def get_commitment(uow: UnitOfWork, actor: Actor, commitment_id: uuid.UUID) -> CommitmentView:
    return view(await visible_commitment(uow, actor, commitment_id))


async def list_commitments(
    uow: UnitOfWork,
    actor: Actor,
    page: PageRequest,
    *,
    member_id: uuid.UUID | None,
    status: CommitmentStatus | None,
    deal_id: uuid.UUID | None,
) -> PageResult[CommitmentView]:
    rows = await uow.commitments.list_page(
        actor,
        member_id=member_id,
        status=status,
        deal_id=deal_id,
        before=after_id(LISTING, page),
        limit=page.limit + 1,
    )
    result = build_page(LISTING, page, rows)
    return PageResult([view(c) for c in result.items], result.next_cursor)


# --- closing --------------------------------------------------------------------------


async def complete_commitment(
    uow: UnitOfWork, actor: Actor, commitment_id: uuid.UUID, note: str | None
) -> CommitmentView:
    """The member who committed says it is done."""
    return await _close(uow, actor, commitment_id, CommitmentStatus.done, note)


async def drop_commitment(uow: UnitOfWork, actor: Actor, commitment_id: uuid.UUID, note: str | None) -> CommitmentView:
    """The member who committed lets it go, visibly."""
    return await _close(uow, actor, commitment_id, CommitmentStatus.dropped, note)


async def _close(
    uow: UnitOfWork, actor: Actor, commitment_id: uuid.UUID, status: CommitmentStatus, note: str | None
) -> CommitmentView:
    async with uow:
        commitment = await visible_commitment(uow, actor, commitment_id, for_update=True)
        ensure_can_close_commitment(actor, commitment)
        now = utcnow()
        commitment.status = status
        commitment.note = note or None
        commitment.closed_at = commitment.updated_at = now
        commitment.version += 1
        await uow.flush()
        verb = "completed" if status == CommitmentStatus.done else "dropped"
        await _event(uow, actor, commitment, verb, {})
        await uow.commit()
    return view(commitment)


async def _event(uow: UnitOfWork, actor: Actor, commitment: Commitment, verb: str, data: dict[str, Any]) -> None:
    # Ids and dates only: the deal's history is read by more people than the commitment.
    await uow.events.record(
        actor,
        f"commitment.{verb}",
        subject_type="commitment",
        subject_id=commitment.id,
        deal_id=commitment.deal_id,
        data={"member_id": str(commitment.member_id), **data},
    )
