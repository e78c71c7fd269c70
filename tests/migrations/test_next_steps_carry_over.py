"""The tasks revision carries the next steps of every deal's latest strategy over into rows: a step
assigned since an earlier version keeps the time of the version that first gave it its assignee."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from app.db.migrate import downgrade, upgrade
from app.db.models import StrategyNextStep
from tests.helpers import Api, make_deal


async def _rows(app) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    table = StrategyNextStep.__table__
    async with app.state.engine.connect() as conn:
        return sorted(tuple(row) for row in (await conn.execute(sa.select(*table.c))).all())


async def _put(api: Api, owner, deal: dict[str, Any], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    url = f"/v1/deals/{deal['id']}/strategy"
    etag = (await api.as_(owner).get(url)).headers["ETag"]
    response = await api.as_(owner).put(url, json={"next_steps": steps}, headers={"If-Match": etag})
    assert response.status_code == 200, response.text
    return response.json()["next_steps"]


async def test_next_steps_are_carried_over(app, api: Api, team, database_url: str) -> None:  # type: ignore[no-untyped-def]
    seller, peer = team["seller"], team["peer"]
    deal = await make_deal(api, seller)
    first = await _put(api, seller, deal, [{"description": "Call the CFO", "assignee_id": seller.id}])
    steps = [
        {**first[0], "description": "Call the CFO and the CIO", "due_date": "2026-12-01"},
        {"description": "Demo", "assignee_id": peer.id},
        {"description": "Nobody's", "status": "done"},
    ]
    await _put(api, seller, deal, steps)
    other = await make_deal(api, peer)
    await _put(api, peer, other, [{"description": "Gone soon", "assignee_id": peer.id}])
    await _put(api, peer, other, [])
    await make_deal(api, seller)  # no strategy at all
    before = await _rows(app)
    assert len(before) == 3
    await app.state.engine.dispose()  # no pooled connection may hold the table the migration drops

    await asyncio.to_thread(downgrade, database_url, "0010")
    await asyncio.to_thread(upgrade, database_url)
    assert await _rows(app) == before
