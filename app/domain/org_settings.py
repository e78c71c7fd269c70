"""Organisation settings that shape the rules."""

from __future__ import annotations

from app.domain.deals import Stage

DEFAULT_MAX_IMPROVEMENTS_PER_OBSERVATION = 3
DEFAULT_REVIEW_DUE_DAYS = 7
DEFAULT_LATE_STAGES: tuple[Stage, ...] = (Stage.negotiation,)
