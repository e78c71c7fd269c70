"""The error tree: every rule the domain protects raises one of these.

Each error carries a stable ``code`` (documented in the OpenAPI spec); the HTTP status
is chosen once, by base class, in ``app/errors.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """What is wrong with one input field, named by its path in the request's data
    (``("next_steps", 2, "assignee_id")``); the HTTP layer says where that data came from."""

    path: tuple[str | int, ...]
    msg: str
    type: str


class DomainError(Exception):
    code = "domain_error"
    title = "Request refused"

    def __init__(self, detail: str | None = None, *, fields: Sequence[FieldProblem] = (), **extra: Any) -> None:
        self.detail = detail or self.title
        self.fields = tuple(fields)
        self.extra = extra
        super().__init__(self.detail)


class NotFound(DomainError):
    code = "not_found"
    title = "Not Found"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Missing or invalid API key or token"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class RuleViolation(DomainError):
    code = "rule_violation"
    title = "Rule violation"


class PreconditionFailed(DomainError):
    code = "precondition_failed"
    title = "Precondition failed"


class PreconditionRequired(DomainError):
    code = "precondition_required"
    title = "This write needs If-Match"


class Unavailable(DomainError):
    code = "unavailable"
    title = "Service unavailable"


# --- conventions -----------------------------------------------------------


class InvalidCursor(RuleViolation):
    code = "invalid_cursor"
    title = "The cursor is malformed or belongs to another listing"


class VersionConflict(PreconditionFailed):
    code = "version_conflict"
    title = "The resource changed since the version given in If-Match"


class IdempotencyKeyReused(RuleViolation):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    title = "A request with this Idempotency-Key is still in progress"


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    title = "The database is unreachable; retry shortly"


# --- organisation, members, keys, catalogs --------------------------------


class InvalidReportingLine(RuleViolation):
    code = "invalid_reporting_line"
    title = "Invalid reporting line"


class EmailTaken(Conflict):
    code = "email_taken"
    title = "A member of this organisation already uses this email"


class OidcIssuerTaken(Conflict):
    code = "oidc_issuer_taken"
    title = "Another organisation signs in with this identity provider"


class OidcIssuerNotAllowed(RuleViolation):
    code = "oidc_issuer_not_allowed"
    title = "The identity provider's issuer must be an https URL"


class CodeTaken(Conflict):
    code = "code_taken"
    title = "This code is already used in the organisation's catalog"


class UnknownSkill(RuleViolation):
    code = "unknown_skill"
    title = "Unknown skill code"


# --- deals, strategy, assignments ------------------------------------------


class MissingFields(RuleViolation):
    code = "validation_error"
    title = "Validation error"


class OwnerMustBeSeller(RuleViolation):
    code = "owner_must_be_seller"
    title = "A deal's owner must be an active seller"


class TransferReasonRequired(RuleViolation):
    code = "transfer_reason_required"
    title = "Changing a deal's owner needs a transfer_reason"


class LossReasonRequired(RuleViolation):
    code = "loss_reason_required"
    title = "Closing a deal as lost needs a loss reason"


class UnknownLossReason(RuleViolation):
    code = "unknown_loss_reason"
    title = "The loss reason is not in the organisation's catalog"


class LossRequiresClosedLost(RuleViolation):
    code = "loss_requires_closed_lost"
    title = "A loss can only be given when the deal moves to closed_lost"


class DealClosed(Conflict):
    code = "deal_closed"
    title = "The deal is closed; only a reopen is accepted"


class ExternalRefTaken(Conflict):
    code = "external_ref_taken"
    title = "This external reference already names another deal"


class StrategyOwnedBySeller(Forbidden):
    code = "strategy_owned_by_seller"
    title = "Only the deal's owner writes its strategy"


class OwnerDecides(Forbidden):
    code = "owner_decides"
    title = "Only the deal's owner decides this"


class SuggestionAlreadyDecided(Conflict):
    code = "suggestion_already_decided"
    title = "The suggestion was already accepted or declined"


class UnknownMember(RuleViolation):
    code = "unknown_member"
    title = "No active member of the organisation has this id"


class OwnerNotAssignable(RuleViolation):
    code = "owner_not_assignable"
    title = "Ownership is not an assignable role"


class InvalidAssignee(RuleViolation):
    code = "invalid_assignee"
    title = "Only active sellers, managers and heads of sales take roles on deals"


class AssignmentExists(Conflict):
    code = "assignment_exists"
    title = "This member already has this role on the deal"


class AssignmentNotPending(Conflict):
    code = "assignment_not_pending"
    title = "The assignment is not awaiting a decision"


class AssignmentEnded(Conflict):
    code = "assignment_ended"
    title = "The assignment is already declined or ended"


# --- calls, interventions, observations ---------------------------------------


class CallLeadMustBeOwner(RuleViolation):
    code = "call_lead_must_be_owner"
    title = "The deal's owner leads its calls"


class ManagerRoleNotAgreed(RuleViolation):
    code = "manager_role_not_agreed"
    title = "A manager attends as observer or contributor with an agreed part"


class CallAlreadyHeld(Conflict):
    code = "call_already_held"
    title = "The call was held; its attendees can no longer change"


class HeldInFuture(RuleViolation):
    code = "held_in_future"
    title = "A call is recorded as held once it has taken place"


class CallNotHeld(Conflict):
    code = "call_not_held"
    title = "The call has not been held yet"


class NotAnObserver(Forbidden):
    code = "not_an_observer"
    title = "Only a non-lead attendee of the call observes it"


class ObservationNeedsStrength(RuleViolation):
    code = "observation_needs_strength"
    title = "An observation names at least one strength"


class TooManyImprovements(RuleViolation):
    code = "too_many_improvements"
    title = "An observation names only a few improvements"


class ObservationNotDraft(Conflict):
    code = "observation_not_draft"
    title = "The observation was already shared"


class ObservationNotShared(Conflict):
    code = "observation_not_shared"
    title = "Only a shared observation is acknowledged"


# --- closed-lost reviews ------------------------------------------------------


class NotTheReviewer(Forbidden):
    code = "not_the_reviewer"
    title = "The reviewer writes the review; the seller writes the reflection"


class ReviewIncomplete(RuleViolation):
    code = "review_incomplete"
    title = "The review is missing what completion needs"


class ReviewCompleted(Conflict):
    code = "review_completed"
    title = "The review is completed and read-only"


# --- approvals ----------------------------------------------------------------


class ApproverNotInLine(RuleViolation):
    code = "approver_not_in_line"
    title = "The approver is in the owner's management line"


class ApprovedTermsImmutable(Conflict):
    code = "approved_terms_immutable"
    title = "Approved terms never change; request a new approval"


class ApprovalReliedUpon(Conflict):
    code = "approval_relied_upon"
    title = "An offer relied on this approval; only the owner may revoke it"


class ApprovalNotPending(Conflict):
    code = "approval_not_pending"
    title = "The approval was already decided"


class ApprovalNotApproved(Conflict):
    code = "approval_not_approved"
    title = "Only an approved approval can be relied upon or revoked"


# --- webhooks -----------------------------------------------------------------


class UnknownEventType(RuleViolation):
    code = "unknown_event_type"
    title = "An event type is not one the feed carries"


class WebhookUrlNotAllowed(RuleViolation):
    code = "webhook_url_not_allowed"
    title = "Webhooks go to public https URLs only"


class DeliveryNotFailed(Conflict):
    code = "delivery_not_failed"
    title = "Only a failed delivery can be retried"


# --- seller development -------------------------------------------------------


class CommitmentClosed(Conflict):
    code = "commitment_closed"
    title = "The commitment is already done or dropped"


# --- CRM integrations -----------------------------------------------------------


class AccountIdTaken(Conflict):
    code = "account_id_taken"
    title = "Another organisation's integration with this provider already uses this account_id"


class InvalidSignature(Unauthenticated):
    code = "invalid_signature"
    title = "The request is not signed or authenticated by a configured integration"


class NotProviderFormat(DomainError):
    code = "malformed_payload"
    title = "The body is not the provider's webhook format"
