"""Default catalogs and the known-skills rule."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.domain.catalogs import DEFAULT_LOSS_REASONS, DEFAULT_SKILLS, ensure_active_loss_reason, ensure_known_skills
from app.domain.errors import UnknownLossReason, UnknownSkill

SKILL_CODES = {code for code, _ in DEFAULT_SKILLS}
SUGGESTIONS = {code: skills for code, _, skills in DEFAULT_LOSS_REASONS}


def test_price_points_at_negotiation_and_closing() -> None:
    assert set(SUGGESTIONS["price"]) >= {"negotiation", "closing"}


def test_competitor_points_at_presentation_communication_and_positioning() -> None:
    assert set(SUGGESTIONS["competitor"]) >= {"presentation", "communication", "competitive_positioning"}


@pytest.mark.parametrize(("reason", "skills"), [(code, skills) for code, _, skills in DEFAULT_LOSS_REASONS])
def test_every_suggested_skill_exists(reason: str, skills: tuple[str, ...]) -> None:
    assert set(skills) <= SKILL_CODES, reason
    ensure_known_skills(skills, SKILL_CODES)


@pytest.mark.parametrize("catalog", [DEFAULT_SKILLS, DEFAULT_LOSS_REASONS])
def test_codes_are_unique_snake_case_with_names(catalog: tuple[tuple[str, ...], ...]) -> None:
    codes = [entry[0] for entry in catalog]
    assert len(codes) == len(set(codes))
    for code, name, *_ in catalog:
        assert code.isidentifier() and code == code.lower()
        assert name.strip()


def test_ensure_known_skills_accepts_known_and_empty() -> None:
    ensure_known_skills(["closing", "discovery", "closing"], SKILL_CODES)
    ensure_known_skills([], SKILL_CODES)
    ensure_known_skills([], [])


def test_ensure_known_skills_lists_the_unknown_codes_sorted() -> None:
    with pytest.raises(UnknownSkill) as info:
        ensure_known_skills(["zeta", "closing", "alpha", "zeta"], SKILL_CODES)
    err = info.value
    assert err.code == "unknown_skill"
    assert err.extra["unknown"] == ["alpha", "zeta"]
    assert "alpha" in err.detail and "zeta" in err.detail
    assert "closing" not in err.detail


def test_ensure_known_skills_accepts_generators() -> None:
    with pytest.raises(UnknownSkill) as info:
        ensure_known_skills((c for c in ["x"]), (k for k in SKILL_CODES))
    assert info.value.extra["unknown"] == ["x"]


@dataclass(frozen=True)
class Reason:
    active: bool


def test_a_loss_names_an_active_reason() -> None:
    ensure_active_loss_reason(Reason(active=True), "price")
    for missing_or_retired in (None, Reason(active=False)):
        with pytest.raises(UnknownLossReason, match="'price' is not an active loss reason"):
            ensure_active_loss_reason(missing_or_retired, "price")
