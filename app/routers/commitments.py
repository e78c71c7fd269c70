from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.deps import ActorDep, Expansions, IdempotencyDeps, PageDep, UowDep
from app.domain import errors as de
from app.domain.development import CommitmentStatus
from app.errors import problem_responses
from app.http.responses import ETAG_HEADER, set_etag
from app.http.routes import ApiRoute
from app.routers.expansion import expanded
from app.schemas.development import CommitmentClose, CommitmentPage, CommitmentPublic
from app.services import commitments as service

router = APIRouter(prefix="/v1", tags=["commitments"], route_class=ApiRoute)
_CURRENT = {200: {"headers": ETAG_HEADER}}


def render_commitment(view: service.CommitmentView, response: Response | None = None) -> CommitmentPublic:
    commitment = view.commitment
    if response is not None:
        set_etag(response, commitment.version)
    return CommitmentPublic(
        id=commitment.id,
        member_id=commitment.member_id,
        source=commitment.source,
        source_id=commitment.source_id,
        deal_id=commitment.deal_id,
        text=commitment.text,
        skill_code=commitment.skill_code,
        due_on=commitment.due_on,
        status=commitment.status,
        overdue=view.overdue,
        note=commitment.note,
        version=commitment.version,
        created_at=commitment.created_at,
        closed_at=commitment.closed_at,
    )


@router.get("/commitments", response_model=CommitmentPage, responses=problem_responses())
async def list_commitments(
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    member_id: uuid.UUID | None = None,
    status: CommitmentStatus | None = None,
    deal_id: uuid.UUID | None = None,
    expand: Expansions = None,
) -> CommitmentPage:
    """Commitments the caller may see (their own, their line's, all for heads of sales), newest first."""
    result = await service.list_commitments(uow, actor, page, member_id=member_id, status=status, deal_id=deal_id)
    items = [render_commitment(v) for v in result.items]
    return await expanded(uow, actor, CommitmentPage(items=items, next_cursor=result.next_cursor), expand)


@router.get(
    "/commitments/{commitment_id}",
    response_model=CommitmentPublic,
    responses={**_CURRENT, **problem_responses(404)},
)
async def get_commitment(
    commitment_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    response: Response,
    expand: Expansions = None,
) -> CommitmentPublic:
    """One commitment (the member who made it, their management line, heads of sales)."""
    commitment = render_commitment(await service.get_commitment(uow, actor, commitment_id), response)
    return await expanded(uow, actor, commitment, expand)


@router.post(
    "/commitments/{commitment_id}/complete",
    response_model=CommitmentPublic,
    responses={**_CURRENT, **problem_responses(404, de.OwnerDecides, de.CommitmentClosed)},
    dependencies=IdempotencyDeps,
)
async def complete_commitment(
    commitment_id: uuid.UUID, actor: ActorDep, uow: UowDep, response: Response, body: CommitmentClose | None = None
) -> CommitmentPublic:
    """Mark an open commitment done, with an optional note (the member who made it)."""
    note = body.note if body is not None else None
    return render_commitment(await service.complete_commitment(uow, actor, commitment_id, note), response)


@router.post(
    "/commitments/{commitment_id}/drop",
    response_model=CommitmentPublic,
    responses={**_CURRENT, **problem_responses(404, de.OwnerDecides, de.CommitmentClosed)},
    dependencies=IdempotencyDeps,
)
async def drop_commitment(
    commitment_id: uuid.UUID, actor: ActorDep, uow: UowDep, response: Response, body: CommitmentClose | None = None
) -> CommitmentPublic:
    """Drop an open commitment, with an optional note saying why (the member who made it)."""
    note = body.note if body is not None else None
    return render_commitment(await service.drop_commitment(uow, actor, commitment_id, note), response)
