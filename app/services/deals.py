"""Deal use cases: create, read, change, transfer, close, reopen, and CRM upserts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from app.db.models import Deal, DealExternalRef, LossReason
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.catalogs import ensure_active_loss_reason
from app.domain.deals import (
    UNSENT,
    Access,
    DealChange,
    DealEdit,
    DealFacts,
    Loss,
    Stage,
    ensure_can_change,
    ensure_can_create_for,
    ensure_new_deal,
    ensure_owner_is_seller,
    is_closed,
)
from app.domain.errors import DomainError, ExternalRefTaken, VersionConflict
from app.domain.ids import uuid7
from app.domain.members import Actor
from app.domain.money import Money
from app.domain.versioning import ensure_version
from app.schemas.deals import DealCreate, DealUpdate, DealUpsert
from app.schemas.deals import Loss as SentLoss
from app.schemas.deals import Money as SentMoney
from app.services import deal_reads, reviews
from app.services.access import deal_access, visible_deal
from app.services.auth import Caller, actor_of, authenticate, unknown

LISTING = "deals"


@dataclass
class DealView:
    """A deal with its external references, and the review of a lost deal; on read paths the deal
    and its references are plain rows, not ORM objects."""

    deal: Any
    refs: list[Any] = field(default_factory=list)
    review_id: uuid.UUID | None = None

    @property
    def ref_documents(self) -> list[dict[str, str]]:
        """The references as the API renders them."""
        return [{"source": r.source, "external_id": r.external_id} for r in self.refs]


# --- reading ---------------------------------------------------------------


async def get_deal(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID) -> DealView:
    deal = await visible_deal(uow, actor, deal_id)
    refs = await uow.deals.refs_of([deal.id])
    return DealView(deal, refs[deal.id], await _review_id(uow, deal))


# --- writing ---------------------------------------------------------------


async def create_deal(uow: UnitOfWork, actor: Actor, data: DealCreate) -> DealView:
    return await _create_for(uow, actor, *_new_deal_of(data))


async def create_deal_of_caller(uow: UnitOfWork, caller: Caller, data: DealCreate) -> DealView:
    """``create_deal`` for a caller not yet authenticated. On PostgreSQL a plain new deal (no
    reference, no loss) is taken to be the caller's own, as a seller's: the statement that finds
    the caller writes it when the caller is its owner and ``SELF_OWNER`` (one round trip in all),
    and else writes nothing and the caller, found, goes the usual way."""
    facts, refs = _new_deal_of(data)
    if caller.member is None and uow.deal_writes.direct and _plain_new_deal(facts, refs):
        row = await uow.deal_writes.create_as_owner(caller.credential, **_written_new(facts))
        if row is None:
            raise unknown(caller)
        if row.id is not None:
            return DealView(row)
        actor = actor_of(row)
    else:
        actor = (await authenticate(caller)).actor
    return await _create_for(uow, actor, facts, refs)


def _new_deal_of(data: DealCreate) -> tuple[DealFacts, list[tuple[str, str]]]:
    facts = DealFacts(
        name=data.name,
        account_name=data.account_name,
        owner_id=data.owner_id,
        stage=data.stage,
        amount=_money(data.amount),
        expected_close_date=data.expected_close_date,
        loss=_loss(data.loss),
    )
    return facts, [(ref.source, ref.external_id) for ref in data.external_refs]


def _written_new(facts: DealFacts) -> dict[str, Any]:
    """What the one-statement creation writes of a new deal beside its facts' columns: its id, its
    time, its close time when created closed, and its `deal.created` event's data."""
    now = utcnow()
    return {
        "deal_id": uuid7(),
        "columns": columns_of(facts),
        "closed_at": now if is_closed(facts.stage) else None,
        "event_data": {**facts.to_json(), "external_refs": []},
        "now": now,
    }


def _plain_new_deal(facts: DealFacts, refs: list[tuple[str, str]]) -> bool:
    """No reference and no loss, and a new deal as it stands (what else it would break is refused
    after the caller is authenticated: 401 before 422)."""
    if refs or facts.loss is not None:
        return False
    try:
        ensure_new_deal(facts)
    except DomainError:
        return False
    return True


async def _create_for(uow: UnitOfWork, actor: Actor, facts: DealFacts, refs: list[tuple[str, str]]) -> DealView:
    if not refs and facts.loss is None and uow.deal_writes.available:
        view = await _create_alone(uow, actor, facts)
        if view is not None:
            return view
    async with uow:
        view = await _create(uow, actor, facts, refs)
        await uow.commit()
    return view


async def _create_alone(uow: UnitOfWork, actor: Actor, facts: DealFacts) -> DealView | None:
    """A deal with no external reference and no loss, its event and the event's deliveries, in one
    statement (the hot write: app/db/repositories/deal_writes.py), under the rules of ``_create``.
    None when more endpoints take `deal.created` than one statement carries: nothing was written,
    the general path runs."""
    if facts.owner_id == actor.member_id:
        owner: Any = actor.as_owner()  # the caller's own member: active, as authentication found it
    else:
        owner = await uow.deal_writes.owner(actor.organization_id, actor.member_id, facts.owner_id)
    ensure_owner_is_seller(owner)
    ensure_can_create_for(actor, owner.id, bool(owner.in_line))
    ensure_new_deal(facts)
    row = await uow.deal_writes.create(
        organization_id=actor.organization_id, actor_id=actor.member_id, **_written_new(facts)
    )
    return None if row is None else DealView(row)


async def update_deal(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, data: DealUpdate, if_match: frozenset[int] | None
) -> DealView:
    edit = edit_of(data)
    if uow.deal_writes.available:
        row = await uow.deal_writes.deal(actor.organization_id, deal_id)
        return await _change(uow, actor, deal_id, row, edit, if_match)
    return await _update(uow, actor, deal_id, edit, if_match)


async def update_deal_of_caller(
    uow: UnitOfWork, caller: Caller, deal_id: uuid.UUID, data: DealUpdate, if_match: frozenset[int] | None
) -> DealView:
    """``update_deal`` for a caller not yet authenticated: on PostgreSQL the caller's member is found
    by the statement that reads the deal (an owner's change then costs two round trips)."""
    edit = edit_of(data)
    if not uow.deal_writes.available:
        return await _update(uow, (await authenticate(caller)).actor, deal_id, edit, if_match)
    row = await uow.deal_writes.deal_of_caller(caller.credential, deal_id)
    if row is None:
        raise unknown(caller)
    return await _change(uow, actor_of(row), deal_id, None if row.id is None else row, edit, if_match)


async def _change(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, row: Any | None, edit: DealEdit, if_match: frozenset[int] | None
) -> DealView:
    """The change in one statement after the read of ``row`` when it can be (``_change_alone``), or
    else the general path."""
    alone = await _change_alone(uow, actor, row, edit, if_match)
    return alone if alone is not None else await _update(uow, actor, deal_id, edit, if_match)


async def _update(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, edit: DealEdit, if_match: frozenset[int] | None
) -> DealView:
    """The general path of a change: the deal locked, every rule of ``_apply``, one commit."""
    async with uow:
        deal = await visible_deal(uow, actor, deal_id, for_update=True)
        ensure_version(deal.version, if_match)
        if await _apply(uow, actor, deal, edit):
            await uow.commit()
        refs = await uow.deals.refs_of([deal.id])
        review_id = await _review_id(uow, deal)
    return DealView(deal, refs[deal.id], review_id)


async def _change_alone(
    uow: UnitOfWork, actor: Actor, row: Any | None, edit: DealEdit, if_match: frozenset[int] | None
) -> DealView | None:
    """The owner's change of their deal's facts or stage, with its events and their deliveries, in one statement after
    the read of ``row`` (the hot write: app/db/repositories/deal_writes.py), under the rules of ``_apply``.
    None when the general path must run instead, with nothing written: no row (the general path answers 404), the
    caller does not own the deal (visibility and the line's rules are the general path's), the change transfers the
    deal or loses it or reopens a lost one (their owner checks and reviews), the deal changed since it was read, or
    more endpoints take an event than one statement carries."""
    if row is None or row.owner_id != actor.member_id:
        return None
    ensure_version(row.version, if_match)
    change = DealChange.of(DealFacts.of(row), edit)
    refs = deal_reads.refs_of(row)
    if change is None:
        return DealView(row, refs, row.review_id)
    stage = change.stage
    if change.transfers or change.loss is not None or (stage is not None and (stage.loses or stage.reopens)):
        return None
    ensure_can_change(actor, Access.of(actor, row, ()), change)  # the owner: no line to look up
    now = utcnow()
    changed = await uow.deal_writes.change(
        organization_id=actor.organization_id,
        actor_id=actor.member_id,
        deal_id=row.id,
        read_version=row.version,
        columns=columns_of(change.after),
        closed_at=change.closed_at(row.closed_at, now),
        events=change.events(),
        now=now,
    )
    return None if changed is None else DealView(changed, refs, None)


async def upsert_deal(
    uow: UnitOfWork, actor: Actor, source: str, external_id: str, data: DealUpsert, if_match: frozenset[int] | None
) -> tuple[DealView, str]:
    async with uow:
        view, outcome = await _upsert(uow, actor, source, external_id, edit_of(data), if_match)
        if outcome != "unchanged":
            await uow.commit()
    return view, outcome


async def upsert_as_integration(
    uow: UnitOfWork, actor: Actor, source: str, external_id: str, edit: DealEdit
) -> tuple[DealView, str]:
    """A CRM integration's upsert (app/services/crm_inbox.py), in the caller's unit of work: the
    same code and rules as `PUT /v1/deals/by-external-ref/...`; the caller commits."""
    return await _upsert(uow, actor, source, external_id, edit, None)


async def record_deleted_in_crm(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, source: str, external_id: str
) -> None:
    """A CRM deleted the deal: recorded, never done; the deal keeps its history."""
    deal = await visible_deal(uow, actor, deal_id)
    await _event(uow, actor, deal, "deal.deleted_in_crm", {"source": source, "external_id": external_id})


async def _upsert(
    uow: UnitOfWork,
    actor: Actor,
    source: str,
    external_id: str,
    edit: DealEdit,
    if_match: frozenset[int] | None,
) -> tuple[DealView, str]:
    deal_id = await uow.deals.deal_id_by_ref(actor.organization_id, source, external_id)
    if deal_id is None:
        if if_match is not None:
            raise VersionConflict("The deal does not exist yet, so no version matches If-Match.")
        view = await _create(uow, actor, edit.new_deal(), [(source, external_id)])
        return view, "created"
    deal = await visible_deal(uow, actor, deal_id, for_update=True)
    ensure_version(deal.version, if_match)
    changed = await _apply(uow, actor, deal, edit)
    refs = await uow.deals.refs_of([deal.id])
    return DealView(deal, refs[deal.id], await _review_id(uow, deal)), "updated" if changed else "unchanged"


async def _create(uow: UnitOfWork, actor: Actor, facts: DealFacts, refs: list[tuple[str, str]]) -> DealView:
    # The owner's role, and whether they are below the actor in the lines: one statement.
    owner = (await uow.members.owners(actor.organization_id, actor.member_id, [facts.owner_id])).get(facts.owner_id)
    ensure_owner_is_seller(owner)
    assert owner is not None
    ensure_can_create_for(actor, owner.id, bool(owner.in_line))
    ensure_new_deal(facts)
    if facts.loss is not None:
        await _ensure_loss_reason(uow, actor, facts.loss.reason_code)
    deal = Deal(
        organization_id=actor.organization_id,
        closed_at=utcnow() if is_closed(facts.stage) else None,
        **columns_of(facts),
    )
    uow.add(deal)
    await uow.flush()
    saved_refs = [
        DealExternalRef(organization_id=actor.organization_id, deal_id=deal.id, source=source, external_id=external_id)
        for source, external_id in dict.fromkeys(refs)
    ]
    uow.add_all(saved_refs)
    await uow.flush(conflict=ExternalRefTaken())
    snapshot = {
        **facts.to_json(),
        "external_refs": [{"source": r.source, "external_id": r.external_id} for r in saved_refs],
    }
    await _event(uow, actor, deal, "deal.created", snapshot)
    review_id = None
    if facts.stage == Stage.closed_lost:
        review_id = (await reviews.open_or_reuse_review(uow, actor, deal)).id
    return DealView(deal, saved_refs, review_id)


async def _apply(uow: UnitOfWork, actor: Actor, deal: Deal, edit: DealEdit) -> bool:
    """Apply an edit under the deal rules; False when it changes nothing."""
    change = DealChange.of(DealFacts.of(deal), edit)
    if change is None:
        return False
    if change.transfers:
        new_owner = await uow.members.get(actor.organization_id, change.after.owner_id)
        ensure_owner_is_seller(new_owner)
    access = await deal_access(uow, actor, deal)
    ensure_can_change(actor, access, change)
    if change.loss is not None:
        await _ensure_loss_reason(uow, actor, change.loss.reason_code)

    for key, value in columns_of(change.after).items():
        setattr(deal, key, value)
    stage = change.stage
    deal.closed_at = change.closed_at(deal.closed_at, utcnow())
    deal.version += 1
    deal.updated_at = utcnow()
    await uow.flush()

    for type_, data in change.events():
        await _event(uow, actor, deal, type_, data)
    # Every loss gets its review conversation; a reopened deal's review records the reopening.
    if stage is not None and stage.loses:
        await reviews.open_or_reuse_review(uow, actor, deal)
    elif stage is not None and stage.reopens and stage.before == Stage.closed_lost:
        await reviews.mark_reopened(uow, actor, deal)
    return True


async def _review_id(uow: UnitOfWork, deal: Deal) -> uuid.UUID | None:
    """The review of a lost deal (opened in the same transaction when it was just lost)."""
    if deal.stage != Stage.closed_lost:
        return None
    return await uow.reviews.id_of_deal(deal.id)


async def _ensure_loss_reason(uow: UnitOfWork, actor: Actor, code: str) -> None:
    ensure_active_loss_reason(await uow.catalogs.get(LossReason, actor.organization_id, code), code)


async def _event(uow: UnitOfWork, actor: Actor, deal: Deal, type_: str, data: dict[str, Any]) -> None:
    await uow.events.record(
        actor,
        type_,
        subject_type="deal",
        subject_id=deal.id,
        deal_id=deal.id,
        data=data,
    )


def edit_of(data: DealUpdate) -> DealEdit:
    """What the request sent; the amount and the expected close date may be sent as null."""
    sent = data.model_fields_set
    return DealEdit(
        name=data.name,
        account_name=data.account_name,
        amount=_money(data.amount) if "amount" in sent else UNSENT,
        expected_close_date=data.expected_close_date if "expected_close_date" in sent else UNSENT,
        stage=data.stage,
        owner_id=data.owner_id,
        transfer_reason=data.transfer_reason,
        loss=_loss(data.loss),
    )


def _money(amount: SentMoney | None) -> Money | None:
    return None if amount is None else Money.parse(amount.amount, amount.currency)


def _loss(loss: SentLoss | None) -> Loss | None:
    return None if loss is None else Loss(loss.reason_code, loss.competitor, loss.detail)


def columns_of(facts: DealFacts) -> dict[str, Any]:
    """The deal's columns that hold its facts."""
    amount, loss = facts.amount, facts.loss
    return {
        "name": facts.name,
        "account_name": facts.account_name,
        "amount_minor": None if amount is None else amount.minor,
        "currency": None if amount is None else amount.currency,
        "expected_close_date": facts.expected_close_date,
        "stage": facts.stage,
        "owner_id": facts.owner_id,
        "loss_reason_code": None if loss is None else loss.reason_code,
        "loss_competitor": None if loss is None else loss.competitor,
        "loss_detail": None if loss is None else loss.detail,
    }
