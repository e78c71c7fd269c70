from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.deps import ActorDep, Expansions, IdempotencyDeps, IfMatchDep, PageDep, UowDep
from app.domain import errors as de
from app.domain.calls import ObservationStatus
from app.errors import problem_responses
from app.http.responses import CONTENT_ETAG_HEADER, ETAG_HEADER, LOCATION_HEADER, set_etag, set_location
from app.http.routes import ApiRoute
from app.routers.expansion import expanded
from app.schemas.calls import (
    AttendeePublic,
    CallCreate,
    CallPage,
    CallPublic,
    CallUpdate,
    InterventionCreate,
    InterventionPage,
    InterventionPublic,
    ObservationAcknowledgement,
    ObservationCreate,
    ObservationPage,
    ObservationPublic,
    ObservationUpdate,
)
from app.services import calls as service

calls = APIRouter(prefix="/v1", tags=["calls"], route_class=ApiRoute)
observations = APIRouter(prefix="/v1", tags=["observations"], route_class=ApiRoute)
_CREATED = {201: {"headers": {**LOCATION_HEADER, **ETAG_HEADER}}}
_CURRENT = {200: {"headers": ETAG_HEADER}}


def render(view: service.CallView) -> CallPublic:
    call = view.call
    return CallPublic(
        id=call.id,
        deal_id=call.deal_id,
        lead_id=call.lead_id,
        scheduled_at=call.scheduled_at,
        purpose=call.purpose,
        attendees=[AttendeePublic.model_validate(a) for a in view.attendees],
        held_at=call.held_at,
        outcome=call.outcome,
        version=call.version,
        created_at=call.created_at,
        updated_at=call.updated_at,
    )


def render_observation(observation: service.ObservationRecord, response: Response | None = None) -> ObservationPublic:
    if response is not None:
        set_etag(response, observation.version)
    return ObservationPublic.model_validate(observation)


# --- calls ---------------------------------------------------------------------


@calls.post(
    "/deals/{deal_id}/calls",
    status_code=status.HTTP_201_CREATED,
    response_model=CallPublic,
    responses={
        **_CREATED,
        **problem_responses(
            404,
            de.Forbidden,
            de.DealClosed,
            de.CallLeadMustBeOwner,
            de.InvalidAssignee,
            de.ManagerRoleNotAgreed,
            de.UnknownMember,
        ),
    },
    dependencies=IdempotencyDeps,
)
async def create_call(
    deal_id: uuid.UUID, body: CallCreate, actor: ActorDep, uow: UowDep, response: Response
) -> CallPublic:
    """Plan a customer call on a deal (its owner, who leads it); managers attend in an agreed role."""
    view = await service.create_call(uow, actor, deal_id, body)
    set_location(response, f"/v1/calls/{view.call.id}")
    set_etag(response, view.call.version)
    return render(view)


@calls.get("/deals/{deal_id}/calls", response_model=CallPage, responses=problem_responses(404))
async def list_deal_calls(
    deal_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    expand: Expansions = None,
) -> CallPage:
    """A deal's calls, by scheduled time."""
    result = await service.list_deal_calls(uow, actor, deal_id, page)
    return await expanded(
        uow, actor, CallPage(items=[render(v) for v in result.items], next_cursor=result.next_cursor), expand
    )


@calls.get("/calls/{call_id}", response_model=CallPublic, responses={**_CURRENT, **problem_responses(404)})
async def get_call(
    call_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    response: Response,
    expand: Expansions = None,
) -> CallPublic:
    """One call (visible to its attendees and to whoever sees the deal)."""
    view = await service.get_call(uow, actor, call_id)
    set_etag(response, view.call.version)
    return await expanded(uow, actor, render(view), expand)


@calls.patch(
    "/calls/{call_id}",
    response_model=CallPublic,
    responses={
        **_CURRENT,
        **problem_responses(
            404,
            412,
            de.Forbidden,
            de.CallAlreadyHeld,
            de.DealClosed,
            de.CallLeadMustBeOwner,
            de.HeldInFuture,
            de.InvalidAssignee,
            de.ManagerRoleNotAgreed,
            de.UnknownMember,
        ),
    },
)
async def update_call(
    call_id: uuid.UUID, body: CallUpdate, actor: ActorDep, uow: UowDep, if_match: IfMatchDep, response: Response
) -> CallPublic:
    """Re-plan a call, change its attendees until it is held, record when it was held and its outcome (the lead)."""
    view = await service.update_call(uow, actor, call_id, body, if_match)
    set_etag(response, view.call.version)
    return render(view)


@calls.post(
    "/calls/{call_id}/interventions",
    status_code=status.HTTP_201_CREATED,
    response_model=InterventionPublic,
    responses={
        201: {"headers": LOCATION_HEADER},
        **problem_responses(404, de.Forbidden, de.CallNotHeld, de.UnknownMember),
    },
    dependencies=IdempotencyDeps,
)
async def create_intervention(
    call_id: uuid.UUID, body: InterventionCreate, actor: ActorDep, uow: UowDep, response: Response
) -> InterventionPublic:
    """Record what an attendee did in a held call (any attendee records it); `took_over` by a non-lead is a takeover."""
    intervention = await service.create_intervention(uow, actor, call_id, body)
    set_location(response, f"/v1/calls/{call_id}/interventions/{intervention.id}")
    return InterventionPublic.model_validate(intervention)


@calls.get("/calls/{call_id}/interventions", response_model=InterventionPage, responses=problem_responses(404))
async def list_call_interventions(
    call_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    expand: Expansions = None,
) -> InterventionPage:
    """What attendees did during a call, in the order recorded."""
    result = await service.list_call_interventions(uow, actor, call_id, page)
    items = [InterventionPublic.model_validate(i) for i in result.items]
    return await expanded(uow, actor, InterventionPage(items=items, next_cursor=result.next_cursor), expand)


@calls.get(
    "/calls/{call_id}/interventions/{intervention_id}",
    response_model=InterventionPublic,
    responses={200: {"headers": CONTENT_ETAG_HEADER}, **problem_responses(404)},
)
async def get_intervention(
    call_id: uuid.UUID,
    intervention_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    expand: Expansions = None,
) -> InterventionPublic:
    """One intervention (visible to whoever sees its call); interventions never change."""
    intervention = await service.get_intervention(uow, actor, call_id, intervention_id)
    return await expanded(uow, actor, InterventionPublic.model_validate(intervention), expand)


# --- observations ---------------------------------------------------------------------


@observations.post(
    "/calls/{call_id}/observations",
    status_code=status.HTTP_201_CREATED,
    response_model=ObservationPublic,
    responses={
        **_CREATED,
        **problem_responses(
            404, de.NotAnObserver, de.CallNotHeld, de.ObservationNeedsStrength, de.TooManyImprovements, de.UnknownSkill
        ),
    },
    dependencies=IdempotencyDeps,
)
async def create_observation(
    call_id: uuid.UUID, body: ObservationCreate, actor: ActorDep, uow: UowDep, response: Response
) -> ObservationPublic:
    """Observe the lead of a held call (a non-lead attendee): a draft with strengths first and a few improvements."""
    observation = await service.create_observation(uow, actor, call_id, body)
    set_location(response, f"/v1/observations/{observation.id}")
    return render_observation(observation, response)


@observations.get("/observations", response_model=ObservationPage, responses=problem_responses())
async def list_observations(
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    seller_id: uuid.UUID | None = None,
    observer_id: uuid.UUID | None = None,
    status: ObservationStatus | None = None,
    expand: Expansions = None,
) -> ObservationPage:
    """Observations the caller may see, newest first."""
    result = await service.list_observations(
        uow, actor, page, seller_id=seller_id, observer_id=observer_id, status=status
    )
    items = [render_observation(o) for o in result.items]
    return await expanded(uow, actor, ObservationPage(items=items, next_cursor=result.next_cursor), expand)


@observations.get(
    "/observations/{observation_id}", response_model=ObservationPublic, responses={**_CURRENT, **problem_responses(404)}
)
async def get_observation(
    observation_id: uuid.UUID,
    actor: ActorDep,
    uow: UowDep,
    response: Response,
    expand: Expansions = None,
) -> ObservationPublic:
    """One observation (the observer, the seller's management line, heads of sales; the seller once shared)."""
    observation = render_observation(await service.get_observation(uow, actor, observation_id), response)
    return await expanded(uow, actor, observation, expand)


@observations.patch(
    "/observations/{observation_id}",
    response_model=ObservationPublic,
    responses={
        **_CURRENT,
        **problem_responses(
            404,
            412,
            de.Forbidden,
            de.ObservationNotDraft,
            de.ObservationNeedsStrength,
            de.TooManyImprovements,
            de.UnknownSkill,
        ),
    },
)
async def update_observation(
    observation_id: uuid.UUID,
    body: ObservationUpdate,
    actor: ActorDep,
    uow: UowDep,
    if_match: IfMatchDep,
    response: Response,
) -> ObservationPublic:
    """Edit a draft observation (the observer)."""
    return render_observation(await service.update_observation(uow, actor, observation_id, body, if_match), response)


@observations.post(
    "/observations/{observation_id}/share",
    response_model=ObservationPublic,
    responses={**_CURRENT, **problem_responses(404, de.Forbidden, de.ObservationNotDraft)},
    dependencies=IdempotencyDeps,
)
async def share_observation(
    observation_id: uuid.UUID, actor: ActorDep, uow: UowDep, response: Response
) -> ObservationPublic:
    """Share the observation with the seller for the debrief (the observer)."""
    return render_observation(await service.share_observation(uow, actor, observation_id), response)


@observations.post(
    "/observations/{observation_id}/acknowledge",
    response_model=ObservationPublic,
    responses={**_CURRENT, **problem_responses(404, de.OwnerDecides, de.ObservationNotShared)},
    dependencies=IdempotencyDeps,
)
async def acknowledge_observation(
    observation_id: uuid.UUID, body: ObservationAcknowledgement, actor: ActorDep, uow: UowDep, response: Response
) -> ObservationPublic:
    """Acknowledge a shared observation with a reflection and commitments (the seller who led): the debrief is done."""
    return render_observation(await service.acknowledge_observation(uow, actor, observation_id, body), response)


router = APIRouter()
router.include_router(calls)
router.include_router(observations)
