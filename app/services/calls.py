"""Calls, interventions and observations: the seller's meeting, a manager's agreed part in it,
and the observation debriefed with the seller."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.db.models import Call, Deal, Intervention, Member, Observation
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.calls import (
    InterventionKind,
    ObservationStatus,
    can_see_observation,
    ensure_attendees,
    ensure_call_held,
    ensure_call_update,
    ensure_can_observe,
    ensure_can_plan_call,
    ensure_held_in_past,
    ensure_intervention,
    ensure_observation_content,
    ensure_observer_writes,
    ensure_seller_acknowledges,
    is_takeover,
)
from app.domain.catalogs import ensure_known_skills
from app.domain.changes import diff
from app.domain.deals import ensure_deal_open
from app.domain.development import CommitmentSource, commitments_from_debrief, ensure_commitment_skills
from app.domain.errors import InvalidCursor, NotFound
from app.domain.members import Actor
from app.domain.versioning import ensure_version
from app.schemas.calls import (
    CallCreate,
    CallUpdate,
    InterventionCreate,
    ObservationAcknowledgement,
    ObservationCreate,
    ObservationUpdate,
)
from app.services.access import ensure_sees_through_deal, visible_deal
from app.services.commitments import record_commitments
from app.services.involvement import record_involvement
from app.services.pagination import PageRequest, PageResult, after_id, after_key, build_page

CALLS = "calls"
INTERVENTIONS = "interventions"
OBSERVATIONS = "observations"


# What the observation use cases hand back to be rendered.
ObservationRecord = Observation


@dataclass
class CallView:
    call: Call
    attendees: list[Any] = field(default_factory=list)  # rows or dicts: member_id, call_role, agreed_part


# --- calls ---------------------------------------------------------------------


async def create_call(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, data: CallCreate) -> CallView:
    async with uow:
        deal = await visible_deal(uow, actor, deal_id, for_update=True)
        ensure_can_plan_call(actor, deal)
        ensure_deal_open(deal)
        attendees = _attendee_dicts(data)
        members = await uow.calls.members_by_id(actor.organization_id, [a.member_id for a in data.attendees])
        ensure_attendees(deal, data.attendees, members)
        call = Call(
            organization_id=deal.organization_id,
            deal_id=deal.id,
            lead_id=deal.owner_id,
            scheduled_at=data.scheduled_at,
            purpose=data.purpose,
        )
        uow.add(call)
        await uow.flush()
        await uow.calls.replace_attendees(organization_id=call.organization_id, call_id=call.id, attendees=attendees)
        late = await _record_attendance(uow, deal, [members[a["member_id"]] for a in attendees])
        await _event(
            uow,
            actor,
            call,
            "call.created",
            call.id,
            {
                "scheduled_at": call.scheduled_at.isoformat(),
                "purpose": call.purpose,
                "attendees": _jsonable_attendees(attendees),
                "late_involvement": late,
            },
        )
        await uow.commit()
    return CallView(call, attendees)


async def get_call(uow: UnitOfWork, actor: Actor, call_id: uuid.UUID) -> CallView:
    """A call is visible to whoever sees its deal and to its attendees."""
    call = await uow.calls.get_call(actor.organization_id, call_id)
    if call is None:
        raise NotFound("No call with this id.")
    attendees = (await uow.calls.attendees_of([call.id]))[call.id]
    await ensure_sees_through_deal(uow, actor, call.deal_id, named=[a.member_id for a in attendees], what="call")
    return CallView(call, attendees)


async def list_deal_calls(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, page: PageRequest) -> PageResult[CallView]:
    deal = await visible_deal(uow, actor, deal_id)
    rows = await uow.calls.list_calls(deal.id, after=_after_scheduled(page), limit=page.limit + 1)
    result = build_page(CALLS, page, rows, key=lambda c: [c.scheduled_at.isoformat(), str(c.id)])
    attendees = await uow.calls.attendees_of([c.id for c in result.items])
    return PageResult([CallView(c, attendees[c.id]) for c in result.items], result.next_cursor)


async def update_call(
    uow: UnitOfWork, actor: Actor, call_id: uuid.UUID, data: CallUpdate, if_match: frozenset[int] | None
) -> CallView:
    """Re-plan a call, change its attendees, record that it was held and its outcome (the lead)."""
    async with uow:
        visible = await get_call(uow, actor, call_id)
        call = await uow.calls.lock_call(visible.call.id)
        current = (await uow.calls.attendees_of([call.id]))[call.id]  # re-read under the lock
        deal = await uow.get(Deal, call.deal_id)
        assert deal is not None
        ensure_version(call.version, if_match)
        changes = _given(data)
        changes.pop("attendees", None)
        before_attendees = [_attendee_dict(a) for a in current]
        new_attendees = _attendee_dicts(data) if "attendees" in data.model_fields_set else before_attendees
        fields = {k: v for k, v in changes.items() if k != "held_at" and getattr(call, k) != v}
        holds = "held_at" in changes and changes["held_at"] != call.held_at
        attendees_change = _by_member(new_attendees) != _by_member(before_attendees)  # order alone is no change
        ensure_call_update(
            actor,
            call,
            deal,
            changes_attendees=attendees_change,
            changes_plan=bool({"scheduled_at", "purpose"} & fields.keys()),
            changes_held_at=holds,
        )
        if holds and changes["held_at"] is not None:
            ensure_held_in_past(changes["held_at"], utcnow())
        if not fields and not holds and not attendees_change:
            return CallView(call, current)

        late: list[str] = []
        if attendees_change:
            member_ids = [a["member_id"] for a in new_attendees]
            members = await uow.calls.members_by_id(actor.organization_id, member_ids)
            ensure_attendees(deal, data.attendees, members)
            await uow.calls.replace_attendees(
                organization_id=call.organization_id, call_id=call.id, attendees=new_attendees
            )
            before_ids = {a["member_id"] for a in before_attendees}
            joining = [members[a["member_id"]] for a in new_attendees if a["member_id"] not in before_ids]
            late = await _record_attendance(uow, deal, joining)
        before = {k: getattr(call, k) for k in fields}
        for key, value in fields.items():
            setattr(call, key, value)
        if holds:
            call.held_at = changes["held_at"]
        call.version += 1
        call.updated_at = utcnow()
        await uow.flush()

        if fields or attendees_change:
            changed: dict[str, Any] = diff(before, fields)
            if attendees_change:
                changed["attendees"] = [_jsonable_attendees(before_attendees), _jsonable_attendees(new_attendees)]
            payload: dict[str, Any] = {"changes": changed}
            if attendees_change:
                payload["late_involvement"] = late
            await _event(uow, actor, call, "call.updated", call.id, payload)
        if holds:
            assert call.held_at is not None
            await _event(uow, actor, call, "call.held", call.id, {"held_at": call.held_at.isoformat()})
        await uow.commit()
    return CallView(call, new_attendees)


async def _record_attendance(uow: UnitOfWork, deal: Deal, members: Sequence[Member]) -> list[str]:
    """Attending a call is involvement; the ids of managers whose first involvement came late."""
    late = []
    for member in members:
        if await record_involvement(uow, deal, member, "call"):
            late.append(str(member.id))
    return late


def _given(data: CallUpdate | ObservationUpdate, mode: str = "python") -> dict[str, Any]:
    """The fields a PATCH names, each dumped whole (exclude_unset would also drop the unset
    defaults of nested items, an improvement's suggestion say)."""
    dumped = data.model_dump(mode=mode)
    return {name: value for name, value in dumped.items() if name in data.model_fields_set}


def _attendee_dict(attendee: Any) -> dict[str, Any]:
    return {"member_id": attendee.member_id, "call_role": str(attendee.call_role), "agreed_part": attendee.agreed_part}


def _by_member(attendees: Sequence[dict[str, Any]]) -> dict[uuid.UUID, tuple[str, str | None]]:
    return {a["member_id"]: (a["call_role"], a["agreed_part"]) for a in attendees}


def _attendee_dicts(data: CallCreate | CallUpdate) -> list[dict[str, Any]]:
    return [_attendee_dict(a) for a in data.attendees or []]


def _jsonable_attendees(attendees: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**a, "member_id": str(a["member_id"])} for a in attendees]


def _after_scheduled(page: PageRequest) -> tuple[dt.datetime, uuid.UUID] | None:
    key = after_key(CALLS, page, 2)
    if key is None:
        return None
    try:
        scheduled_at = dt.datetime.fromisoformat(str(key[0]))
        call_id = uuid.UUID(str(key[1]))
    except ValueError:
        raise InvalidCursor() from None
    if scheduled_at.tzinfo is None:
        raise InvalidCursor()
    return scheduled_at, call_id


# --- interventions ----------------------------------------------------------------


async def create_intervention(
    uow: UnitOfWork, actor: Actor, call_id: uuid.UUID, data: InterventionCreate
) -> Intervention:
    async with uow:
        view = await get_call(uow, actor, call_id)
        call = view.call
        ensure_intervention(actor, call, {a.member_id for a in view.attendees}, data.member_id)
        intervention = Intervention(
            organization_id=call.organization_id,
            call_id=call.id,
            deal_id=call.deal_id,
            member_id=data.member_id,
            kind=InterventionKind(data.kind),
            note=data.note,
            is_takeover=is_takeover(call, data.member_id, data.kind),
            recorded_by=actor.member_id,
        )
        uow.add(intervention)
        await uow.flush()
        await _event(
            uow,
            actor,
            call,
            "intervention.recorded",
            intervention.id,
            {
                "call_id": str(call.id),
                "member_id": str(intervention.member_id),
                "kind": intervention.kind,
                "is_takeover": intervention.is_takeover,
            },
            subject_type="intervention",
        )
        if intervention.is_takeover:
            await _event(
                uow,
                actor,
                call,
                "call.takeover",
                call.id,
                {
                    "member_id": str(intervention.member_id),
                    "intervention_id": str(intervention.id),
                },
            )
        await uow.commit()
    return intervention


async def get_intervention(
    uow: UnitOfWork, actor: Actor, call_id: uuid.UUID, intervention_id: uuid.UUID
) -> Intervention:
    """An intervention is visible to whoever sees its call."""
    view = await get_call(uow, actor, call_id)
    intervention = await uow.calls.get_intervention(view.call.id, intervention_id)
    if intervention is None:
        raise NotFound("No intervention with this id on this call.")
    return intervention


async def list_call_interventions(
    uow: UnitOfWork, actor: Actor, call_id: uuid.UUID, page: PageRequest
) -> PageResult[Intervention]:
    view = await get_call(uow, actor, call_id)
    rows = await uow.calls.list_interventions(view.call.id, after=after_id(INTERVENTIONS, page), limit=page.limit + 1)
    return build_page(INTERVENTIONS, page, rows)


# --- observations ---------------------------------------------------------------------


async def create_observation(uow: UnitOfWork, actor: Actor, call_id: uuid.UUID, data: ObservationCreate) -> Observation:
    async with uow:
        view = await get_call(uow, actor, call_id)
        call = view.call
        ensure_can_observe(actor, view.attendees)
        ensure_call_held(call)
        content = data.model_dump(mode="json")
        await _ensure_content(uow, actor, content)
        observation = Observation(
            organization_id=call.organization_id,
            call_id=call.id,
            deal_id=call.deal_id,
            observer_id=actor.member_id,
            seller_id=call.lead_id,
            strengths=content["strengths"],
            improvements=content["improvements"],
            strengths_count=len(content["strengths"]),
            improvements_count=len(content["improvements"]),
            summary=data.summary,
            status=ObservationStatus.draft,
        )
        uow.add(observation)
        await uow.flush()
        # Events carry no content: the deal's history is read by more people than the observation.
        await _observation_event(uow, actor, observation, "created", _counts(observation))
        await uow.commit()
    return observation


async def get_observation(uow: UnitOfWork, actor: Actor, observation_id: uuid.UUID) -> Observation:
    """The observer, the seller's management line and heads of sales see it; the seller once shared."""
    observation = await uow.calls.get_observation(actor.organization_id, observation_id)
    if observation is None:
        raise NotFound("No observation with this id.")
    seller_line: list[uuid.UUID] = []
    if actor.member_id not in (observation.observer_id, observation.seller_id):
        seller_line = (await uow.members.manager_chain(actor.organization_id, observation.seller_id))[1:]
    if not can_see_observation(actor, observation, seller_line):
        raise NotFound("No observation with this id.")
    return observation


async def list_observations(
    uow: UnitOfWork,
    actor: Actor,
    page: PageRequest,
    *,
    seller_id: uuid.UUID | None,
    observer_id: uuid.UUID | None,
    status: ObservationStatus | None,
) -> PageResult[Observation]:
    rows = await uow.calls.list_observations(
        actor,
        seller_id=seller_id,
        observer_id=observer_id,
        status=status,
        before=after_id(OBSERVATIONS, page),
        limit=page.limit + 1,
    )
    return build_page(OBSERVATIONS, page, rows)


async def update_observation(
    uow: UnitOfWork, actor: Actor, observation_id: uuid.UUID, data: ObservationUpdate, if_match: frozenset[int] | None
) -> Observation:
    """The observer edits their draft."""
    async with uow:
        observation = await _lock(uow, actor, observation_id)
        ensure_version(observation.version, if_match)
        ensure_observer_writes(actor, observation)
        changes = _given(data, mode="json")
        changed = [k for k, v in changes.items() if getattr(observation, k) != v]
        if not changed:
            return observation
        if {"strengths", "improvements"} & set(changed):  # the summary alone is edited under any settings
            content = {"strengths": observation.strengths, "improvements": observation.improvements, **changes}
            await _ensure_content(uow, actor, content)
        for key in changed:
            setattr(observation, key, changes[key])
        observation.strengths_count = len(observation.strengths)
        observation.improvements_count = len(observation.improvements)
        observation.version += 1
        observation.updated_at = utcnow()
        await uow.flush()
        await _observation_event(uow, actor, observation, "updated", {"fields": changed, **_counts(observation)})
        await uow.commit()
    return observation


async def share_observation(uow: UnitOfWork, actor: Actor, observation_id: uuid.UUID) -> Observation:
    """The observer hands the observation to the seller for the debrief."""
    async with uow:
        observation = await _lock(uow, actor, observation_id)
        ensure_observer_writes(actor, observation)
        observation.status = ObservationStatus.shared
        observation.shared_at = observation.updated_at = utcnow()
        observation.version += 1
        await uow.flush()
        await uow.development.record_observation_skills(observation)  # its content is fixed from now on
        await _observation_event(uow, actor, observation, "shared", {"seller_id": str(observation.seller_id)})
        await uow.commit()
    return observation


async def acknowledge_observation(
    uow: UnitOfWork, actor: Actor, observation_id: uuid.UUID, data: ObservationAcknowledgement
) -> Observation:
    """The seller reflects on a shared observation: the debrief is done."""
    async with uow:
        observation = await _lock(uow, actor, observation_id)
        ensure_seller_acknowledges(actor, observation)
        items = [(c, None) if isinstance(c, str) else (c.text, c.skill_code) for c in data.commitments]
        ensure_commitment_skills([skill for _, skill in items], {i["skill_code"] for i in observation.improvements})
        observation.status = ObservationStatus.acknowledged
        observation.reflection = data.reflection
        observation.commitments = [text for text, _ in items]
        observation.acknowledged_at = observation.updated_at = utcnow()
        observation.version += 1
        await uow.flush()
        await _observation_event(
            uow, actor, observation, "acknowledged", {"commitments_count": len(observation.commitments)}
        )
        await record_commitments(
            uow,
            actor,
            source=CommitmentSource.observation,
            source_id=observation.id,
            deal_id=observation.deal_id,
            made=commitments_from_debrief(observation.seller_id, items),
        )
        await uow.commit()
    return observation


async def _lock(uow: UnitOfWork, actor: Actor, observation_id: uuid.UUID) -> Observation:
    """The observation if visible, re-read under a row lock so two writes cannot both apply."""
    visible = await get_observation(uow, actor, observation_id)
    return await uow.calls.lock_observation(visible.id)


async def _ensure_content(uow: UnitOfWork, actor: Actor, content: dict[str, Any]) -> None:
    strengths, improvements = content["strengths"], content["improvements"]
    ensure_observation_content(
        len(strengths), len(improvements), await uow.calls.max_improvements(actor.organization_id)
    )
    codes = {item["skill_code"] for item in [*strengths, *improvements]}
    ensure_known_skills(codes, await uow.catalogs.active_skill_codes(actor.organization_id, codes))


def _counts(observation: Observation) -> dict[str, Any]:
    return {
        "call_id": str(observation.call_id),
        "observer_id": str(observation.observer_id),
        "seller_id": str(observation.seller_id),
        "strengths_count": observation.strengths_count,
        "improvements_count": observation.improvements_count,
    }


async def _observation_event(
    uow: UnitOfWork, actor: Actor, observation: Observation, verb: str, data: dict[str, Any]
) -> None:
    await uow.events.record(
        actor,
        f"observation.{verb}",
        subject_type="observation",
        subject_id=observation.id,
        deal_id=observation.deal_id,
        data=data,
    )


async def _event(
    uow: UnitOfWork,
    actor: Actor,
    call: Call,
    type_: str,
    subject_id: uuid.UUID,
    data: dict[str, Any],
    *,
    subject_type: str = "call",
) -> None:
    await uow.events.record(
        actor,
        type_,
        subject_type=subject_type,
        subject_id=subject_id,
        deal_id=call.deal_id,
        data=data,
    )
