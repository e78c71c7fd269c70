"""Deal use cases: create, read, change, transfer, close, reopen, and CRM upserts."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.db.models import Deal, DealExternalRef, LossReason, Member
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.changes import diff
from app.domain.deals import (
    STAGES_BY_STATUS,
    DealStatus,
    Stage,
    check_new_deal,
    check_update,
    ensure_can_create_for,
    ensure_owner_is_seller,
    is_closed,
)
from app.domain.errors import (
    DomainError,
    ExternalRefTaken,
    FieldProblem,
    MissingFields,
    UnknownLossReason,
    VersionConflict,
)
from app.domain.members import Actor
from app.domain.money import from_minor, to_minor
from app.domain.versioning import ensure_version
from app.schemas.deals import DealBatchRecord, DealCreate, DealUpdate, DealUpsert, ListFilters
from app.services import reviews
from app.services.access import deal_access, visible_deal
from app.services.pagination import PageRequest, PageResult, after_id, build_page

LISTING = "deals"


@dataclass
class DealView:
    """A deal with its external references; on read paths both are plain rows, not ORM objects."""

    deal: Any
    refs: list[Any] = field(default_factory=list)


# --- reading ---------------------------------------------------------------


async def get_deal(uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID) -> DealView:
    deal = await visible_deal(uow, actor, deal_id)
    refs = await uow.deals.refs_of([deal.id])
    return DealView(deal, refs[deal.id])


async def list_deals(uow: UnitOfWork, actor: Actor, page: PageRequest, filters: ListFilters) -> PageResult[DealView]:
    stages: list[Stage] | None = None
    if filters.status is not None:
        stages = list(STAGES_BY_STATUS[filters.status])
    if filters.stage is not None:
        stages = [filters.stage] if stages is None or filters.stage in stages else []
    rows = await uow.deals.list_page(
        actor,
        after=after_id(LISTING, page),
        limit=page.limit + 1,
        owner_id=filters.owner_id,
        stages=stages,
        closed_from=_day_start(filters.closed_from),
        closed_before=_day_start(filters.closed_to + dt.timedelta(days=1)) if filters.closed_to else None,
        updated_since=filters.updated_since,
        q=filters.q,
    )
    result = build_page(LISTING, page, rows)
    refs = await uow.deals.refs_of([d.id for d in result.items])
    return PageResult([DealView(d, refs[d.id]) for d in result.items], result.next_cursor)


def _day_start(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


# --- writing ---------------------------------------------------------------


async def create_deal(uow: UnitOfWork, actor: Actor, data: DealCreate) -> DealView:
    async with uow:
        view = await _create(uow, actor, data.model_dump(exclude={"external_refs"}), data.model_dump()["external_refs"])
        await uow.commit()
    return view


async def update_deal(
    uow: UnitOfWork, actor: Actor, deal_id: uuid.UUID, data: DealUpdate, if_match: frozenset[int] | None
) -> DealView:
    async with uow:
        deal = await visible_deal(uow, actor, deal_id, for_update=True)
        ensure_version(deal.version, if_match)
        if await _apply(uow, actor, deal, data.model_dump(exclude_unset=True)):
            await uow.commit()
        refs = await uow.deals.refs_of([deal.id])
    return DealView(deal, refs[deal.id])


async def upsert_deal(
    uow: UnitOfWork, actor: Actor, source: str, external_id: str, data: DealUpsert, if_match: frozenset[int] | None
) -> tuple[DealView, str]:
    async with uow:
        view, outcome = await _upsert(uow, actor, source, external_id, data.model_dump(exclude_unset=True), if_match)
        if outcome != "unchanged":
            await uow.commit()
    return view, outcome


@dataclass
class BatchOutcome:
    """What became of one record of a batch: an outcome, or the rule it broke."""

    index: int
    source: str
    external_id: str
    outcome: str
    deal_id: uuid.UUID | None = None
    error: DomainError | None = None


async def batch_upsert(uow: UnitOfWork, actor: Actor, records: list[tuple[int, DealBatchRecord]]) -> list[BatchOutcome]:
    """Each record is applied in its own savepoint: one that breaks a rule is rolled back and
    reported, the others are committed together in one transaction."""
    results: list[BatchOutcome] = []
    async with uow:
        for index, record in records:
            fields = record.model_dump(exclude_unset=True, exclude={"source", "external_id"})
            try:
                async with uow.savepoint():
                    view, outcome = await _upsert(uow, actor, record.source, record.external_id, fields, None)
            except DomainError as error:
                results.append(BatchOutcome(index, record.source, record.external_id, "error", error=error))
                continue
            results.append(BatchOutcome(index, record.source, record.external_id, outcome, deal_id=view.deal.id))
        await uow.commit()
    return results


async def _upsert(
    uow: UnitOfWork,
    actor: Actor,
    source: str,
    external_id: str,
    fields: dict[str, Any],
    if_match: frozenset[int] | None,
) -> tuple[DealView, str]:
    deal_id = await uow.deals.deal_id_by_ref(actor.organization_id, source, external_id)
    if deal_id is None:
        if if_match is not None:
            raise VersionConflict("The deal does not exist yet, so no version matches If-Match.")
        missing = [name for name in ("name", "account_name", "owner_id") if fields.get(name) is None]
        if missing:
            raise MissingFields(
                "A new deal needs name, account_name and owner_id.",
                fields=[FieldProblem((name,), "Field required", "missing") for name in missing],
            )
        fields.pop("transfer_reason", None)
        view = await _create(uow, actor, fields, [{"source": source, "external_id": external_id}])
        return view, "created"
    deal = await visible_deal(uow, actor, deal_id, for_update=True)
    ensure_version(deal.version, if_match)
    changed = await _apply(uow, actor, deal, fields)
    refs = await uow.deals.refs_of([deal.id])
    return DealView(deal, refs[deal.id]), "updated" if changed else "unchanged"


async def _create(uow: UnitOfWork, actor: Actor, fields: dict[str, Any], refs: list[dict[str, str]]) -> DealView:
    owner = await uow.members.get(actor.organization_id, fields["owner_id"])
    ensure_owner_is_seller(owner)
    assert owner is not None
    chain = await uow.members.manager_chain(actor.organization_id, owner.id)
    ensure_can_create_for(actor, owner.id, actor.member_id in chain[1:])
    stage = Stage(fields.get("stage") or Stage.prospecting)
    loss = fields.get("loss")
    check_new_deal(stage, loss is not None)
    if loss is not None:
        await _ensure_loss_reason(uow, actor, loss["reason_code"])
    now = utcnow()
    deal = Deal(
        organization_id=actor.organization_id,
        name=fields["name"],
        account_name=fields["account_name"],
        expected_close_date=fields.get("expected_close_date"),
        stage=stage,
        owner_id=owner.id,
        closed_at=now if is_closed(stage) else None,
        **_money(fields.get("amount")),
        **_loss_columns(loss),
    )
    uow.add(deal)
    await uow.flush()
    saved_refs = [
        DealExternalRef(
            organization_id=actor.organization_id, deal_id=deal.id, source=ref["source"], external_id=ref["external_id"]
        )
        for ref in _unique(refs)
    ]
    uow.add_all(saved_refs)
    await uow.flush(conflict=ExternalRefTaken())
    await _event(uow, actor, deal, "deal.created", _snapshot(deal, saved_refs))
    if stage == Stage.closed_lost:
        await reviews.open_or_reuse_review(uow, actor, deal)
    return DealView(deal, saved_refs)


async def _apply(uow: UnitOfWork, actor: Actor, deal: Deal, changes: dict[str, Any]) -> bool:
    """Apply a change set under the deal rules; False when it changes nothing."""
    transfer_reason = changes.pop("transfer_reason", None)
    loss = changes.pop("loss", None)
    wanted: dict[str, Any] = {k: changes[k] for k in ("name", "account_name", "expected_close_date") if k in changes}
    if "amount" in changes:
        wanted.update(_money(changes["amount"]))
    field_changes = {k: v for k, v in wanted.items() if getattr(deal, k) != v}
    new_stage = Stage(changes["stage"]) if changes.get("stage") is not None else None
    if new_stage == deal.stage:
        new_stage = None
    if (
        loss is not None
        and new_stage is None
        and deal.stage == Stage.closed_lost
        and _loss_columns(loss) == _loss_of(deal)
    ):
        loss = None  # a CRM resending the loss it already recorded
    new_owner_id = changes.get("owner_id")
    transfers = new_owner_id is not None and new_owner_id != deal.owner_id
    if not field_changes and new_stage is None and not transfers and loss is None:
        return False

    new_owner: Member | None = None
    if new_owner_id is not None and transfers:
        new_owner = await uow.members.get(actor.organization_id, new_owner_id)
        ensure_owner_is_seller(new_owner)
    access = await deal_access(uow, actor, deal)
    change = check_update(
        actor,
        access,
        stage=Stage(deal.stage),
        new_stage=new_stage,
        changes_other_fields=bool(field_changes),
        transfers=transfers,
        transfer_reason=transfer_reason,
        loss_given=loss is not None,
    )
    if loss is not None:
        await _ensure_loss_reason(uow, actor, loss["reason_code"])

    before = {k: getattr(deal, k) for k in field_changes}
    for key, value in field_changes.items():
        setattr(deal, key, value)
    previous_owner = deal.owner_id
    if new_owner is not None:
        deal.owner_id = new_owner.id
    if change is not None:
        deal.stage = change.after
        if change.closes:
            deal.closed_at = utcnow()
        if change.reopens:
            deal.closed_at = None
        for key, value in _loss_columns(loss).items():  # cleared on reopen and on a win
            setattr(deal, key, value)
    deal.version += 1
    deal.updated_at = utcnow()
    await uow.flush()

    if field_changes:
        await _event(uow, actor, deal, "deal.updated", {"changes": diff(before, field_changes)})
    if new_owner is not None:
        await _event(
            uow,
            actor,
            deal,
            "deal.owner_transferred",
            {"from": str(previous_owner), "to": str(new_owner.id), "reason": (transfer_reason or "").strip()},
        )
    if change is not None:
        data: dict[str, Any] = {"from": str(change.before), "to": str(change.after), "reopened": change.reopens}
        if change.loses:
            data["loss"] = _loss_public(deal)
        await _event(uow, actor, deal, "deal.stage_changed", data)
        # Every loss gets its review conversation; a reopened deal's review records the reopening.
        if change.loses:
            await reviews.open_or_reuse_review(uow, actor, deal)
        elif change.reopens and change.before == Stage.closed_lost:
            await reviews.mark_reopened(uow, actor, deal)
    return True


async def _ensure_loss_reason(uow: UnitOfWork, actor: Actor, code: str) -> None:
    reason = await uow.catalogs.get(LossReason, actor.organization_id, code)
    if reason is None or not reason.active:
        raise UnknownLossReason(f"{code!r} is not an active loss reason of the organisation.")


async def _event(uow: UnitOfWork, actor: Actor, deal: Deal, type_: str, data: dict[str, Any]) -> None:
    await uow.events.record(
        actor,
        type_,
        subject_type="deal",
        subject_id=deal.id,
        deal_id=deal.id,
        data=data,
    )


def _money(amount: dict[str, str] | None) -> dict[str, Any]:
    if amount is None:
        return {"amount_minor": None, "currency": None}
    return {"amount_minor": to_minor(amount["amount"], amount["currency"]), "currency": amount["currency"]}


def _loss_columns(loss: dict[str, Any] | None) -> dict[str, Any]:
    if loss is None:
        return {"loss_reason_code": None, "loss_competitor": None, "loss_detail": None}
    return {
        "loss_reason_code": loss["reason_code"],
        "loss_competitor": loss.get("competitor"),
        "loss_detail": loss.get("detail"),
    }


def _loss_of(deal: Deal) -> dict[str, Any]:
    return {k: getattr(deal, k) for k in ("loss_reason_code", "loss_competitor", "loss_detail")}


def _loss_public(deal: Deal) -> dict[str, Any] | None:
    if deal.loss_reason_code is None:
        return None
    return {"reason_code": deal.loss_reason_code, "competitor": deal.loss_competitor, "detail": deal.loss_detail}


def _unique(refs: list[dict[str, str]]) -> list[dict[str, str]]:
    return list({(r["source"], r["external_id"]): r for r in refs}.values())


def _snapshot(deal: Deal, refs: list[DealExternalRef]) -> dict[str, Any]:
    amount = (
        None
        if deal.amount_minor is None
        else {"amount": from_minor(deal.amount_minor, deal.currency or ""), "currency": deal.currency}
    )
    return {
        "name": deal.name,
        "account_name": deal.account_name,
        "amount": amount,
        "stage": str(deal.stage),
        "owner_id": str(deal.owner_id),
        "expected_close_date": deal.expected_close_date.isoformat() if deal.expected_close_date else None,
        "loss": _loss_public(deal),
        "external_refs": [{"source": r.source, "external_id": r.external_id} for r in refs],
    }


def status_of(stage: str) -> DealStatus:
    return next(status for status, stages in STAGES_BY_STATUS.items() if stage in stages)
