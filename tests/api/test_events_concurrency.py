"""The event feed with concurrent writers, on PostgreSQL, where events are numbered without a
per-organisation lock: a reader paging by seq never skips or repeats an event, a transaction
still open (or rolled back) holds the feed back only while it is open, it blocks no other
writer of its organisation, and the webhook outbox claims deliveries in seq order."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from app.db.models import Event
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.members import Actor, MemberRole
from app.schemas.deals import DealCreate
from app.services import deals
from app.settings import Settings
from tests.conftest import settings_for
from tests.helpers import Api, Org, Person, make_deal

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

WRITERS = 64
ROUNDS = 6


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A pool as large as the writers, so that all 64 hold a transaction at once; opening 64
    # connections at once on a loaded machine may take a while, and this test is about the
    # events' order, not about latency: generous connect and checkout timeouts.
    return settings_for(
        database_url,
        webhooks_allow_private=True,
        db_pool_size=WRITERS + 4,
        db_max_overflow=4,
        db_connect_timeout=30,
        db_pool_timeout=60,
    )


class SlowCommit(UnitOfWork):
    """The real unit of work, committing after a random pause: commits land out of seq order."""

    async def commit(self) -> None:
        await asyncio.sleep(random.uniform(0, 0.04))
        await super().commit()


def _actor(person: Person, org: Org) -> Actor:
    manager = person.body.get("manager_id")
    return Actor(
        uuid.UUID(person.id),
        uuid.UUID(org.id),
        MemberRole(person.body["role"]),
        uuid.UUID(manager) if manager else None,
        uuid.uuid4(),
    )


async def _append(uow: UnitOfWork, org: Org, subject: str, deal_id: uuid.UUID | None = None) -> int:
    return await uow.events.append(
        organization_id=uuid.UUID(org.id),
        type="deal.updated" if deal_id else "member.updated",
        actor_id=uuid.UUID(org.admin_id),
        subject_type="deal" if deal_id else "member",
        subject_id=deal_id or uuid.UUID(subject),
        deal_id=deal_id,
        data={"changes": {}},
    )


async def _committed(app: Any, org: Org) -> list[tuple[uuid.UUID, int]]:
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        rows = await uow.session.execute(
            sa.select(Event.id, Event.seq).where(Event.organization_id == uuid.UUID(org.id)).order_by(Event.seq)  # type: ignore[arg-type]
        )
        return [(r.id, r.seq) for r in rows]
    finally:
        await uow.close()


async def _feed(api: Api, after: int = 0) -> list[dict[str, Any]]:
    return (await api.get("/v1/events", params={"after_seq": after, "limit": 200})).json()["items"]  # type: ignore[no-any-return]


async def test_a_reader_polling_during_64_writers_gets_every_committed_event_once_in_order(
    app: Any, api: Api, org: Org, team: dict[str, Person]
) -> None:
    seller = team["seller"]
    seller_actor = _actor(seller, org)
    rolled_back: list[int] = []
    writers_done = asyncio.Event()

    async def writer(i: int) -> None:
        for r in range(ROUNDS):
            kind = (i + r) % 3
            if kind == 0:  # the real app
                await make_deal(api.as_(seller), seller)
            elif kind == 1:  # the service layer, committing late
                data = DealCreate(name=f"W{i}-{r}", account_name="Acme", owner_id=uuid.UUID(seller.id))
                await deals.create_deal(SlowCommit(app.state.sessionmaker), seller_actor, data)
            else:  # a write that draws its numbers and rolls back
                uow = UnitOfWork(app.state.sessionmaker)
                try:
                    async with uow:
                        rolled_back.append(await _append(uow, org, seller.id))
                        await asyncio.sleep(random.uniform(0, 0.04))
                finally:
                    await uow.close()

    async def reader() -> list[dict[str, Any]]:
        collected: list[dict[str, Any]] = []
        after, cursor = 0, None
        while True:
            finished = writers_done.is_set()
            params: dict[str, Any] = {"after_seq": after, "limit": 50, **({"cursor": cursor} if cursor else {})}
            page = (await api.get("/v1/events", params=params)).json()
            collected += page["items"]
            if page["items"]:
                after = page["items"][-1]["seq"]
            cursor = page["next_cursor"]
            if finished and not page["items"] and not cursor:
                return collected
            await asyncio.sleep(0.002)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(i) for i in range(WRITERS)))
    writers_done.set()
    collected = await asyncio.wait_for(reading, timeout=120)

    committed = await _committed(app, org)
    seqs = [e["seq"] for e in collected]
    assert seqs == sorted(set(seqs)), "the feed repeated an event or went back"
    assert [uuid.UUID(e["id"]) for e in collected] == [event_id for event_id, _ in committed]
    assert len(committed) >= WRITERS * ROUNDS * 2 // 3
    assert rolled_back and not set(rolled_back) & set(seqs)


async def test_an_open_transaction_holds_the_feed_back_but_blocks_no_writer_and_a_rollback_releases_it(
    app: Any, api: Api, org: Org, team: dict[str, Person]
) -> None:
    seller = team["seller"]
    before = (await _committed(app, org))[-1][1]
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        async with uow:
            held = await _append(uow, org, seller.id)
            # The same organisation's writers commit while that transaction is open.
            made = await asyncio.wait_for(
                asyncio.gather(*(make_deal(api.as_(seller), seller) for _ in range(5))), timeout=10
            )
            later = [seq for _, seq in await _committed(app, org) if seq > before]
            assert len(later) == len(made) == 5 and min(later) > held
            # ... but the feed stops below the open transaction's number.
            assert await _feed(api, before) == []
        # Leaving without a commit rolls back: the feed moves on at once.
    finally:
        await uow.close()
    feed = await _feed(api, before)
    assert [e["type"] for e in feed] == ["deal.created"] * 5
    assert held not in {e["seq"] for e in feed}


async def test_a_transaction_left_open_then_committed_comes_first_in_the_feed(
    app: Any, api: Api, org: Org, team: dict[str, Person]
) -> None:
    seller = team["seller"]
    before = (await _committed(app, org))[-1][1]
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        async with uow:
            held = await _append(uow, org, seller.id)
            started = asyncio.get_running_loop().time()
            await asyncio.wait_for(make_deal(api.as_(seller), seller), timeout=10)
            assert asyncio.get_running_loop().time() - started < 5
            assert await _feed(api, before) == []
            await uow.commit()
    finally:
        await uow.close()
    feed = await _feed(api, before)
    assert [e["type"] for e in feed] == ["member.updated", "deal.created"]
    assert feed[0]["seq"] == held < feed[1]["seq"]


async def test_other_organisations_feeds_are_not_held_back(
    app: Any, api: Api, org: Org, team: dict[str, Person]
) -> None:
    from tests.conftest import bootstrap

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    other_api = api.as_(other.admin_key)
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        async with uow:
            await _append(uow, org, team["seller"].id)
            await other_api.make_member("seller", key=False)
            assert [e["type"] for e in await _feed(other_api)][-1] == "member.created"
    finally:
        await uow.close()


async def test_one_transaction_writes_the_events_of_one_organisation(app: Any, org: Org) -> None:
    from tests.conftest import bootstrap

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        async with uow:
            await _append(uow, org, org.admin_id)
            with pytest.raises(DBAPIError, match="one organisation only"):
                await _append(uow, other, other.admin_id)
    finally:
        await uow.close()


async def test_the_outbox_claims_a_deals_deliveries_in_seq_order_when_commits_are_not(
    app: Any, api: Api, org: Org, team: dict[str, Person]
) -> None:
    created = await api.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/in", "event_types": ["deal.*"]})
    assert created.status_code == 201, created.text
    deal_id = uuid.UUID((await make_deal(api, team["seller"]))["id"])

    async def claim() -> list[uuid.UUID]:
        uow = UnitOfWork(app.state.sessionmaker)
        try:
            async with uow:
                now = utcnow() + dt.timedelta(seconds=1)
                claimed = await uow.webhooks.claim_due(now=now, lease_until=now + dt.timedelta(minutes=5), limit=10)
                await uow.commit()
                return [row.id for row in claimed]
        finally:
            await uow.close()

    first = await claim()  # the deal's creation
    assert len(first) == 1
    await _mark_sent(app, first)

    early = UnitOfWork(app.state.sessionmaker)
    try:
        async with early:
            early_seq = await _append(early, org, org.admin_id, deal_id)
            late = UnitOfWork(app.state.sessionmaker)
            try:
                async with late:
                    late_seq = await _append(late, org, org.admin_id, deal_id)
                    await late.commit()
            finally:
                await late.close()
            assert early_seq < late_seq
            # The later event committed first: its delivery waits for the earlier one's fate.
            assert await claim() == []
            await early.commit()
    finally:
        await early.close()
    claimed = await claim()
    assert [seq for _, seq in await _delivery_seqs(app, claimed)] == [early_seq]


async def _mark_sent(app: Any, ids: list[uuid.UUID]) -> None:
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        async with uow:
            await uow.session.execute(
                sa.text("UPDATE webhook_delivery SET status = 'succeeded' WHERE id = ANY(:ids)"), {"ids": ids}
            )
            await uow.commit()
    finally:
        await uow.close()


async def _delivery_seqs(app: Any, ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, int]]:
    uow = UnitOfWork(app.state.sessionmaker)
    try:
        rows = await uow.session.execute(
            sa.text("SELECT id, event_seq FROM webhook_delivery WHERE id = ANY(:ids) ORDER BY event_seq"), {"ids": ids}
        )
        return [(r.id, r.event_seq) for r in rows]
    finally:
        await uow.close()
