"""Deals: stages and the rules of ownership."""

from __future__ import annotations

import enum


class Stage(enum.StrEnum):
    prospecting = "prospecting"
    qualification = "qualification"
    discovery = "discovery"
    proposal = "proposal"
    negotiation = "negotiation"
    closed_won = "closed_won"
    closed_lost = "closed_lost"


OPEN_STAGES = (
    Stage.prospecting,
    Stage.qualification,
    Stage.discovery,
    Stage.proposal,
    Stage.negotiation,
)
CLOSED_STAGES = (Stage.closed_won, Stage.closed_lost)
