"""Deals: stages, ownership, and who may do what with a deal."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from app.domain.changes import jsonable
from app.domain.errors import (
    DealClosed,
    FieldProblem,
    Forbidden,
    LossReasonRequired,
    LossRequiresClosedLost,
    MissingFields,
    OwnerDecides,
    OwnerMustBeSeller,
    StrategyOwnedBySeller,
    TransferReasonRequired,
)
from app.domain.members import LINE_MANAGER_ROLES, Actor, MemberRole
from app.domain.money import Money


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


class DealStatus(enum.StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


STAGES_BY_STATUS = {
    DealStatus.open: OPEN_STAGES,
    DealStatus.won: (Stage.closed_won,),
    DealStatus.lost: (Stage.closed_lost,),
}
_STATUS_OF_STAGE: dict[str, DealStatus] = {
    stage: status for status, stages in STAGES_BY_STATUS.items() for stage in stages
}


def status_of(stage: str) -> DealStatus:
    """Open, won or lost: what a stage means for the deal's outcome."""
    return _STATUS_OF_STAGE[stage]


def is_closed(stage: str) -> bool:
    return stage in CLOSED_STAGES


class HasRole(Protocol):
    @property
    def role(self) -> MemberRole: ...
    @property
    def active(self) -> bool: ...


class DealLike(Protocol):
    @property
    def owner_id(self) -> uuid.UUID: ...
    @property
    def stage(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Access:
    """How the acting member relates to one deal (worked out by the service)."""

    is_owner: bool
    in_owner_line: bool  # the actor manages the owner, directly or through others

    @classmethod
    def of(cls, actor: Actor, deal: DealLike, owner_chain: Iterable[uuid.UUID]) -> Access:
        return cls(is_owner=deal.owner_id == actor.member_id, in_owner_line=actor.member_id in set(owner_chain))


def sees_deal(actor: Actor, *, is_owner: bool, assigned: bool, owner_in_line: bool) -> bool:
    """A seller sees the deals they own or are actively assigned to, a manager also their line's
    (transitively); head of sales, admins and integrations the whole organisation. (The same rule
    as a query condition: app/db/repositories/deals.py, ``visibility``.)"""
    return actor.sees_whole_org or is_owner or assigned or (actor.role == MemberRole.manager and owner_in_line)


def ensure_owner_is_seller(owner: HasRole | None) -> None:
    """Only an active seller can own a deal: never a manager, head of sales, admin or machine."""
    if owner is None or owner.role != MemberRole.seller or not owner.active:
        raise OwnerMustBeSeller()


# Who creates a deal owned by themself with nothing else to look up: an active seller (they own the
# deal: ensure_owner_is_seller and ensure_can_create_for both hold for them).
SELF_OWNER = MemberRole.seller


def ensure_can_create_for(actor: Actor, owner_id: uuid.UUID, manages_owner: bool) -> None:
    """A seller creates their own deals, a manager their line's, leadership and machines anyone's."""
    if actor.role == MemberRole.seller and owner_id == actor.member_id:
        return
    if actor.role == MemberRole.manager and manages_owner:
        return
    if actor.role in (MemberRole.head_of_sales, MemberRole.admin, MemberRole.integration):
        return
    raise Forbidden("You may not create deals for this seller.")


def can_edit_deal(actor: Actor, access: Access) -> bool:
    """The owner, their management line, leadership, admins and CRM integrations edit deal facts."""
    return (
        access.is_owner
        or access.in_owner_line
        or actor.role in (MemberRole.head_of_sales, MemberRole.admin, MemberRole.integration)
    )


def can_reopen(actor: Actor, access: Access) -> bool:
    """Reopening a closed deal is for the owner and their management line."""
    return access.is_owner or access.in_owner_line or actor.role == MemberRole.head_of_sales


@dataclass(frozen=True, slots=True)
class StageChange:
    before: Stage
    after: Stage

    @property
    def closes(self) -> bool:
        return self.after in CLOSED_STAGES

    @property
    def reopens(self) -> bool:
        return self.before in CLOSED_STAGES and self.after in OPEN_STAGES

    @property
    def loses(self) -> bool:
        return self.after == Stage.closed_lost


# --- what a deal states, and what an edit changes -----------------------------


@dataclass(frozen=True, slots=True)
class Loss:
    """Why a deal was lost: a code of the organisation's catalog, and what the seller adds."""

    reason_code: str
    competitor: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"reason_code": self.reason_code, "competitor": self.competitor, "detail": self.detail}


class DealRow(Protocol):
    """A stored deal, column by column."""

    @property
    def name(self) -> str: ...
    @property
    def account_name(self) -> str: ...
    @property
    def amount_minor(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def expected_close_date(self) -> dt.date | None: ...
    @property
    def stage(self) -> str: ...
    @property
    def owner_id(self) -> uuid.UUID: ...
    @property
    def loss_reason_code(self) -> str | None: ...
    @property
    def loss_competitor(self) -> str | None: ...
    @property
    def loss_detail(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DealFacts:
    """What a deal states: its facts, stage, owner and loss."""

    name: str
    account_name: str
    owner_id: uuid.UUID
    stage: Stage = Stage.prospecting
    amount: Money | None = None
    expected_close_date: dt.date | None = None
    loss: Loss | None = None

    @classmethod
    def of(cls, deal: DealRow) -> DealFacts:
        amount = None
        if deal.amount_minor is not None and deal.currency is not None:
            amount = Money(deal.amount_minor, deal.currency)
        loss = None
        if deal.loss_reason_code is not None:
            loss = Loss(deal.loss_reason_code, deal.loss_competitor, deal.loss_detail)
        return cls(
            name=deal.name,
            account_name=deal.account_name,
            owner_id=deal.owner_id,
            stage=Stage(deal.stage),
            amount=amount,
            expected_close_date=deal.expected_close_date,
            loss=loss,
        )

    def to_json(self) -> dict[str, Any]:
        """The facts as JSON types, the way the API shows them and history records a new deal."""
        return {
            "name": self.name,
            "account_name": self.account_name,
            "amount": None if self.amount is None else self.amount.to_json(),
            "stage": str(self.stage),
            "owner_id": str(self.owner_id),
            "expected_close_date": None if self.expected_close_date is None else self.expected_close_date.isoformat(),
            "loss": None if self.loss is None else self.loss.to_json(),
        }


class Unsent(enum.Enum):
    """A field the request did not send, where null is a value (it clears the field)."""

    token = "unsent"


UNSENT: Final = Unsent.token


@dataclass(frozen=True, slots=True)
class DealEdit:
    """What a PATCH or a CRM upsert sends. None is "not sent", except for the amount and the
    expected close date, which may be sent as null to clear them: there UNSENT is "not sent"."""

    name: str | None = None
    account_name: str | None = None
    amount: Money | None | Unsent = UNSENT
    expected_close_date: dt.date | None | Unsent = UNSENT
    stage: Stage | None = None
    owner_id: uuid.UUID | None = None
    transfer_reason: str | None = None
    loss: Loss | None = None

    def new_deal(self) -> DealFacts:
        """The deal this edit creates when it names none yet (a CRM's first upsert): it needs
        a name, an account name and an owner; a transfer reason means nothing there."""
        if self.name is None or self.account_name is None or self.owner_id is None:
            missing = [name for name in ("name", "account_name", "owner_id") if getattr(self, name) is None]
            raise MissingFields(
                "A new deal needs name, account_name and owner_id.",
                fields=[FieldProblem((name,), "Field required", "missing") for name in missing],
            )
        return DealFacts(
            name=self.name,
            account_name=self.account_name,
            owner_id=self.owner_id,
            stage=self.stage or Stage.prospecting,
            amount=None if self.amount is UNSENT else self.amount,
            expected_close_date=None if self.expected_close_date is UNSENT else self.expected_close_date,
            loss=self.loss,
        )


@dataclass(frozen=True, slots=True)
class DealChange:
    """What an edit means for a deal: facts changed, a stage moved (closed, lost, reopened),
    a transfer to another owner, a loss recorded."""

    before: DealFacts
    after: DealFacts
    transfer_reason: str | None = None
    loss: Loss | None = None  # the loss the edit records; a resent, already recorded one is none

    @classmethod
    def of(cls, before: DealFacts, edit: DealEdit) -> DealChange | None:
        """The change ``edit`` makes to a deal stating ``before``; None when it changes nothing."""
        stage = before.stage if edit.stage is None else edit.stage
        loss = edit.loss
        if loss is not None and stage == before.stage == Stage.closed_lost and loss == before.loss:
            loss = None  # a CRM resending the loss it already recorded
        after = DealFacts(
            name=before.name if edit.name is None else edit.name,
            account_name=before.account_name if edit.account_name is None else edit.account_name,
            owner_id=before.owner_id if edit.owner_id is None else edit.owner_id,
            stage=stage,
            amount=before.amount if edit.amount is UNSENT else edit.amount,
            expected_close_date=(
                before.expected_close_date if edit.expected_close_date is UNSENT else edit.expected_close_date
            ),
            loss=before.loss if stage == before.stage else loss,  # a move of stage sets or clears the loss
        )
        if after == before and loss is None:
            return None
        return cls(before, after, edit.transfer_reason, loss)

    @property
    def facts(self) -> dict[str, tuple[Any, Any]]:
        """``{fact: (before, after)}`` for the facts that change; an amount is two facts, its
        minor units and its currency, as history has always recorded it."""
        before, after = _fact_columns(self.before), _fact_columns(self.after)
        return {k: (before[k], after[k]) for k in before if before[k] != after[k]}

    @property
    def stage(self) -> StageChange | None:
        return None if self.after.stage == self.before.stage else StageChange(self.before.stage, self.after.stage)

    @property
    def transfers(self) -> bool:
        return self.after.owner_id != self.before.owner_id

    def closed_at(self, before: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        """When the deal counts as closed after the change: now when it closes, not at all when it
        reopens, otherwise as before."""
        stage = self.stage
        if stage is not None and stage.closes:
            return now
        if stage is not None and stage.reopens:
            return None
        return before

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """The events the change records, in order: facts, transfer, stage."""
        recorded: list[tuple[str, dict[str, Any]]] = []
        if facts := self.facts:
            changes = {k: [jsonable(old), jsonable(new)] for k, (old, new) in facts.items()}
            recorded.append(("deal.updated", {"changes": changes}))
        if self.transfers:
            reason = (self.transfer_reason or "").strip()
            data = {"from": str(self.before.owner_id), "to": str(self.after.owner_id), "reason": reason}
            recorded.append(("deal.owner_transferred", data))
        if (stage := self.stage) is not None:
            moved: dict[str, Any] = {"from": str(stage.before), "to": str(stage.after), "reopened": stage.reopens}
            if stage.loses:
                moved["loss"] = None if self.after.loss is None else self.after.loss.to_json()
            recorded.append(("deal.stage_changed", moved))
        return recorded


def _fact_columns(facts: DealFacts) -> dict[str, Any]:
    return {
        "name": facts.name,
        "account_name": facts.account_name,
        "expected_close_date": facts.expected_close_date,
        "amount_minor": None if facts.amount is None else facts.amount.minor,
        "currency": None if facts.amount is None else facts.amount.currency,
    }


def ensure_can_change(actor: Actor, access: Access, change: DealChange) -> None:
    """The rules of changing a deal: who may, what a closed deal accepts (only a reopen),
    what a loss and a transfer need."""
    stage = change.stage
    if is_closed(change.before.stage):
        if stage is None or not stage.reopens:
            raise DealClosed()
        if not can_reopen(actor, access):
            raise Forbidden("Only the owner or their management line reopens a deal.")
    if not can_edit_deal(actor, access):
        raise Forbidden("You may see this deal but not change it.")
    if change.transfers and not (change.transfer_reason or "").strip():
        raise TransferReasonRequired()
    lost_now = stage is not None and stage.loses
    if lost_now and change.loss is None:
        raise LossReasonRequired()
    if change.loss is not None and not lost_now:
        raise LossRequiresClosedLost()


def ensure_new_deal(facts: DealFacts) -> None:
    """A deal created as lost carries its loss; a loss on any other stage is refused."""
    if facts.stage == Stage.closed_lost and facts.loss is None:
        raise LossReasonRequired()
    if facts.loss is not None and facts.stage != Stage.closed_lost:
        raise LossRequiresClosedLost()


def ensure_deal_open(deal: DealLike) -> None:
    """A closed deal takes no new strategy and no suggestions until it is reopened."""
    if is_closed(deal.stage):
        raise DealClosed()


def ensure_can_write_strategy(actor: Actor, deal: DealLike) -> None:
    """The strategy belongs to the seller who owns the deal: nobody else writes it."""
    if deal.owner_id != actor.member_id:
        raise StrategyOwnedBySeller()


def ensure_can_suggest(actor: Actor, access: Access, is_coach: bool) -> None:
    """Managers in the owner's line, heads of sales and assigned coaches suggest; the owner edits."""
    if access.is_owner:
        raise Forbidden("The owner edits the strategy directly.")
    if actor.role == MemberRole.head_of_sales or (actor.role == MemberRole.manager and access.in_owner_line):
        return
    if is_coach and actor.role in (MemberRole.seller, MemberRole.manager):
        return
    raise Forbidden("Only the owner's managers, heads of sales and assigned coaches make suggestions.")


def ensure_owner_decides(actor: Actor, deal: DealLike) -> None:
    """Only the owner accepts or declines what others propose for their deal."""
    if deal.owner_id != actor.member_id:
        raise OwnerDecides()


def counts_as_leadership(role: MemberRole) -> bool:
    """Involvement by these roles is measured (coach early, not rescue late)."""
    return role in LINE_MANAGER_ROLES


def is_late(stage: str, late_stages: Iterable[str]) -> bool:
    """A first involvement in one of the organisation's late stages is late."""
    return stage in set(late_stages)
