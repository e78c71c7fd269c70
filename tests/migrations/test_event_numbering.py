"""The revision that numbers events without a lock carries each organisation's numbering over,
both ways: after it, and after its downgrade, the next event comes after the last one."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from app.db.migrate import downgrade, upgrade
from tests.helpers import Api, Org


async def test_event_numbering_is_carried_over_up_and_down(app, api: Api, org: Org, database_url: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import bootstrap

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    for _ in range(3):
        await api.make_member("seller", key=False)
    before = (await api.get("/v1/events")).json()["items"]
    last = before[-1]["seq"]
    await app.state.engine.dispose()  # no pooled connection may hold what the migration drops

    await asyncio.to_thread(downgrade, database_url, "0007")
    async with app.state.engine.connect() as conn:
        kept = sorted((await conn.execute(sa.text("SELECT last_seq FROM event_sequence"))).scalars())
    assert kept == [2, last]  # the other organisation's bootstrap, and ours
    await app.state.engine.dispose()

    await asyncio.to_thread(upgrade, database_url)
    await api.make_member("seller", key=False)
    after = (await api.get("/v1/events")).json()["items"]
    assert after[: len(before)] == before
    assert [e["seq"] for e in after[len(before) :]] == [last + 1]
    theirs = await api.as_(other.admin_key).make_member("seller", key=False)
    assert theirs.body["organization_id"] == other.id
    assert [e["seq"] for e in (await api.as_(other.admin_key).get("/v1/events")).json()["items"]] == [1, 2, 3]
