"""Services commit once when a write succeeds, and never when a rule refuses it.

The unit of work here is the real one on a real SQLite database; it only counts commits.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db.engine import make_engine, make_sessionmaker
from app.db.models import Commitment, Deal, Member, StrategyVersion
from app.db.uow import UnitOfWork
from app.domain.development import CommitmentSource
from app.domain.errors import (
    CommitmentClosed,
    OwnerDecides,
    OwnerMustBeSeller,
    StrategyOwnedBySeller,
    TransferReasonRequired,
)
from app.domain.members import Actor, MemberRole
from app.schemas.deals import DealCreate, DealUpdate
from app.schemas.members import MemberCreate
from app.schemas.strategy import StrategyUpdate
from app.services import commitments, deals, members, strategy
from app.services.bootstrap import bootstrap_organization
from app.settings import Settings


class CountingUnitOfWork(UnitOfWork):
    commits = 0

    async def commit(self) -> None:
        await super().commit()
        CountingUnitOfWork.commits += 1


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[dict]:
    path = tmp_path / "svc.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
    sessionmaker = make_sessionmaker(engine)

    opened: list[CountingUnitOfWork] = []

    def uow() -> CountingUnitOfWork:  # one per use case, closed at the end like a request's
        opened.append(CountingUnitOfWork(sessionmaker))
        return opened[-1]

    boot = await bootstrap_organization(uow(), org_name="Acme", admin_email="ada@acme.test", admin_name="Ada")
    admin = Actor(boot.member_id, boot.organization_id, MemberRole.admin, None, uuid.uuid4())
    manager = await members.create_member(uow(), admin, MemberCreate(name="M", email="m@acme.test", role="manager"))
    seller = await members.create_member(
        uow(), admin, MemberCreate(name="S", email="s@acme.test", role="seller", manager_id=manager.id)
    )

    peer = await members.create_member(
        uow(), admin, MemberCreate(name="P", email="p@acme.test", role="seller", manager_id=manager.id)
    )

    def actor(member: Member) -> Actor:
        return Actor(member.id, member.organization_id, MemberRole(member.role), member.manager_id, uuid.uuid4())

    CountingUnitOfWork.commits = 0
    yield {
        "uow": uow,
        "engine": engine,
        "seller": actor(seller),
        "peer": actor(peer),
        "manager": actor(manager),
        "admin": admin,
    }
    for unit in opened:
        await unit.close()
    await engine.dispose()


async def _count(engine, model) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(model.__table__))).scalar_one())


async def test_a_refused_deal_commits_nothing(world) -> None:
    manager = world["manager"]
    with pytest.raises(OwnerMustBeSeller):
        await deals.create_deal(
            world["uow"](), manager, DealCreate(name="D", account_name="A", owner_id=manager.member_id)
        )
    assert CountingUnitOfWork.commits == 0
    assert await _count(world["engine"], Deal) == 0


async def test_a_deal_is_one_commit_and_a_refused_change_none(world) -> None:
    seller = world["seller"]
    view = await deals.create_deal(
        world["uow"](), seller, DealCreate(name="D", account_name="A", owner_id=seller.member_id)
    )
    assert CountingUnitOfWork.commits == 1
    change = DealUpdate(owner_id=world["peer"].member_id, name="Renamed")  # a transfer without a reason
    with pytest.raises(TransferReasonRequired):
        await deals.update_deal(world["uow"](), world["manager"], view.deal.id, change, None)
    assert CountingUnitOfWork.commits == 1
    unchanged = await deals.get_deal(world["uow"](), seller, view.deal.id)
    assert unchanged.deal.name == "D" and unchanged.deal.owner_id == seller.member_id


async def test_the_owner_s_manager_cannot_write_the_strategy(world) -> None:
    seller, manager = world["seller"], world["manager"]
    view = await deals.create_deal(
        world["uow"](), seller, DealCreate(name="D", account_name="A", owner_id=seller.member_id)
    )
    with pytest.raises(StrategyOwnedBySeller):
        await strategy.put_strategy(
            world["uow"](), manager, view.deal.id, StrategyUpdate(risks=["Budget"]), None, if_match_given=True
        )
    assert CountingUnitOfWork.commits == 1
    assert await _count(world["engine"], StrategyVersion) == 0
    await strategy.put_strategy(
        world["uow"](), seller, view.deal.id, StrategyUpdate(risks=["Budget"]), None, if_match_given=True
    )
    assert CountingUnitOfWork.commits == 2
    assert await _count(world["engine"], StrategyVersion) == 1


async def test_closing_a_commitment_is_one_commit_and_a_refusal_none(world) -> None:
    seller, manager = world["seller"], world["manager"]
    view = await deals.create_deal(
        world["uow"](), seller, DealCreate(name="D", account_name="A", owner_id=seller.member_id)
    )
    async with world["uow"]() as uow:
        made = Commitment(
            organization_id=seller.organization_id,
            member_id=seller.member_id,
            source=CommitmentSource.observation,
            source_id=uuid.uuid4(),
            deal_id=view.deal.id,
            text="Agree a next step",
        )
        uow.add(made)
        await uow.commit()
    CountingUnitOfWork.commits = 0
    with pytest.raises(OwnerDecides):
        await commitments.complete_commitment(world["uow"](), manager, made.id, None)
    assert CountingUnitOfWork.commits == 0
    done = await commitments.complete_commitment(world["uow"](), seller, made.id, "Done")
    assert CountingUnitOfWork.commits == 1 and done.commitment.status == "done"
    with pytest.raises(CommitmentClosed):
        await commitments.drop_commitment(world["uow"](), seller, made.id, None)
    assert CountingUnitOfWork.commits == 1
