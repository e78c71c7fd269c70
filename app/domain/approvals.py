"""Approvals: leadership signs off on explicit terms, which then never change and are
not silently reversed."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable
from typing import NoReturn, Protocol

from app.domain.deals import DealLike, ensure_deal_open
from app.domain.errors import (
    ApprovalNotApproved,
    ApprovalNotPending,
    ApprovalReliedUpon,
    ApprovedTermsImmutable,
    ApproverNotInLine,
    Conflict,
    FieldProblem,
    Forbidden,
    MissingFields,
    OwnerDecides,
)
from app.domain.members import LINE_MANAGER_ROLES, Actor, LineNode, MemberRole


class ApprovalStatus(enum.StrEnum):
    pending = "pending"  # requested; the approver decides
    approved = "approved"  # the terms are signed off and immutable
    rejected = "rejected"
    revoked = "revoked"  # a visible reversal, with a reason


class TermKind(enum.StrEnum):
    discount = "discount"
    price_hold = "price_hold"
    payment_terms = "payment_terms"
    scope = "scope"


class ApprovalLike(Protocol):
    @property
    def approver_id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def relied_on_at(self) -> dt.datetime | None: ...


def ensure_can_request(actor: Actor, deal: DealLike) -> None:
    """Only the deal's owner asks for sign-off on the terms of their deal."""
    if deal.owner_id != actor.member_id:
        raise Forbidden("Only the deal's owner requests an approval.")


def ensure_approver_in_line(approver: LineNode | None, owner_line: Iterable[uuid.UUID]) -> None:
    """The approver is an active manager or head of sales above the owner in their reporting line."""
    if (
        approver is None
        or approver.id not in set(owner_line)
        or approver.role not in LINE_MANAGER_ROLES
        or not approver.active
    ):
        raise ApproverNotInLine("The approver must be an active manager or head of sales above the deal's owner.")


def ensure_new_approval(
    actor: Actor, deal: DealLike, approver: LineNode | None, owner_line: Iterable[uuid.UUID]
) -> None:
    """A request comes from the owner, on an open deal, to someone in the owner's management line."""
    ensure_can_request(actor, deal)
    ensure_deal_open(deal)
    ensure_approver_in_line(approver, owner_line)


def ensure_decision(actor: Actor, approval: ApprovalLike) -> None:
    """Only the named approver approves or rejects, and only once, while the request is pending."""
    if actor.member_id != approval.approver_id:
        raise Forbidden("Only the named approver approves or rejects this request.")
    if approval.status != ApprovalStatus.pending:
        raise ApprovalNotPending()


def refuse_change(approval: ApprovalLike) -> NoReturn:
    """Terms have no write path after the request: a change is a new approval, never an edit."""
    if approval.status == ApprovalStatus.approved:
        raise ApprovedTermsImmutable()
    if approval.status == ApprovalStatus.pending:
        raise Conflict(
            "A requested approval is never edited, not even while pending; "
            "request a new approval with the changed terms."
        )
    raise ApprovalNotPending("The approval was already decided; request a new approval with the changed terms.")


def ensure_reliance(actor: Actor, approval: ApprovalLike, deal: DealLike) -> bool:
    """The owner records that an offer relying on an approved approval went out; True when newly recorded."""
    if deal.owner_id != actor.member_id:
        raise OwnerDecides("Only the deal's owner records that an offer relied on the approval.")
    if approval.status != ApprovalStatus.approved:
        raise ApprovalNotApproved()
    return approval.relied_on_at is None


def ensure_revocation(actor: Actor, approval: ApprovalLike, deal: DealLike, reason: str | None) -> None:
    """A revocation has a reason and is by the approver or a head of sales; once relied upon, by the owner only."""
    if not (reason or "").strip():
        raise MissingFields(
            "Revoking an approval needs a reason.",
            fields=[FieldProblem(("reason",), "A reason is required", "missing")],
        )
    if approval.status != ApprovalStatus.approved:
        raise ApprovalNotApproved()
    if approval.relied_on_at is not None:
        if deal.owner_id != actor.member_id:
            raise ApprovalReliedUpon()
        return
    if actor.member_id != approval.approver_id and actor.role != MemberRole.head_of_sales:
        raise Forbidden("Only the approver or a head of sales revokes an approval.")
