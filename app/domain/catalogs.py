"""Loss-reason and skill catalogs: the defaults every organisation starts with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from app.domain.errors import UnknownLossReason, UnknownSkill

DEFAULT_SKILLS: tuple[tuple[str, str], ...] = (
    ("prospecting", "Prospecting"),
    ("discovery", "Discovery"),
    ("qualification", "Qualification"),
    ("value_selling", "Value selling"),
    ("presentation", "Presentation"),
    ("communication", "Communication"),
    ("competitive_positioning", "Competitive positioning"),
    ("stakeholder_management", "Stakeholder management"),
    ("negotiation", "Negotiation"),
    ("closing", "Closing"),
)

# Each loss points at the skills that most often explain it.
DEFAULT_LOSS_REASONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("price", "Price", ("negotiation", "closing")),
    ("competitor", "Competitor looked better", ("presentation", "communication", "competitive_positioning")),
    ("incumbent", "Stayed with the incumbent", ("value_selling", "competitive_positioning")),
    ("no_budget", "No budget", ("qualification",)),
    ("no_decision", "No decision", ("stakeholder_management", "qualification")),
    ("timing", "Timing", ("qualification", "discovery")),
    ("product_gap", "Product gap", ("discovery",)),
    ("relationship", "Relationship", ("stakeholder_management", "communication")),
    ("other", "Other", ()),
)


def ensure_known_skills(codes: Iterable[str], known: Iterable[str]) -> None:
    """Suggested skills and skill gaps name skills from the organisation's catalog."""
    unknown = sorted(set(codes) - set(known))
    if unknown:
        raise UnknownSkill(f"Unknown skill codes: {', '.join(unknown)}.", unknown=unknown)


class CatalogEntry(Protocol):
    @property
    def active(self) -> bool: ...


def ensure_active_loss_reason(reason: CatalogEntry | None, code: str) -> None:
    """A loss names an active reason of the organisation's catalog."""
    if reason is None or not reason.active:
        raise UnknownLossReason(f"{code!r} is not an active loss reason of the organisation.")
