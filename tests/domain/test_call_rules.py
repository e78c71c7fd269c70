"""Call rules: the owner leads, managers' parts are agreed, held calls are fixed, observations
recognise strengths first and reach the seller only when shared."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest

from app.domain.calls import (
    CallRole,
    InterventionKind,
    ObservationStatus,
    can_see_observation,
    ensure_attendees,
    ensure_attendees_can_attend,
    ensure_call_held,
    ensure_call_update,
    ensure_can_observe,
    ensure_can_plan_call,
    ensure_held_in_past,
    ensure_intervention,
    ensure_lead_is_owner,
    ensure_manager_roles_agreed,
    ensure_observation_content,
    ensure_observer_writes,
    ensure_seller_acknowledges,
    is_takeover,
)
from app.domain.errors import (
    CallAlreadyHeld,
    CallLeadMustBeOwner,
    CallNotHeld,
    DealClosed,
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
from app.domain.members import Actor, MemberRole

R = MemberRole
OWNER = uuid.uuid4()
MANAGER = uuid.uuid4()
PEER = uuid.uuid4()
HELD = dt.datetime(2026, 11, 3, 15, tzinfo=dt.UTC)


@dataclass
class Deal:
    owner_id: uuid.UUID = OWNER
    stage: str = "discovery"


@dataclass
class Member:
    id: uuid.UUID
    role: MemberRole
    active: bool = True


@dataclass
class Attendee:
    member_id: uuid.UUID
    call_role: str
    agreed_part: str | None = None


@dataclass
class Call:
    lead_id: uuid.UUID = OWNER
    held_at: dt.datetime | None = None


@dataclass
class Obs:
    observer_id: uuid.UUID = MANAGER
    seller_id: uuid.UUID = OWNER
    status: str = ObservationStatus.draft


def actor(role: MemberRole, member_id: uuid.UUID | None = None) -> Actor:
    return Actor(
        member_id=member_id or uuid.uuid4(),
        organization_id=uuid.uuid4(),
        role=role,
        manager_id=None,
        api_key_id=uuid.uuid4(),
    )


MEMBERS = {
    OWNER: Member(OWNER, R.seller),
    MANAGER: Member(MANAGER, R.manager),
    PEER: Member(PEER, R.seller),
}
LEAD = Attendee(OWNER, CallRole.lead)
OBSERVING_MANAGER = Attendee(MANAGER, CallRole.observer, "Observe discovery questions")


# --- planning ------------------------------------------------------------------


def test_only_the_owner_plans_a_call() -> None:
    ensure_can_plan_call(actor(R.seller, OWNER), Deal())
    for who in (actor(R.manager, MANAGER), actor(R.head_of_sales), actor(R.admin), actor(R.seller, PEER)):
        with pytest.raises(Forbidden):
            ensure_can_plan_call(who, Deal())


def test_the_owner_leads() -> None:
    ensure_lead_is_owner(Deal(), [LEAD, OBSERVING_MANAGER])
    ensure_lead_is_owner(Deal(), [LEAD])


@pytest.mark.parametrize(
    "attendees",
    [
        [],  # nobody leads
        [OBSERVING_MANAGER],  # nobody leads
        [Attendee(PEER, CallRole.lead)],  # someone else leads
        [LEAD, Attendee(MANAGER, CallRole.lead)],  # two leads
        [Attendee(OWNER, CallRole.observer)],  # the owner in another role
        [LEAD, Attendee(OWNER, CallRole.contributor)],  # the owner twice
    ],
)
def test_exactly_one_lead_and_it_is_the_owner(attendees: list[Attendee]) -> None:
    with pytest.raises(CallLeadMustBeOwner):
        ensure_lead_is_owner(Deal(), attendees)


def test_attendees_are_active_sales_people() -> None:
    ensure_attendees_can_attend([LEAD, OBSERVING_MANAGER, Attendee(PEER, CallRole.contributor)], MEMBERS)
    ghost, gone = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(UnknownMember):
        ensure_attendees_can_attend([LEAD, Attendee(ghost, CallRole.observer)], MEMBERS)
    with pytest.raises(UnknownMember):
        ensure_attendees_can_attend([Attendee(gone, CallRole.observer)], {gone: Member(gone, R.seller, active=False)})
    for role in (R.admin, R.integration):
        machine = uuid.uuid4()
        with pytest.raises(InvalidAssignee):
            ensure_attendees_can_attend([Attendee(machine, CallRole.observer)], {machine: Member(machine, role)})


@pytest.mark.parametrize("role", [R.manager, R.head_of_sales])
@pytest.mark.parametrize(
    ("call_role", "agreed_part", "ok"),
    [
        (CallRole.observer, "Observe discovery questions", True),
        (CallRole.contributor, "Answer the security questions", True),
        (CallRole.observer, None, False),
        (CallRole.observer, "   ", False),
        (CallRole.contributor, "", False),
        (CallRole.lead, "Lead the pricing part", False),
    ],
)
def test_a_managers_part_is_agreed(role: MemberRole, call_role: str, agreed_part: str | None, ok: bool) -> None:
    boss = uuid.uuid4()
    members = {boss: Member(boss, role)}
    attendees = [Attendee(boss, call_role, agreed_part)]
    if ok:
        ensure_manager_roles_agreed(attendees, members)
    else:
        with pytest.raises(ManagerRoleNotAgreed):
            ensure_manager_roles_agreed(attendees, members)


def test_sellers_attend_without_an_agreed_part() -> None:
    ensure_manager_roles_agreed([LEAD, Attendee(PEER, CallRole.observer)], MEMBERS)


def test_ensure_attendees_applies_every_rule_in_order() -> None:
    ensure_attendees(Deal(), [LEAD, OBSERVING_MANAGER], MEMBERS)
    with pytest.raises(CallLeadMustBeOwner):  # the lead comes first, even beside an unknown member
        ensure_attendees(Deal(), [Attendee(uuid.uuid4(), CallRole.observer)], MEMBERS)
    with pytest.raises(UnknownMember):
        ensure_attendees(Deal(), [LEAD, Attendee(uuid.uuid4(), CallRole.observer)], MEMBERS)
    with pytest.raises(ManagerRoleNotAgreed):
        ensure_attendees(Deal(), [LEAD, Attendee(MANAGER, CallRole.observer)], MEMBERS)


# --- changing a call -------------------------------------------------------------------


def _update(call: Call, deal: Deal | None = None, who: Actor | None = None, **changes: bool) -> None:
    flags = {"changes_attendees": False, "changes_plan": False, "changes_held_at": False, **changes}
    ensure_call_update(who or actor(R.seller, OWNER), call, deal or Deal(), **flags)


def test_only_the_lead_changes_a_call() -> None:
    _update(Call(), changes_plan=True)
    for who in (actor(R.manager, MANAGER), actor(R.head_of_sales), actor(R.admin)):
        with pytest.raises(Forbidden):
            _update(Call(), who=who, changes_plan=True)
        with pytest.raises(Forbidden):  # even a change of nothing
            _update(Call(), who=who)


def test_attendees_may_change_until_held_and_in_the_request_that_holds_it() -> None:
    _update(Call(), changes_attendees=True)
    _update(Call(), changes_attendees=True, changes_held_at=True)
    with pytest.raises(CallAlreadyHeld):
        _update(Call(held_at=HELD), changes_attendees=True)


def test_held_at_is_recorded_once() -> None:
    _update(Call(), changes_held_at=True)
    with pytest.raises(CallAlreadyHeld):
        _update(Call(held_at=HELD), changes_held_at=True)
    _update(Call(held_at=HELD), changes_plan=True)  # the outcome, the purpose still change


@pytest.mark.parametrize(
    ("ahead", "refused"),
    [
        (dt.timedelta(days=-30), False),
        (dt.timedelta(0), False),
        (dt.timedelta(minutes=5), False),
        (dt.timedelta(minutes=5, seconds=1), True),
        (dt.timedelta(days=2), True),
    ],
)
def test_held_at_is_not_in_the_future_beyond_clock_skew(ahead: dt.timedelta, refused: bool) -> None:
    now = dt.datetime(2026, 11, 3, 15, 0, tzinfo=dt.UTC)
    if not refused:
        ensure_held_in_past(now + ahead, now)
        return
    with pytest.raises(HeldInFuture) as info:
        ensure_held_in_past(now + ahead, now)
    assert info.value.code == "held_in_future" and info.value.fields[0].path == ("held_at",)


@pytest.mark.parametrize("stage", ["closed_won", "closed_lost"])
def test_a_closed_deals_calls_only_record_what_happened(stage: str) -> None:
    closed = Deal(stage=stage)
    _update(Call(), closed, changes_held_at=True)
    _update(Call(held_at=HELD), closed)
    for change in ("changes_attendees", "changes_plan"):
        with pytest.raises(DealClosed):
            _update(Call(), closed, **{change: True})


def test_what_happened_is_recorded_once_the_call_was_held() -> None:
    ensure_call_held(Call(held_at=HELD))
    with pytest.raises(CallNotHeld):
        ensure_call_held(Call())


# --- interventions ----------------------------------------------------------------


def test_any_attendee_of_a_held_call_records_an_intervention() -> None:
    attendees = {OWNER, MANAGER}
    ensure_intervention(actor(R.seller, OWNER), Call(held_at=HELD), attendees, MANAGER)
    ensure_intervention(actor(R.manager, MANAGER), Call(held_at=HELD), attendees, MANAGER)
    with pytest.raises(Forbidden):
        ensure_intervention(actor(R.head_of_sales), Call(held_at=HELD), attendees, MANAGER)
    with pytest.raises(CallNotHeld):
        ensure_intervention(actor(R.seller, OWNER), Call(), attendees, MANAGER)
    with pytest.raises(UnknownMember):
        ensure_intervention(actor(R.seller, OWNER), Call(held_at=HELD), attendees, PEER)


def test_taking_over_is_a_takeover_unless_by_the_lead() -> None:
    assert is_takeover(Call(), MANAGER, InterventionKind.took_over)
    assert not is_takeover(Call(), OWNER, InterventionKind.took_over)
    assert not is_takeover(Call(), MANAGER, InterventionKind.answered_question)
    assert not is_takeover(Call(), MANAGER, InterventionKind.corrected_fact)


# --- observations ---------------------------------------------------------------------


def test_only_a_non_lead_attendee_observes() -> None:
    attendees = [LEAD, OBSERVING_MANAGER, Attendee(PEER, CallRole.contributor)]
    ensure_can_observe(actor(R.manager, MANAGER), attendees)
    ensure_can_observe(actor(R.seller, PEER), attendees)
    for who in (actor(R.seller, OWNER), actor(R.head_of_sales), actor(R.manager)):
        with pytest.raises(NotAnObserver):
            ensure_can_observe(who, attendees)


def test_strengths_first_and_only_a_few_improvements() -> None:
    ensure_observation_content(1, 0, 3)
    ensure_observation_content(2, 3, 3)
    with pytest.raises(ObservationNeedsStrength):
        ensure_observation_content(0, 1, 3)
    with pytest.raises(TooManyImprovements) as refused:
        ensure_observation_content(2, 4, 3)
    assert refused.value.extra["max_improvements_per_observation"] == 3
    with pytest.raises(TooManyImprovements):
        ensure_observation_content(1, 2, 1)


def test_only_the_observer_writes_and_only_a_draft() -> None:
    ensure_observer_writes(actor(R.manager, MANAGER), Obs())
    for who in (actor(R.seller, OWNER), actor(R.head_of_sales), actor(R.manager)):
        with pytest.raises(Forbidden):
            ensure_observer_writes(who, Obs())
    for status in (ObservationStatus.shared, ObservationStatus.acknowledged):
        with pytest.raises(ObservationNotDraft):
            ensure_observer_writes(actor(R.manager, MANAGER), Obs(status=status))


def test_only_the_seller_acknowledges_a_shared_observation() -> None:
    ensure_seller_acknowledges(actor(R.seller, OWNER), Obs(status=ObservationStatus.shared))
    for who in (actor(R.manager, MANAGER), actor(R.head_of_sales), actor(R.seller, PEER)):
        with pytest.raises(OwnerDecides):
            ensure_seller_acknowledges(who, Obs(status=ObservationStatus.shared))
    for status in (ObservationStatus.draft, ObservationStatus.acknowledged):
        with pytest.raises(ObservationNotShared):
            ensure_seller_acknowledges(actor(R.seller, OWNER), Obs(status=status))


def test_who_sees_an_observation() -> None:
    grand_manager = uuid.uuid4()
    line = [MANAGER, grand_manager]
    draft, shared = Obs(observer_id=PEER), Obs(observer_id=PEER, status=ObservationStatus.shared)
    for obs in (draft, shared):
        assert can_see_observation(actor(R.seller, PEER), obs, line)  # the observer
        assert can_see_observation(actor(R.manager, MANAGER), obs, line)  # the seller's line
        assert can_see_observation(actor(R.manager, grand_manager), obs, line)  # transitively
        assert can_see_observation(actor(R.head_of_sales), obs, [])
        for outsider in (actor(R.manager), actor(R.seller), actor(R.admin), actor(R.integration)):
            assert not can_see_observation(outsider, obs, line)
    assert not can_see_observation(actor(R.seller, OWNER), draft, line)
    assert can_see_observation(actor(R.seller, OWNER), shared, line)
    acknowledged = Obs(status=ObservationStatus.acknowledged)
    assert can_see_observation(actor(R.seller, OWNER), acknowledged, line)
