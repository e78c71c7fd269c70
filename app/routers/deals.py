from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import TypeAdapter, ValidationError

from app.deps import ActorDep, CallerDep, CallerPageDep, Expansions, IdempotencyDeps, IfMatchDep, PageDep, UowDep
from app.domain import errors as de
from app.domain.deals import DealStatus, Loss, Stage, status_of
from app.domain.money import Money
from app.errors import problem_fields, problem_responses, read_only_fields, validation_problem_fields
from app.http.idempotency import claimed_with_response
from app.http.responses import ETAG_HEADER, LOCATION_HEADER, etag, plain_json_response, set_etag, set_location
from app.http.routes import ApiRoute, served_plain
from app.routers import expansion
from app.schemas.common import JSON_INSPECTED, IsoDate, SafeText, UtcDatetime
from app.schemas.deals import (
    BatchProblem,
    DealBatch,
    DealBatchRecord,
    DealBatchResults,
    DealCreate,
    DealPage,
    DealPublic,
    DealUpdate,
    DealUpsert,
    ExternalId,
    ListFilters,
    Source,
)
from app.schemas.events import EventPage, EventPublic
from app.schemas.expand import Expand
from app.services import deal_batch
from app.services import deal_reads as reads
from app.services import deals as service
from app.services import events as events_service
from app.services.auth import Caller

router = APIRouter(prefix="/v1", tags=["deals"], route_class=ApiRoute)


def render(view: service.DealView | reads.DealRow) -> DealPublic:
    return DealPublic.model_validate(fields_of(view))


def fields_of(view: service.DealView | reads.DealRow) -> dict[str, Any]:
    """A deal as the plain data of DealPublic (validated once, by the caller, in pydantic's core).
    Money and loss render as in the deal's history; the row's own values are kept typed, since
    this runs for every item of a page."""
    deal = view.deal
    amount = None if deal.amount_minor is None else Money(deal.amount_minor, deal.currency).to_json()
    loss = None
    if deal.loss_reason_code is not None:
        loss = Loss(deal.loss_reason_code, deal.loss_competitor, deal.loss_detail).to_json()
    return {
        "id": deal.id,
        "name": deal.name,
        "account_name": deal.account_name,
        "amount": amount,
        "expected_close_date": deal.expected_close_date,
        "stage": deal.stage,
        "status": status_of(deal.stage),
        "owner_id": deal.owner_id,
        "closed_at": deal.closed_at,
        "loss": loss,
        "review_id": view.review_id,
        "external_refs": view.ref_documents,
        "version": deal.version,
        "created_at": deal.created_at,
        "updated_at": deal.updated_at,
    }


async def list_filters(
    owner_id: uuid.UUID | None = None,
    stage: Stage | None = None,
    status: DealStatus | None = None,
    closed_from: Annotated[IsoDate | None, Query(description="Closed on or after this day (UTC)")] = None,
    closed_to: Annotated[IsoDate | None, Query(description="Closed on or before this day (UTC)")] = None,
    updated_since: Annotated[UtcDatetime | None, Query(description="Changed at or after this instant")] = None,
    q: Annotated[SafeText | None, Query(max_length=100, description="Substring of the name or account name")] = None,
) -> ListFilters:
    return ListFilters(
        owner_id=owner_id,
        stage=stage,
        status=status,
        closed_from=closed_from,
        closed_to=closed_to,
        updated_since=updated_since,
        q=(q or "").strip() or None,
    )


@router.post(
    "/deals",
    status_code=status.HTTP_201_CREATED,
    response_model=DealPublic,
    responses={
        201: {"headers": LOCATION_HEADER},
        **problem_responses(
            de.Forbidden,
            de.ExternalRefTaken,
            de.LossReasonRequired,
            de.LossRequiresClosedLost,
            de.OwnerMustBeSeller,
            de.UnknownLossReason,
        ),
    },
    dependencies=IdempotencyDeps,
)
@served_plain
@claimed_with_response
async def create_deal(body: DealCreate, caller: CallerDep, uow: UowDep) -> Response:
    """Create a deal owned by a seller (the seller themself, their manager, leadership or an integration)."""
    view = await service.create_deal_of_caller(uow, caller, body)
    deal = view.deal
    headers = {"Location": f"/v1/deals/{deal.id}", "ETag": etag(deal.version)}
    return plain_json_response(fields_of(view), headers=headers, status_code=status.HTTP_201_CREATED)


@router.get("/deals", response_model=DealPage, responses=problem_responses())
@served_plain
async def list_deals(
    caller: CallerDep,
    page: CallerPageDep,
    filters: Annotated[ListFilters, Depends(list_filters)],
    expand: Expansions = None,
) -> Response:
    """Deals the caller can see, oldest first, filtered."""
    result = await reads.list_deals(caller, page, filters)
    document = {"items": [fields_of(v) for v in result.items], "next_cursor": result.next_cursor}
    return plain_json_response(await _with_members(caller, document, result.items, expand))


@router.post(
    "/deals/batch-upsert",
    response_model=DealBatchResults,
    responses=problem_responses(),
    dependencies=IdempotencyDeps,
)
async def batch_upsert_deals(body: DealBatch, actor: ActorDep, uow: UowDep) -> Response:
    """Upsert up to 500 deals by external reference; one result per record, in order.

    The records are applied in order, in one transaction, each as its own upsert by external
    reference would be: a bad record is reported with a problem and never spoils the others.
    """
    results: list[dict[str, Any] | None] = [None] * len(body.records)
    valid: list[tuple[int, DealBatchRecord]] = []
    for index, raw in enumerate(body.records):
        try:
            valid.append((index, _RECORD.validate_python(raw, context=_INSPECTED)))
        except ValidationError as exc:
            source, external_id = raw.get("source"), raw.get("external_id")
            problem = validation_problem_fields(exc.errors(), "The record is invalid.", read_only=_RECORD_READ_ONLY)
            results[index] = _result(
                index,
                source if isinstance(source, str) else None,
                external_id if isinstance(external_id, str) else None,
                "error",
                None,
                problem,
            )
    for o in await deal_batch.batch_upsert(uow, actor, valid):
        problem = None if o.error is None else problem_fields(o.error)
        results[o.index] = _result(o.index, o.source, o.external_id, o.outcome, o.deal_id, problem)
    return Response(_RESULTS_JSON.dump_json({"results": results}), media_type="application/json")


def _result(
    index: int,
    source: str | None,
    external_id: str | None,
    outcome: str,
    deal_id: uuid.UUID | None,
    problem: dict[str, Any] | None,
) -> dict[str, Any]:
    """A DealBatchResult as plain data, its members in the model's order (a problem's too)."""
    if problem is not None:
        problem = {name: problem.get(name) for name in _PROBLEM_MEMBERS}
    return {
        "index": index,
        "source": source,
        "external_id": external_id,
        "outcome": outcome,
        "deal_id": deal_id,
        "problem": problem,
    }


# The results are rendered as plain data and serialised once, by pydantic's core (the bytes that
# DealBatchResults gives, which a test checks), not built as 500 models that FastAPI serialises.
_RESULTS_JSON: TypeAdapter[Any] = TypeAdapter(Any)
_PROBLEM_MEMBERS = tuple(BatchProblem.model_fields)
_RECORD = TypeAdapter(DealBatchRecord)
_RECORD_READ_ONLY = read_only_fields(DealPublic, DealBatchRecord)
_INSPECTED = {JSON_INSPECTED: True}  # the body, records included, was inspected whole (DealBatch)


@router.put(
    "/deals/by-external-ref/{source}/{external_id}",
    response_model=DealPublic,
    responses={
        200: {"description": "Updated, or unchanged (same version, no event)", "headers": ETAG_HEADER},
        201: {"description": "Created", "model": DealPublic, "headers": LOCATION_HEADER},
        **problem_responses(
            404,
            412,
            de.Forbidden,
            de.DealClosed,
            de.ExternalRefTaken,
            de.LossReasonRequired,
            de.LossRequiresClosedLost,
            de.OwnerMustBeSeller,
            de.TransferReasonRequired,
            de.UnknownLossReason,
        ),
    },
)
async def upsert_deal_by_external_ref(
    source: Annotated[Source, Path()],
    external_id: Annotated[ExternalId, Path()],
    body: DealUpsert,
    actor: ActorDep,
    uow: UowDep,
    if_match: IfMatchDep,
    response: Response,
) -> DealPublic:
    """Idempotent CRM sync: create the deal with this external reference, or bring it up to date."""
    view, outcome = await service.upsert_deal(uow, actor, source, external_id, body, if_match)
    if outcome == "created":
        response.status_code = status.HTTP_201_CREATED
        set_location(response, f"/v1/deals/{view.deal.id}")
    set_etag(response, view.deal.version)
    return render(view)


@router.get(
    "/deals/{deal_id}", response_model=DealPublic, responses={200: {"headers": ETAG_HEADER}, **problem_responses(404)}
)
@served_plain
async def get_deal(
    deal_id: uuid.UUID,
    caller: CallerDep,
    expand: Expansions = None,
) -> Response:
    """One deal the caller can see."""
    view = await reads.read_deal(caller, deal_id)
    document = await _with_members(caller, fields_of(view), [view], expand)
    return plain_json_response(document, headers={"ETag": etag(view.deal.version)})


async def _with_members(
    caller: Caller, document: dict[str, Any], views: list[reads.DealRow], expand: list[Expand] | None
) -> dict[str, Any]:
    """A hot read's document, with the deals' owners when asked (one more statement then)."""
    if expand and Expand.members in expand:
        organization_id = views[0].deal.actor_organization_id if views else None
        owners = [view.deal.owner_id for view in views]
        document["members"] = await expansion.plain_members(caller, organization_id, owners)
    return document


@router.patch(
    "/deals/{deal_id}",
    response_model=DealPublic,
    responses={
        200: {"headers": ETAG_HEADER},
        **problem_responses(
            404,
            412,
            de.Forbidden,
            de.DealClosed,
            de.LossReasonRequired,
            de.LossRequiresClosedLost,
            de.OwnerMustBeSeller,
            de.TransferReasonRequired,
            de.UnknownLossReason,
        ),
    },
)
@served_plain
async def update_deal(
    deal_id: uuid.UUID, body: DealUpdate, caller: CallerDep, uow: UowDep, if_match: IfMatchDep
) -> Response:
    """Change deal facts, move its stage (closing, losing, reopening) or transfer it to another seller."""
    view = await service.update_deal_of_caller(uow, caller, deal_id, body, if_match)
    return plain_json_response(fields_of(view), headers={"ETag": etag(view.deal.version)})


@router.get("/deals/{deal_id}/history", response_model=EventPage, responses=problem_responses(404))
async def get_deal_history(
    deal_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    expand: Expansions = None,
) -> EventPage:
    """Everything that happened to one deal, oldest first."""
    result = await events_service.deal_history(uow, actor, deal_id, page)
    items = [EventPublic.model_validate(e) for e in result.items]
    return await expansion.expanded(uow, actor, EventPage(items=items, next_cursor=result.next_cursor), expand)
