"""The strategy document: its sections, and what a new version implies."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from typing import Protocol

from app.domain.errors import SuggestionAlreadyDecided


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


def helpers_asked(owner_id: uuid.UUID, assignees: Iterable[uuid.UUID | None]) -> list[uuid.UUID]:
    """The people a next step asks for help: every assignee but the owner, once each."""
    return list(dict.fromkeys(a for a in assignees if a is not None and a != owner_id))


class SuggestionLike(Protocol):
    @property
    def status(self) -> str: ...


def ensure_suggestion_open(suggestion: SuggestionLike) -> None:
    """A suggestion is decided once: accepted or declined, it stays so."""
    if suggestion.status != SuggestionStatus.open:
        raise SuggestionAlreadyDecided()
