from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from app.deps import ActorDep, Expansions, IdempotencyDeps, IfMatchDep, PageDep, UowDep
from app.domain import errors as de
from app.domain.approvals import ApprovalStatus
from app.errors import problem_responses
from app.http.responses import ETAG_HEADER, LOCATION_HEADER, set_etag, set_location
from app.http.routes import ApiRoute
from app.routers.expansion import expanded
from app.schemas.approvals import (
    ApprovalCreate,
    ApprovalDecision,
    ApprovalPage,
    ApprovalPublic,
    ApprovalRevocation,
    ApprovalUpdate,
)
from app.services import approvals as service

router = APIRouter(prefix="/v1", tags=["approvals"], route_class=ApiRoute)
_DECISION = {
    "responses": problem_responses(404, de.Forbidden, de.ApprovalNotPending),
    "dependencies": IdempotencyDeps,
}

_UPDATE_DESCRIPTION = """\
Approvals have no write path after the request: this operation exists only to refuse a change.

Every PATCH answers 409 and changes nothing. An approved approval answers
`approved_terms_immutable`; a rejected or revoked one `approval_not_pending`; a pending one
`conflict` (its terms are what the approver is deciding on). To change terms, request a new
approval. A stale `If-Match` answers 412 `version_conflict` first.
"""
_UPDATE_409 = (
    "Always: `approved_terms_immutable` (approved), `approval_not_pending` (rejected or revoked), "
    "`conflict` (pending); a change is a new approval"
)


def _with_description(
    responses: dict[int | str, dict[str, Any]], code: int, description: str
) -> dict[int | str, dict[str, Any]]:
    return {**responses, code: {**responses[code], "description": description}}


@router.post(
    "/deals/{deal_id}/approvals",
    status_code=status.HTTP_201_CREATED,
    response_model=ApprovalPublic,
    responses={
        201: {"headers": LOCATION_HEADER},
        **problem_responses(404, de.Forbidden, de.DealClosed, de.ApproverNotInLine),
    },
    dependencies=IdempotencyDeps,
)
async def create_approval(
    deal_id: uuid.UUID, body: ApprovalCreate, actor: ActorDep, uow: UowDep, response: Response
) -> ApprovalPublic:
    """Ask someone in the owner's management line to sign off on explicit terms (the deal's owner only)."""
    approval = await service.create_approval(uow, actor, deal_id, body)
    set_location(response, f"/v1/approvals/{approval.id}")
    set_etag(response, approval.version)
    return ApprovalPublic.model_validate(approval)


@router.get("/deals/{deal_id}/approvals", response_model=ApprovalPage, responses=problem_responses(404))
async def list_deal_approvals(
    deal_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    status: ApprovalStatus | None = None,
    expand: Expansions = None,
) -> ApprovalPage:
    """The approvals requested on a deal, oldest first."""
    result = await service.list_deal_approvals(uow, actor, deal_id, page, status)
    items = [ApprovalPublic.model_validate(a) for a in result.items]
    return await expanded(uow, actor, ApprovalPage(items=items, next_cursor=result.next_cursor), expand)


@router.get(
    "/approvals/{approval_id}",
    response_model=ApprovalPublic,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(404)},
)
async def get_approval(
    approval_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    response: Response,
    expand: Expansions = None,
) -> ApprovalPublic:
    """One approval (visible to its approver and to whoever sees the deal)."""
    approval = await service.get_approval(uow, actor, approval_id)
    set_etag(response, approval.version)
    return await expanded(uow, actor, ApprovalPublic.model_validate(approval), expand)


@router.patch(
    "/approvals/{approval_id}",
    response_model=ApprovalPublic,
    description=_UPDATE_DESCRIPTION,
    responses={
        200: {"description": "Never answered: every change is refused"},
        **_with_description(
            problem_responses(404, 412, de.ApprovalNotPending, de.ApprovedTermsImmutable, de.Conflict), 409, _UPDATE_409
        ),
    },
)
async def update_approval(
    approval_id: uuid.UUID, body: ApprovalUpdate, actor: ActorDep, uow: UowDep, if_match: IfMatchDep
) -> ApprovalPublic:
    """Refuse any change: terms have no write path after the request; a change is a new approval."""
    await service.update_approval(uow, actor, approval_id, body, if_match)


@router.post("/approvals/{approval_id}/approve", response_model=ApprovalPublic, **_DECISION)
async def approve_approval(
    approval_id: uuid.UUID, actor: ActorDep, uow: UowDep, body: ApprovalDecision | None = None
) -> ApprovalPublic:
    """Sign off on the requested terms (the approver only); from now on they never change."""
    note = body.note if body else None
    return ApprovalPublic.model_validate(await service.approve_approval(uow, actor, approval_id, note))


@router.post("/approvals/{approval_id}/reject", response_model=ApprovalPublic, **_DECISION)
async def reject_approval(
    approval_id: uuid.UUID, actor: ActorDep, uow: UowDep, body: ApprovalDecision | None = None
) -> ApprovalPublic:
    """Turn down the requested terms (the approver only), optionally saying why."""
    note = body.note if body else None
    return ApprovalPublic.model_validate(await service.reject_approval(uow, actor, approval_id, note))


@router.post(
    "/approvals/{approval_id}/rely",
    response_model=ApprovalPublic,
    responses=problem_responses(404, de.OwnerDecides, de.ApprovalNotApproved),
    dependencies=IdempotencyDeps,
)
async def rely_on_approval(approval_id: uuid.UUID, actor: ActorDep, uow: UowDep) -> ApprovalPublic:
    """Record that an offer relying on this approval went to the customer (the owner only; idempotent)."""
    return ApprovalPublic.model_validate(await service.rely_on_approval(uow, actor, approval_id))


@router.post(
    "/approvals/{approval_id}/revoke",
    response_model=ApprovalPublic,
    responses=problem_responses(404, 422, de.Forbidden, de.ApprovalNotApproved, de.ApprovalReliedUpon),
    dependencies=IdempotencyDeps,
)
async def revoke_approval(
    approval_id: uuid.UUID, body: ApprovalRevocation, actor: ActorDep, uow: UowDep
) -> ApprovalPublic:
    """Revoke an approved approval, with a reason: the approver or a head of sales; once relied upon, the owner."""
    return ApprovalPublic.model_validate(await service.revoke_approval(uow, actor, approval_id, body.reason))
