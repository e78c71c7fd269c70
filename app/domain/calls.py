"""Calls, interventions and observations: the seller leads the call, a manager's part is
agreed before it starts, and an observation recognises strengths first and names a few
improvements, shared with the seller and acknowledged in the debrief."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from app.domain.deals import DealLike, is_closed
from app.domain.errors import (
    CallAlreadyHeld,
    CallLeadMustBeOwner,
    CallNotHeld,
    DealClosed,
    FieldProblem,
    Forbidden,
    HeldInFuture,
    InvalidAssignee,
    ManagerRoleNotAgreed,
    NotAnObserver,
    ObservationNeedsStrength,
    ObservationNotDraft,
    ObservationNotShared,
    OwnerDecides,
    TooManyImprovements,
    UnknownMember,
)
from app.domain.members import LINE_MANAGER_ROLES, Actor, MemberRole


class CallRole(enum.StrEnum):
    lead = "lead"
    observer = "observer"
    contributor = "contributor"


class InterventionKind(enum.StrEnum):
    answered_question = "answered_question"
    corrected_fact = "corrected_fact"
    took_over = "took_over"


class ObservationStatus(enum.StrEnum):
    draft = "draft"  # the observer's notes, seen only by the observer and the seller's line
    shared = "shared"  # handed to the seller for the debrief
    acknowledged = "acknowledged"  # the seller reflected: the debrief is done


# Members who take part in customer calls; admins and machines do not.
ATTENDING_MEMBER_ROLES = frozenset({MemberRole.seller, MemberRole.manager, MemberRole.head_of_sales})
# Roles a manager or head of sales may take on a call, by agreement with the seller.
AGREED_ROLES = frozenset({CallRole.observer, CallRole.contributor})


class AttendeeLike(Protocol):
    @property
    def member_id(self) -> uuid.UUID: ...
    @property
    def call_role(self) -> str: ...
    @property
    def agreed_part(self) -> str | None: ...


class AttendingMember(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def role(self) -> MemberRole: ...
    @property
    def active(self) -> bool: ...


class CallLike(Protocol):
    @property
    def lead_id(self) -> uuid.UUID: ...
    @property
    def held_at(self) -> dt.datetime | None: ...


class ObservationLike(Protocol):
    @property
    def observer_id(self) -> uuid.UUID: ...
    @property
    def seller_id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...


# --- calls ---------------------------------------------------------------------


def ensure_can_plan_call(actor: Actor, deal: DealLike) -> None:
    """A call is the seller's meeting: only the deal's owner plans one."""
    if actor.member_id != deal.owner_id:
        raise Forbidden("Only the deal's owner plans its calls.")


def ensure_lead_is_owner(deal: DealLike, attendees: Sequence[AttendeeLike]) -> None:
    """Exactly one attendee leads, the deal's owner, who attends in no other role."""
    leads = [a.member_id for a in attendees if a.call_role == CallRole.lead]
    if leads != [deal.owner_id]:
        raise CallLeadMustBeOwner("The deal's owner, and only the owner, leads the call.")
    if any(a.member_id == deal.owner_id and a.call_role != CallRole.lead for a in attendees):
        raise CallLeadMustBeOwner("The deal's owner attends as the lead only.")


def ensure_attendees_can_attend(
    attendees: Sequence[AttendeeLike], members: Mapping[uuid.UUID, AttendingMember]
) -> None:
    """Attendees are active members of the organisation, and sales people: no admins or machines."""
    for attendee in attendees:
        member = members.get(attendee.member_id)
        if member is None or not member.active:
            raise UnknownMember(f"No active member has the id {attendee.member_id}.")
        if member.role not in ATTENDING_MEMBER_ROLES:
            raise InvalidAssignee(f"Member {attendee.member_id} is a {member.role}; only sales people attend calls.")


def ensure_manager_roles_agreed(
    attendees: Sequence[AttendeeLike], members: Mapping[uuid.UUID, AttendingMember]
) -> None:
    """A manager or head of sales attends as observer or contributor, with the part agreed beforehand."""
    for attendee in attendees:
        member = members.get(attendee.member_id)
        if member is None or member.role not in LINE_MANAGER_ROLES:
            continue
        if attendee.call_role not in AGREED_ROLES or not (attendee.agreed_part or "").strip():
            raise ManagerRoleNotAgreed(
                f"Member {attendee.member_id} attends as observer or contributor with a non-empty agreed_part."
            )


def ensure_attendees(
    deal: DealLike, attendees: Sequence[AttendeeLike], members: Mapping[uuid.UUID, AttendingMember]
) -> None:
    """A call's attendees: the owner leads, everyone may attend, and managers' parts are agreed."""
    ensure_lead_is_owner(deal, attendees)
    ensure_attendees_can_attend(attendees, members)
    ensure_manager_roles_agreed(attendees, members)


def ensure_call_update(
    actor: Actor,
    call: CallLike,
    deal: DealLike,
    *,
    changes_attendees: bool,
    changes_plan: bool,
    changes_held_at: bool,
) -> None:
    """Only the lead changes a call; once held its attendees and held_at are fixed; a closed
    deal's calls only record what happened (held_at, outcome), they are not re-planned."""
    if actor.member_id != call.lead_id:
        raise Forbidden("Only the call's lead changes it.")
    if call.held_at is not None and (changes_attendees or changes_held_at):
        raise CallAlreadyHeld()
    if is_closed(deal.stage) and (changes_attendees or changes_plan):
        raise DealClosed("The deal is closed: its calls are no longer re-planned.")


# Clocks disagree a little: a held_at up to this far ahead of ours is taken as "just now".
HELD_AT_CLOCK_SKEW = dt.timedelta(minutes=5)


def ensure_held_in_past(held_at: dt.datetime, now: dt.datetime) -> None:
    """A call is recorded as held once it took place: holding it fixes its attendees for good, so a
    held_at in the future (beyond a few minutes of clock skew) is refused."""
    if held_at > now + HELD_AT_CLOCK_SKEW:
        msg = "held_at is in the future; record the call once it was held (5 minutes of clock skew are allowed)"
        raise HeldInFuture(
            f"held_at {held_at.isoformat()} is later than now ({now.isoformat()}) plus 5 minutes of clock skew.",
            fields=[FieldProblem(("held_at",), msg, "held_in_future")],
        )


def ensure_call_held(call: CallLike) -> None:
    """What happened in a call (interventions, observations) is recorded once it was held."""
    if call.held_at is None:
        raise CallNotHeld()


# --- interventions ----------------------------------------------------------------


def ensure_intervention(
    actor: Actor, call: CallLike, attendee_ids: Collection[uuid.UUID], member_id: uuid.UUID
) -> None:
    """Any attendee of a held call records what an attendee did in it."""
    if actor.member_id not in attendee_ids:
        raise Forbidden("Only an attendee of the call records its interventions.")
    ensure_call_held(call)
    if member_id not in attendee_ids:
        raise UnknownMember(f"Member {member_id} did not attend this call.")


def is_takeover(call: CallLike, member_id: uuid.UUID, kind: str) -> bool:
    """Taking over the call by anyone but its lead is a takeover, counted in coaching analytics."""
    return kind == InterventionKind.took_over and member_id != call.lead_id


# --- observations ---------------------------------------------------------------------


def ensure_can_observe(actor: Actor, attendees: Sequence[AttendeeLike]) -> None:
    """Only a non-lead attendee of the call observes it: the lead is observed, not observing."""
    role = next((a.call_role for a in attendees if a.member_id == actor.member_id), None)
    if role is None or role == CallRole.lead:
        raise NotAnObserver()


def ensure_observation_content(strengths: int, improvements: int, max_improvements: int) -> None:
    """Strengths first, at least one; then only a few improvements (the organisation's maximum)."""
    if strengths < 1:
        raise ObservationNeedsStrength()
    if improvements > max_improvements:
        raise TooManyImprovements(
            f"{improvements} improvements named; the organisation allows at most {max_improvements}.",
            max_improvements_per_observation=max_improvements,
        )


def ensure_observer_writes(actor: Actor, observation: ObservationLike) -> None:
    """Only the observer edits or shares their observation, and only while it is a draft."""
    if actor.member_id != observation.observer_id:
        raise Forbidden("Only the observer edits or shares this observation.")
    if observation.status != ObservationStatus.draft:
        raise ObservationNotDraft()


def ensure_seller_acknowledges(actor: Actor, observation: ObservationLike) -> None:
    """Only the seller who led the call acknowledges, and only a shared observation."""
    if actor.member_id != observation.seller_id:
        raise OwnerDecides("Only the seller who led the call acknowledges the observation.")
    if observation.status != ObservationStatus.shared:
        raise ObservationNotShared()


def can_see_observation(actor: Actor, observation: ObservationLike, seller_line: Collection[uuid.UUID]) -> bool:
    """The observer, the seller's management line and heads of sales see an observation; the
    seller once it is shared; nobody else (admins and machines included).

    ``seller_line`` lists the seller's managers, nearest first, up to the top of the line.
    """
    if actor.role in (MemberRole.admin, MemberRole.integration):
        return False
    if actor.member_id == observation.observer_id or actor.role == MemberRole.head_of_sales:
        return True
    if actor.member_id in seller_line:
        return True
    return actor.member_id == observation.seller_id and observation.status != ObservationStatus.draft
