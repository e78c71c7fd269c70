"""The strategy document: its sections, and what a new version implies."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from app.domain.errors import FieldProblem, SuggestionAlreadyDecided, UnknownMember
from app.domain.ids import uuid7


class StrategySection(enum.StrEnum):
    customer_objectives = "customer_objectives"
    decision_process = "decision_process"
    stakeholders = "stakeholders"
    competition = "competition"
    value_hypothesis = "value_hypothesis"
    risks = "risks"
    next_steps = "next_steps"


class StakeholderRole(enum.StrEnum):
    champion = "champion"
    economic_buyer = "economic_buyer"
    decision_maker = "decision_maker"
    influencer = "influencer"
    blocker = "blocker"
    user = "user"


class Stance(enum.StrEnum):
    supportive = "supportive"
    neutral = "neutral"
    opposed = "opposed"
    unknown = "unknown"


class NextStepStatus(enum.StrEnum):
    open = "open"
    done = "done"


class SuggestionStatus(enum.StrEnum):
    open = "open"
    accepted = "accepted"
    declined = "declined"


class SuggestionLike(Protocol):
    @property
    def status(self) -> str: ...


def ensure_suggestion_open(suggestion: SuggestionLike) -> None:
    """A suggestion is decided once: accepted or declined, it stays so."""
    if suggestion.status != SuggestionStatus.open:
        raise SuggestionAlreadyDecided()


# --- the document and its revision -------------------------------------------


@dataclass(frozen=True, slots=True)
class Stakeholder:
    name: str
    title: str | None
    role: StakeholderRole
    stance: Stance = Stance.unknown


@dataclass(frozen=True, slots=True)
class NextStep:
    """A step towards the close; ``id`` is None only on a step just sent without one."""

    id: uuid.UUID | None
    description: str
    assignee_id: uuid.UUID | None = None
    due_date: dt.date | None = None
    status: NextStepStatus = NextStepStatus.open


@dataclass(frozen=True, slots=True)
class NamedAssignee:
    """A member a revision newly names on a next step: the first such step, and what it asks."""

    member_id: uuid.UUID
    step_index: int
    description: str


@dataclass(frozen=True, slots=True)
class Revision:
    """What a new version of the strategy holds and changes."""

    document: StrategyDocument  # every next step has an id
    sections: tuple[StrategySection, ...]  # the sections that differ, in document order
    named: tuple[NamedAssignee, ...]  # assignees newly named on a step, once each, in step order

    def helpers(self, owner_id: uuid.UUID) -> tuple[NamedAssignee, ...]:
        """The people the revision asks for help: every newly named assignee but the owner."""
        return tuple(n for n in self.named if n.member_id != owner_id)


@dataclass(frozen=True, slots=True)
class StrategyDocument:
    """The whole strategy of a deal; the empty document is the one before the first write."""

    customer_objectives: str | None = None
    decision_process: str | None = None
    stakeholders: tuple[Stakeholder, ...] = ()
    competition: str | None = None
    value_hypothesis: str | None = None
    risks: tuple[str, ...] = ()
    next_steps: tuple[NextStep, ...] = ()

    def revise(self, current: StrategyDocument, *, new_id: Callable[[], uuid.UUID] = uuid7) -> Revision | None:
        """This document as the version after ``current``; None when it would change nothing."""
        document = replace(self, next_steps=_identify_steps(self.next_steps, current.next_steps, new_id))
        sections = tuple(s for s in StrategySection if getattr(document, s) != getattr(current, s))
        if not sections:
            return None
        return Revision(document, sections, _newly_named(document.next_steps, current.next_steps))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StrategyDocument:
        """The document from its stored JSON form; a missing section is empty."""
        return cls(
            customer_objectives=data.get("customer_objectives"),
            decision_process=data.get("decision_process"),
            stakeholders=tuple(
                Stakeholder(s["name"], s.get("title"), StakeholderRole(s["role"]), Stance(s["stance"]))
                for s in data.get("stakeholders") or ()
            ),
            competition=data.get("competition"),
            value_hypothesis=data.get("value_hypothesis"),
            risks=tuple(data.get("risks") or ()),
            next_steps=tuple(
                NextStep(
                    id=_uuid_or_none(s["id"]),
                    description=s["description"],
                    assignee_id=_uuid_or_none(s.get("assignee_id")),
                    due_date=None if s.get("due_date") is None else dt.date.fromisoformat(s["due_date"]),
                    status=NextStepStatus(s.get("status", NextStepStatus.open)),
                )
                for s in data.get("next_steps") or ()
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The document as JSON types, sections in their order."""
        return {
            "customer_objectives": self.customer_objectives,
            "decision_process": self.decision_process,
            "stakeholders": [
                {"name": s.name, "title": s.title, "role": str(s.role), "stance": str(s.stance)}
                for s in self.stakeholders
            ],
            "competition": self.competition,
            "value_hypothesis": self.value_hypothesis,
            "risks": list(self.risks),
            "next_steps": [
                {
                    "id": None if s.id is None else str(s.id),
                    "description": s.description,
                    "assignee_id": None if s.assignee_id is None else str(s.assignee_id),
                    "due_date": None if s.due_date is None else s.due_date.isoformat(),
                    "status": str(s.status),
                }
                for s in self.next_steps
            ],
        }


def _identify_steps(
    steps: tuple[NextStep, ...], previous: tuple[NextStep, ...], new_id: Callable[[], uuid.UUID]
) -> tuple[NextStep, ...]:
    """A step sent without an id keeps the id of an identical current step (a client resending
    the document unchanged writes no version), or gets a new one."""
    claimed = {step.id for step in steps if step.id is not None}
    spare = [step for step in previous if step.id not in claimed]
    identified: list[NextStep] = []
    for step in steps:
        if step.id is None:
            index = next((i for i, p in enumerate(spare) if replace(p, id=None) == step), None)
            step = replace(step, id=new_id() if index is None else spare.pop(index).id)
        identified.append(step)
    return tuple(identified)


def _newly_named(steps: tuple[NextStep, ...], previous: tuple[NextStep, ...]) -> tuple[NamedAssignee, ...]:
    """The members newly named on a step, each once, with the first step naming them. A step
    keeping its assignee names nobody anew, so a declined request is not repeated on every save."""
    before = {(step.id, step.assignee_id) for step in previous}
    named: dict[uuid.UUID, NamedAssignee] = {}
    for index, step in enumerate(steps):
        if step.assignee_id is None or (step.id, step.assignee_id) in before or step.assignee_id in named:
            continue
        named[step.assignee_id] = NamedAssignee(step.assignee_id, index, step.description)
    return tuple(named.values())


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


class HasActive(Protocol):
    @property
    def active(self) -> bool: ...


def ensure_assignee_active(named: NamedAssignee, member: HasActive | None) -> None:
    """A next step is assigned to an active member of the organisation."""
    if member is None or not member.active:
        raise UnknownMember(
            f"No active member has the id {named.member_id}.",
            fields=[FieldProblem(("next_steps", named.step_index, "assignee_id"), "Unknown member", "unknown_member")],
        )
