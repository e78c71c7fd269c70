"""Deals: stages, ownership, and who may do what with a deal."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from app.domain.errors import (
    DealClosed,
    Forbidden,
    LossReasonRequired,
    LossRequiresClosedLost,
    OwnerDecides,
    OwnerMustBeSeller,
    StrategyOwnedBySeller,
    TransferReasonRequired,
)
from app.domain.members import LINE_MANAGER_ROLES, Actor, MemberRole


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


def ensure_owner_is_seller(owner: HasRole | None) -> None:
    """Only an active seller can own a deal: never a manager, head of sales, admin or machine."""
    if owner is None or owner.role != MemberRole.seller or not owner.active:
        raise OwnerMustBeSeller()


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


def check_update(
    actor: Actor,
    access: Access,
    *,
    stage: Stage,
    new_stage: Stage | None,
    changes_other_fields: bool,
    transfers: bool,
    transfer_reason: str | None,
    loss_given: bool,
) -> StageChange | None:
    """The rules of changing a deal: who may, what a closed deal accepts, what a loss and
    a transfer need. Returns the stage change, if any."""
    change = StageChange(stage, new_stage) if new_stage is not None and new_stage != stage else None
    if is_closed(stage):
        if change is None or not change.reopens:
            if change is not None or changes_other_fields or transfers or loss_given:
                raise DealClosed()
        elif not can_reopen(actor, access):
            raise Forbidden("Only the owner or their management line reopens a deal.")
    if not can_edit_deal(actor, access):
        raise Forbidden("You may see this deal but not change it.")
    if transfers and not (transfer_reason or "").strip():
        raise TransferReasonRequired()
    lost_now = change is not None and change.loses
    if lost_now and not loss_given:
        raise LossReasonRequired()
    if loss_given and not lost_now:
        raise LossRequiresClosedLost()
    return change


def check_new_deal(stage: Stage, loss_given: bool) -> None:
    """A deal created as lost carries its loss; a loss on any other stage is refused."""
    if stage == Stage.closed_lost and not loss_given:
        raise LossReasonRequired()
    if loss_given and stage != Stage.closed_lost:
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
