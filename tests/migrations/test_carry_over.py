"""The seller-development revision carries what was recorded before it over: the skills of every
shared observation, the commitments of every acknowledged debrief and completed review."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from app.db.migrate import downgrade, upgrade
from app.db.models import Commitment, ObservationSkill
from tests.api.test_development import acknowledge, complete_review, held_call, lost_review, shared_observation
from tests.helpers import Api, make_deal


async def _rows(app, table: sa.Table, columns: list[str]) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    async with app.state.engine.connect() as conn:
        stmt = sa.select(*(table.c[name] for name in columns))
        return sorted(tuple(row) for row in (await conn.execute(stmt)).all())


async def test_debriefs_and_reviews_are_carried_over(app, api: Api, team, database_url: str) -> None:
    seller, manager = team["seller"], team["manager"]
    call = await held_call(api, seller, manager, await make_deal(api, seller))
    observation = await shared_observation(
        api, manager, call, strengths=["discovery", "closing"], improvements=["negotiation"]
    )
    await acknowledge(api, seller, observation, ["Agree a next step", "Confirm value first"])
    draft = await api.as_(manager).post(
        f"/v1/calls/{call['id']}/observations", json={"strengths": [{"skill_code": "closing", "note": "x"}]}
    )
    assert draft.status_code == 201  # a draft has no skills to count yet
    review = await lost_review(api, seller)
    items = [
        {"description": "Role-play pricing", "assignee_id": seller.id, "due_date": "2026-12-15"},
        {"description": "Nobody's item"},
        {"description": "Pair on the next proposal", "assignee_id": manager.id},
    ]
    await complete_review(api, manager, seller, review, action_items=items)

    commitments = Commitment.__table__
    kept = ["organization_id", "member_id", "source", "source_id", "deal_id", "text", "skill_code", "due_on", "status"]
    skills = ObservationSkill.__table__
    before = (await _rows(app, commitments, kept), await _rows(app, skills, [c.name for c in skills.c]))
    assert len(before[0]) == 4 and len(before[1]) == 3
    await app.state.engine.dispose()  # no pooled connection may hold the tables the migration drops

    await asyncio.to_thread(downgrade, database_url, "0006")
    await asyncio.to_thread(upgrade, database_url)
    assert (await _rows(app, commitments, kept), await _rows(app, skills, [c.name for c in skills.c])) == before
