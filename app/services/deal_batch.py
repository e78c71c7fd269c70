"""CRM batch upsert, set-based: a batch of up to 500 records in a handful of statements.

A batch means what its records would mean upserted one after another (each as
``PUT /v1/deals/by-external-ref/...``, a record that breaks a rule leaving nothing behind), and
its results, deals, versions, reviews and events are those. It is not run that way: the deals
its references name are loaded and locked in one statement, the owners it names in another (the
loss reasons in a third), then every record goes through the deal rules in Python, in order,
against the deals as the records before it left them; what the good records did is then written
with one statement per kind: new deals, their references, changed deals, reviews, events with
their outbox rows. The statements a batch sends do not grow with its records.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from app.db.models import ClosedLostReview
from app.db.types import utcnow
from app.db.uow import UnitOfWork
from app.domain.catalogs import ensure_active_loss_reason
from app.domain.changes import NewEvent
from app.domain.deals import (
    Access,
    DealChange,
    DealEdit,
    DealFacts,
    Stage,
    ensure_can_change,
    ensure_can_create_for,
    ensure_new_deal,
    ensure_owner_is_seller,
    is_closed,
    sees_deal,
)
from app.domain.errors import DomainError, ExternalRefTaken, NotFound
from app.domain.ids import uuid7
from app.domain.members import Actor, MemberRole, OwnerFacts
from app.domain.reviews import ReviewStatus, choose_reviewer, due_on, iso_week
from app.schemas.deals import DealBatchRecord
from app.services.access import NO_SUCH_DEAL
from app.services.deals import columns_of, edit_of


@dataclass
class BatchOutcome:
    """What became of one record of a batch: an outcome, or the rule it broke."""

    index: int
    source: str
    external_id: str
    outcome: str
    deal_id: uuid.UUID | None = None
    error: DomainError | None = None


@dataclass(slots=True)
class _Deal:
    """A deal as the batch has left it so far, column by column (a ``DealRow``)."""

    id: uuid.UUID
    name: str
    account_name: str
    amount_minor: int | None
    currency: str | None
    expected_close_date: dt.date | None
    stage: str
    owner_id: uuid.UUID
    loss_reason_code: str | None
    loss_competitor: str | None
    loss_detail: str | None
    closed_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    assigned: bool = False  # the actor holds an active assignment on it
    ref: tuple[str, str] | None = None  # the reference a new deal is created with
    changed: bool = False


# The columns of a deal that a _Deal holds: its fields without a default (the rest are the batch's).
_DEAL_COLUMNS = tuple(f.name for f in fields(_Deal) if f.default is MISSING)


@dataclass(frozen=True, slots=True)
class _ReviewStep:
    """A loss to open (or reuse) the deal's review for, or a reopening to mark on it: resolved
    into a review write and an event once the reviews and the owners' managers are loaded."""

    kind: str  # "open" or "reopened"
    deal: _Deal
    owner_id: uuid.UUID
    stage: str
    closed_at: dt.datetime | None
    amount_minor: int | None
    currency: str | None
    loss_reason_code: str | None
    competitor: str | None


@dataclass
class _Review:
    """A closed-lost review as the batch has left it so far; ``row`` is every column."""

    row: dict[str, Any]
    new: bool
    touched: bool = False


@dataclass
class DealBatch:
    actor: Actor
    now: dt.datetime
    deals: dict[tuple[str, str], _Deal] = field(default_factory=dict)
    owners: dict[uuid.UUID, OwnerFacts] = field(default_factory=dict)
    in_line: dict[uuid.UUID, bool] = field(default_factory=dict)  # owner below the actor in the lines
    loss_reasons: dict[str, Any] = field(default_factory=dict)
    # Events in the order the records make them; review steps stand where their event goes.
    events: list[NewEvent | _ReviewStep] = field(default_factory=list)

    # --- reading: one statement per kind ----------------------------------------

    async def load(self, uow: UnitOfWork, records: list[tuple[int, DealBatchRecord]]) -> None:
        await self.load_deals(uow, [(record.source, record.external_id) for _, record in records])
        await self.load_owners(uow, {record.owner_id for _, record in records if record.owner_id is not None})
        await self.load_loss_reasons(uow, {record.loss.reason_code for _, record in records if record.loss is not None})

    async def load_deals(self, uow: UnitOfWork, refs: list[tuple[str, str]]) -> None:
        """The deals the references name, locked."""
        by_id: dict[uuid.UUID, _Deal] = {}
        for found in await uow.deals.by_refs(self.actor, list(dict.fromkeys(refs))):
            row = found._mapping  # by key: a Row's attributes cost a failed lookup each
            deal = by_id.get(row["id"])
            if deal is None:  # one deal may have several references
                deal = by_id[row["id"]] = _Deal(
                    **{name: row[name] for name in _DEAL_COLUMNS}, assigned=bool(row["assigned"])
                )
                self.in_line[deal.owner_id] = bool(row["owner_in_line"])
            self.deals[(row["source"], row["external_id"])] = deal

    async def load_owners(self, uow: UnitOfWork, owner_ids: set[uuid.UUID]) -> None:
        """The members the records name as owners (id, role, active, in the actor's line)."""
        rows = await uow.members.owners(self.actor.organization_id, self.actor.member_id, owner_ids)
        # As plain facts: every record reads its owner's, and a Row's attributes are slow to read.
        owners = {
            row.id: OwnerFacts(row.id, MemberRole(row.role), row.active, bool(row.in_line)) for row in rows.values()
        }
        self.owners |= owners
        self.in_line |= {owner_id: owner.in_line for owner_id, owner in owners.items()}

    async def load_loss_reasons(self, uow: UnitOfWork, codes: set[str]) -> None:
        if codes:
            self.loss_reasons |= await uow.catalogs.loss_reasons(self.actor.organization_id, codes)

    def existing(self, source: str, external_id: str) -> uuid.UUID | None:
        """The id of the deal a reference names, as the batch has left it so far."""
        deal = self.deals.get((source, external_id))
        return None if deal is None else deal.id

    # --- the rules, record by record, in memory -----------------------------------

    def apply(self, index: int, record: DealBatchRecord) -> BatchOutcome:
        """One record under the rules of ``PUT /v1/deals/by-external-ref``; a record that breaks
        one changes nothing."""
        return self.apply_edit(index, record.source, record.external_id, edit_of(record))

    def apply_edit(self, index: int, source: str, external_id: str, edit: DealEdit) -> BatchOutcome:
        """An upsert by external reference (a record's, or a CRM event's), under the same rules."""
        key = (source, external_id)
        deal = self.deals.get(key)
        try:
            if deal is None:
                deal = self.deals[key] = self._create(key, edit)
                outcome = "created"
            else:
                outcome = self._update(deal, edit)
        except DomainError as error:
            return BatchOutcome(index, source, external_id, "error", error=error)
        return BatchOutcome(index, source, external_id, outcome, deal_id=deal.id)

    def _create(self, ref: tuple[str, str], edit: DealEdit) -> _Deal:
        actor = self.actor
        facts = edit.new_deal()
        owner = self.owners.get(facts.owner_id)
        ensure_owner_is_seller(owner)
        ensure_can_create_for(actor, facts.owner_id, self.in_line[facts.owner_id])
        ensure_new_deal(facts)
        if facts.loss is not None:
            self._ensure_loss_reason(facts.loss.reason_code)
        deal = _Deal(
            id=uuid7(),
            closed_at=self.now if is_closed(facts.stage) else None,
            version=1,
            created_at=self.now,
            updated_at=self.now,
            ref=ref,
            **columns_of(facts),
        )
        snapshot = {**facts.to_json(), "external_refs": [{"source": ref[0], "external_id": ref[1]}]}
        self.events.append(NewEvent("deal.created", "deal", deal.id, snapshot, deal.id))
        if facts.stage == Stage.closed_lost:
            self.events.append(self._review_step("open", deal))
        return deal

    def _update(self, deal: _Deal, edit: DealEdit) -> str:
        actor = self.actor
        is_owner = deal.owner_id == actor.member_id
        owner_in_line = self.in_line.get(deal.owner_id, False)
        if not sees_deal(actor, is_owner=is_owner, assigned=deal.assigned, owner_in_line=owner_in_line):
            raise NotFound(NO_SUCH_DEAL)
        change = DealChange.of(DealFacts.of(deal), edit)
        if change is None:
            return "unchanged"
        if change.transfers:
            ensure_owner_is_seller(self.owners.get(change.after.owner_id))
        ensure_can_change(actor, Access(is_owner=is_owner, in_owner_line=owner_in_line), change)
        if change.loss is not None:
            self._ensure_loss_reason(change.loss.reason_code)

        for key, value in columns_of(change.after).items():
            setattr(deal, key, value)
        stage = change.stage
        deal.closed_at = change.closed_at(deal.closed_at, self.now)
        deal.version += 1
        deal.updated_at = self.now
        deal.changed = True
        for type_, data in change.events():
            self.events.append(NewEvent(type_, "deal", deal.id, data, deal.id))
        if stage is not None and stage.loses:
            self.events.append(self._review_step("open", deal))
        elif stage is not None and stage.reopens and stage.before == Stage.closed_lost:
            self.events.append(self._review_step("reopened", deal))
        return "updated"

    def _ensure_loss_reason(self, code: str) -> None:
        ensure_active_loss_reason(self.loss_reasons.get(code), code)

    def _review_step(self, kind: str, deal: _Deal) -> _ReviewStep:
        return _ReviewStep(
            kind,
            deal,
            owner_id=deal.owner_id,
            stage=str(deal.stage),
            closed_at=deal.closed_at,
            amount_minor=deal.amount_minor,
            currency=deal.currency,
            loss_reason_code=deal.loss_reason_code,
            competitor=deal.loss_competitor,
        )

    # --- writing: one statement per kind --------------------------------------------

    async def write(self, uow: UnitOfWork, outcomes: list[BatchOutcome]) -> None:
        """What the good records did: new deals and their references, changed deals, reviews,
        events with their outbox rows, a statement each (``outcomes`` is corrected in place when
        another transaction took a new reference meanwhile)."""
        actor = self.actor
        deals = list({id(deal): deal for deal in self.deals.values()}.values())
        created = [deal for deal in deals if deal.ref is not None]
        await uow.deals.insert_many(actor.organization_id, created)
        refs = [(deal.id, *deal.ref) for deal in created if deal.ref is not None]
        written = await uow.deals.insert_refs(actor.organization_id, refs)
        if len(written) < len(created):
            await self._drop_taken(uow, outcomes, [deal for deal in created if deal.id not in written])
        await uow.deals.update_many([deal for deal in deals if deal.changed and deal.ref is None])
        events = await self._resolve_reviews(uow)
        await uow.events.append_many(organization_id=actor.organization_id, actor_id=actor.member_id, events=events)

    async def _drop_taken(self, uow: UnitOfWork, outcomes: list[BatchOutcome], lost: list[_Deal]) -> None:
        """Another transaction created a reference this batch creates, after the batch read
        them: those new deals go, and each record that named them is reported, as a lone upsert
        losing that race is (409 external_ref_taken)."""
        await uow.deals.delete_many([deal.id for deal in lost])
        gone = {deal.id for deal in lost}
        for n, outcome in enumerate(outcomes):
            if outcome.deal_id in gone:
                outcomes[n] = BatchOutcome(
                    outcome.index, outcome.source, outcome.external_id, "error", error=ExternalRefTaken()
                )
        self.events = [e for e in self.events if (e.deal.id if isinstance(e, _ReviewStep) else e.deal_id) not in gone]
        self.deals = {key: deal for key, deal in self.deals.items() if deal.id not in gone}

    async def _resolve_reviews(self, uow: UnitOfWork) -> list[NewEvent]:
        """The events in order, each review step turned into its review's write and event (as
        ``reviews.open_or_reuse_review`` and ``reviews.mark_reopened`` do)."""
        steps = [e for e in self.events if isinstance(e, _ReviewStep)]
        if not steps:
            return [e for e in self.events if isinstance(e, NewEvent)]
        org = self.actor.organization_id
        reviews = {
            row.deal_id: _Review(dict(row._mapping), new=False)
            for row in await uow.reviews.by_deals({s.deal.id for s in steps})
        }
        opening = [s for s in steps if s.kind == "open"]
        facts = await uow.reviews.opening_facts_of_owners(org, {s.owner_id for s in opening}) if opening else []
        managers = {row.owner_id: row.manager_id for row in facts}
        due_days = facts[0].review_due_days if facts else 0
        head_of_sales_id = facts[0].head_of_sales_id if facts else None
        events: list[NewEvent] = []
        for entry in self.events:
            if isinstance(entry, NewEvent):
                events.append(entry)
                continue
            review = reviews.get(entry.deal.id)
            if entry.kind == "reopened":
                if review is None or review.row["deal_reopened"]:
                    continue
                review.row |= {"deal_reopened": True, "version": review.row["version"] + 1, "updated_at": self.now}
                review.touched = True
                events.append(_review_event(review, "deal_reopened", {"stage": entry.stage}))
                continue
            assert entry.closed_at is not None and entry.loss_reason_code is not None
            reason = self.loss_reasons[entry.loss_reason_code]
            reviewer_id = choose_reviewer(managers.get(entry.owner_id), head_of_sales_id)
            values: dict[str, Any] = {
                "owner_id": entry.owner_id,
                "reviewer_id": reviewer_id,
                "status": ReviewStatus.pending,
                "deal_reopened": False,
                "closed_at": entry.closed_at,
                "closed_week": iso_week(entry.closed_at),
                "due_on": due_on(entry.closed_at, due_days),
                "amount_minor": entry.amount_minor,
                "currency": entry.currency,
                "loss_reason_code": entry.loss_reason_code,
                "loss_reason_confirmed": False,
                "competitor": entry.competitor,
                "suggested_skills": list(reason.suggested_skills or []),
                "completed_at": None,
                "days_to_complete": None,
            }
            reused = review is not None
            if review is None:
                opened = ClosedLostReview(organization_id=org, deal_id=entry.deal.id, created_at=self.now, **values)
                review = reviews[entry.deal.id] = _Review(opened.model_dump() | {"updated_at": self.now}, new=True)
            else:
                review.row |= values | {"version": review.row["version"] + 1, "updated_at": self.now}
            review.touched = True
            data = {
                "owner_id": str(entry.owner_id),
                "reviewer_id": str(reviewer_id) if reviewer_id else None,
                "loss_reason_code": entry.loss_reason_code,
                "due_on": values["due_on"].isoformat(),
                "reused": reused,
            }
            events.append(_review_event(review, "opened", data))
        await uow.reviews.insert_many([r.row for r in reviews.values() if r.new])
        await uow.reviews.update_many([r.row for r in reviews.values() if r.touched and not r.new])
        return events


async def batch_upsert(uow: UnitOfWork, actor: Actor, records: list[tuple[int, DealBatchRecord]]) -> list[BatchOutcome]:
    """Upsert the records by external reference, in order, in one transaction: each record's
    outcome as if it had been upserted on its own, a bad one reported and leaving nothing behind."""
    async with uow:
        batch = DealBatch(actor, utcnow())
        await batch.load(uow, records)
        outcomes = [batch.apply(index, record) for index, record in records]
        await batch.write(uow, outcomes)
        await uow.commit()
    return outcomes


def _review_event(review: _Review, verb: str, data: dict[str, Any]) -> NewEvent:
    row = review.row
    return NewEvent(f"review.{verb}", "closed_lost_review", row["id"], data, row["deal_id"])
