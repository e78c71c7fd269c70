"""Table models. Every row belongs to one organisation; ids are UUIDv7."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db.types import JSONType, UTCDateTime, utcnow
from app.domain.approvals import ApprovalStatus
from app.domain.assignments import AssignmentRole, AssignmentStatus
from app.domain.calls import CallRole, InterventionKind, ObservationStatus
from app.domain.deals import Stage
from app.domain.development import CommitmentSource, CommitmentStatus, SkillMention
from app.domain.ids import uuid7
from app.domain.integrations import InboxOutcome, Provider
from app.domain.members import MemberRole
from app.domain.oidc import MAX_AUDIENCE_LENGTH, MAX_ISSUER_LENGTH
from app.domain.reviews import ReviewStatus
from app.domain.strategy import NextStepStatus, SuggestionStatus
from app.domain.webhooks import DeliveryStatus, DisabledReason

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def _ts(nullable: bool = False) -> Any:
    return Field(default_factory=utcnow if not nullable else None, sa_type=UTCDateTime, nullable=nullable)


class Organization(SQLModel, table=True):
    __tablename__ = "organization"
    # One organisation per identity provider: a token's issuer names the organisation it signs in to.
    __table_args__ = (sa.Index(None, "oidc_issuer", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    name: str = Field(sa_type=sa.String(200))
    max_improvements_per_observation: int = 3
    review_due_days: int = 7
    late_stages: list[str] = Field(default_factory=list, sa_type=JSONType)
    oidc_issuer: str | None = Field(default=None, sa_type=sa.String(MAX_ISSUER_LENGTH))
    oidc_audience: str | None = Field(default=None, sa_type=sa.String(MAX_AUDIENCE_LENGTH))
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class Member(SQLModel, table=True):
    __tablename__ = "member"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "email"),
        sa.Index(None, "organization_id", "id"),
        sa.Index(None, "organization_id", "role", "id"),
        sa.Index(None, "manager_id", "id"),
        sa.CheckConstraint(_in("role", MemberRole), name="role"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    name: str = Field(sa_type=sa.String(200))
    email: str = Field(sa_type=sa.String(320))
    role: MemberRole = Field(sa_type=sa.String(32))
    manager_id: uuid.UUID | None = Field(default=None, foreign_key="member.id")
    active: bool = True
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    __table_args__ = (sa.Index(None, "member_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    member_id: uuid.UUID = Field(foreign_key="member.id", ondelete="CASCADE")
    prefix: str = Field(sa_type=sa.String(32))
    key_hash: str = Field(sa_type=sa.String(64), unique=True)
    label: str | None = Field(default=None, sa_type=sa.String(200))
    created_at: dt.datetime = _ts()
    revoked_at: dt.datetime | None = _ts(nullable=True)


class LossReason(SQLModel, table=True):
    __tablename__ = "loss_reason"
    __table_args__ = (sa.UniqueConstraint("organization_id", "code"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    code: str = Field(sa_type=sa.String(64))
    label: str = Field(sa_type=sa.String(200))
    suggested_skills: list[str] = Field(default_factory=list, sa_type=JSONType)
    active: bool = True
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class Skill(SQLModel, table=True):
    __tablename__ = "skill"
    __table_args__ = (sa.UniqueConstraint("organization_id", "code"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    code: str = Field(sa_type=sa.String(64))
    label: str = Field(sa_type=sa.String(200))
    active: bool = True
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class Event(SQLModel, table=True):
    """An immutable record of one change; ``seq`` orders an organisation's feed (numbered without a
    lock: see app/db/repositories/events.py)."""

    __tablename__ = "event"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "seq"),
        sa.Index(None, "organization_id", "type", "seq"),
        sa.Index(None, "organization_id", "deal_id", "seq"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    seq: int = Field(sa_type=sa.BigInteger)
    type: str = Field(sa_type=sa.String(64))
    actor_id: uuid.UUID | None = None
    deal_id: uuid.UUID | None = None
    subject_type: str = Field(sa_type=sa.String(64))
    subject_id: uuid.UUID
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    occurred_at: dt.datetime = _ts()


class IdempotencyKey(SQLModel, table=True):
    """A stored POST response, replayed for a retry with the same key and body."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        sa.UniqueConstraint("member_id", "key"),
        sa.Index(None, "member_id", "expires_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    member_id: uuid.UUID = Field(foreign_key="member.id", ondelete="CASCADE")
    key: str = Field(sa_type=sa.String(255))
    fingerprint: str = Field(sa_type=sa.String(64))
    completed: bool = False
    response_status: int | None = None
    response_headers: list[list[str]] | None = Field(default=None, sa_type=JSONType)
    response_body: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    locked_at: dt.datetime = _ts()
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)


class Deal(SQLModel, table=True):
    __tablename__ = "deal"
    __table_args__ = (
        sa.Index(None, "organization_id", "id"),
        sa.Index(None, "organization_id", "owner_id", "id"),
        sa.Index(None, "organization_id", "stage", "id"),
        sa.Index(None, "organization_id", "closed_at", "id"),
        sa.Index(None, "organization_id", "updated_at", "id"),
        sa.CheckConstraint(_in("stage", Stage), name="stage"),
        sa.CheckConstraint("amount_minor IS NULL OR amount_minor >= 0", name="amount_not_negative"),
        sa.CheckConstraint("(amount_minor IS NULL) = (currency IS NULL)", name="amount_has_currency"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    name: str = Field(sa_type=sa.String(200))
    account_name: str = Field(sa_type=sa.String(200))
    amount_minor: int | None = Field(default=None, sa_type=sa.BigInteger)
    currency: str | None = Field(default=None, sa_type=sa.String(3))
    expected_close_date: dt.date | None = None
    stage: Stage = Field(sa_type=sa.String(32))
    owner_id: uuid.UUID = Field(foreign_key="member.id")
    closed_at: dt.datetime | None = _ts(nullable=True)
    loss_reason_code: str | None = Field(default=None, sa_type=sa.String(64))
    loss_competitor: str | None = Field(default=None, sa_type=sa.String(200))
    loss_detail: str | None = Field(default=None, sa_type=sa.String(2000))
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class DealExternalRef(SQLModel, table=True):
    """A deal's id in a CRM: (source, external_id) names one deal per organisation."""

    __tablename__ = "deal_external_ref"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "source", "external_id"),
        sa.Index(None, "deal_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    source: str = Field(sa_type=sa.String(40))
    external_id: str = Field(sa_type=sa.String(200))


class StrategyVersion(SQLModel, table=True):
    """Every version of a deal's strategy, each authored by the deal's owner."""

    __tablename__ = "strategy_version"
    __table_args__ = (sa.UniqueConstraint("deal_id", "version"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    version: int
    author_id: uuid.UUID = Field(foreign_key="member.id")
    document: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: dt.datetime = _ts()


class StrategyNextStep(SQLModel, table=True):
    """A next step of a deal's current strategy, a row each, rewritten with every version that
    changes them: the steps assigned to a member are found by index (their tasks), not by reading
    every deal's latest document."""

    __tablename__ = "strategy_next_step"
    __table_args__ = (
        # Named: the convention's name is longer than PostgreSQL's 63 characters.
        sa.Index(
            "ix_strategy_next_step_org_assignee_id_status_assigned_at",
            "organization_id",
            "assignee_id",
            "status",
            "assigned_at",
        ),
        sa.CheckConstraint(_in("status", NextStepStatus), name="status"),
    )

    deal_id: uuid.UUID = Field(foreign_key="deal.id", primary_key=True, ondelete="CASCADE")
    id: uuid.UUID = Field(primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    position: int
    description: str = Field(sa_type=sa.String(2000))
    assignee_id: uuid.UUID | None = Field(default=None, foreign_key="member.id")
    due_date: dt.date | None = None
    status: NextStepStatus = Field(sa_type=sa.String(16))
    # When the step got its current assignee: kept while a new version leaves the assignee as it was.
    assigned_at: dt.datetime | None = _ts(nullable=True)


class Suggestion(SQLModel, table=True):
    __tablename__ = "suggestion"
    __table_args__ = (
        sa.Index(None, "deal_id", "id"),
        sa.Index(None, "organization_id", "status", "created_at"),
        sa.CheckConstraint(_in("status", SuggestionStatus), name="status"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    author_id: uuid.UUID = Field(foreign_key="member.id")
    section: str = Field(sa_type=sa.String(40))
    body: str = Field(sa_type=sa.Text)
    status: SuggestionStatus = Field(default=SuggestionStatus.open, sa_type=sa.String(16))
    late_involvement: bool = False
    note: str | None = Field(default=None, sa_type=sa.Text)
    decided_at: dt.datetime | None = _ts(nullable=True)
    created_at: dt.datetime = _ts()


class Assignment(SQLModel, table=True):
    __tablename__ = "assignment"
    __table_args__ = (
        sa.Index(None, "deal_id", "id"),
        sa.Index(None, "member_id", "status", "deal_id"),
        sa.Index(None, "organization_id", "status", "created_at"),
        sa.CheckConstraint(_in("status", AssignmentStatus), name="status"),
        sa.CheckConstraint(_in("role", AssignmentRole), name="role"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    member_id: uuid.UUID = Field(foreign_key="member.id")
    role: AssignmentRole = Field(sa_type=sa.String(32))
    purpose: str | None = Field(default=None, sa_type=sa.String(2000))
    status: AssignmentStatus = Field(sa_type=sa.String(16))
    requested_by: uuid.UUID = Field(foreign_key="member.id")
    late_involvement: bool = False
    version: int = 1
    created_at: dt.datetime = _ts()
    decided_at: dt.datetime | None = _ts(nullable=True)
    ended_at: dt.datetime | None = _ts(nullable=True)


class DealInvolvement(SQLModel, table=True):
    """A member's first involvement in a deal, and whether it came in a late stage."""

    __tablename__ = "deal_involvement"
    __table_args__ = (sa.Index(None, "organization_id", "member_id", "first_at"),)

    deal_id: uuid.UUID = Field(foreign_key="deal.id", primary_key=True, ondelete="CASCADE")
    member_id: uuid.UUID = Field(foreign_key="member.id", primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    kind: str = Field(sa_type=sa.String(32))
    stage: str = Field(sa_type=sa.String(32))
    late: bool
    first_at: dt.datetime = _ts()


# --- calls, interventions, observations -------------------------------------


class Call(SQLModel, table=True):
    """A customer meeting on a deal, led by the deal's owner."""

    __tablename__ = "call"
    __table_args__ = (sa.Index(None, "deal_id", "id"), sa.Index(None, "organization_id", "id"))

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    lead_id: uuid.UUID = Field(foreign_key="member.id")
    scheduled_at: dt.datetime = Field(sa_type=UTCDateTime)
    purpose: str | None = Field(default=None, sa_type=sa.String(2000))
    held_at: dt.datetime | None = _ts(nullable=True)
    outcome: str | None = Field(default=None, sa_type=sa.String(5000))
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class CallAttendee(SQLModel, table=True):
    """Who attends a call, in which agreed role."""

    __tablename__ = "call_attendee"
    __table_args__ = (
        sa.Index(None, "organization_id", "member_id"),
        sa.CheckConstraint(_in("call_role", CallRole), name="call_role"),
    )

    call_id: uuid.UUID = Field(foreign_key="call.id", primary_key=True, ondelete="CASCADE")
    member_id: uuid.UUID = Field(foreign_key="member.id", primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    call_role: CallRole = Field(sa_type=sa.String(16))
    agreed_part: str | None = Field(default=None, sa_type=sa.String(2000))
    position: int = 0


class Intervention(SQLModel, table=True):
    """Something a non-lead attendee did during a held call; a takeover is counted."""

    __tablename__ = "intervention"
    __table_args__ = (
        sa.Index(None, "call_id", "id"),
        sa.Index(None, "organization_id", "member_id", "created_at"),
        sa.CheckConstraint(_in("kind", InterventionKind), name="kind"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    call_id: uuid.UUID = Field(foreign_key="call.id", ondelete="CASCADE")
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    member_id: uuid.UUID = Field(foreign_key="member.id")
    kind: InterventionKind = Field(sa_type=sa.String(32))
    note: str | None = Field(default=None, sa_type=sa.String(2000))
    is_takeover: bool = False
    recorded_by: uuid.UUID = Field(foreign_key="member.id")
    created_at: dt.datetime = _ts()


class Observation(SQLModel, table=True):
    """An observer's notes on the lead in one call: strengths first, a few improvements."""

    __tablename__ = "observation"
    __table_args__ = (
        sa.Index(None, "organization_id", "seller_id", "id"),
        sa.Index(None, "organization_id", "observer_id", "id"),
        sa.Index(None, "organization_id", "seller_id", "shared_at"),
        sa.Index(None, "organization_id", "seller_id", "acknowledged_at"),
        sa.Index(None, "organization_id", "observer_id", "status", "created_at"),
        sa.Index(None, "organization_id", "seller_id", "status", "shared_at"),
        sa.Index(None, "call_id"),
        sa.CheckConstraint(_in("status", ObservationStatus), name="status"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    call_id: uuid.UUID = Field(foreign_key="call.id", ondelete="CASCADE")
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    observer_id: uuid.UUID = Field(foreign_key="member.id")
    seller_id: uuid.UUID = Field(foreign_key="member.id")
    strengths: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)
    improvements: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)
    # Counted here so analytics aggregate plain integers on both databases.
    strengths_count: int = 0
    improvements_count: int = 0
    summary: str | None = Field(default=None, sa_type=sa.String(5000))
    status: ObservationStatus = Field(default=ObservationStatus.draft, sa_type=sa.String(16))
    shared_at: dt.datetime | None = _ts(nullable=True)
    acknowledged_at: dt.datetime | None = _ts(nullable=True)
    reflection: str | None = Field(default=None, sa_type=sa.String(5000))
    commitments: list[str] = Field(default_factory=list, sa_type=JSONType)
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class ObservationSkill(SQLModel, table=True):
    """A skill a shared observation recognises or asks to improve: a row each, written when the
    observation is shared (its content is fixed from then on), so profiles count in SQL."""

    __tablename__ = "observation_skill"
    __table_args__ = (
        sa.Index(None, "organization_id", "seller_id", "shared_at"),
        sa.Index(None, "organization_id", "shared_at"),
        sa.CheckConstraint(_in("kind", SkillMention), name="kind"),
    )

    observation_id: uuid.UUID = Field(foreign_key="observation.id", primary_key=True, ondelete="CASCADE")
    kind: SkillMention = Field(sa_type=sa.String(16), primary_key=True)
    skill_code: str = Field(sa_type=sa.String(64), primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    seller_id: uuid.UUID = Field(foreign_key="member.id")
    shared_at: dt.datetime = Field(sa_type=UTCDateTime)


# --- closed-lost reviews ------------------------------------------------------


class ClosedLostReview(SQLModel, table=True):
    """The review conversation a lost deal opens: one per deal, reused if it is lost again."""

    __tablename__ = "closed_lost_review"
    __table_args__ = (
        sa.UniqueConstraint("deal_id"),
        sa.Index(None, "organization_id", "closed_week", "reviewer_id"),
        sa.Index(None, "organization_id", "reviewer_id", "id"),
        sa.Index(None, "organization_id", "owner_id", "id"),
        sa.Index(None, "organization_id", "status", "id"),
        sa.Index(None, "organization_id", "closed_at"),
        sa.Index(None, "organization_id", "owner_id", "closed_at"),
        sa.Index(None, "organization_id", "completed_at", "id"),
        # Named: the convention's name is longer than PostgreSQL's 63 characters.
        sa.Index(
            "ix_closed_lost_review_org_reviewer_id_status_closed_at",
            "organization_id",
            "reviewer_id",
            "status",
            "closed_at",
        ),
        sa.Index(None, "organization_id", "owner_id", "status", "closed_at"),
        sa.CheckConstraint(_in("status", ReviewStatus), name="status"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    owner_id: uuid.UUID = Field(foreign_key="member.id")
    reviewer_id: uuid.UUID | None = Field(default=None, foreign_key="member.id")
    status: ReviewStatus = Field(default=ReviewStatus.pending, sa_type=sa.String(16))
    deal_reopened: bool = False
    closed_at: dt.datetime = Field(sa_type=UTCDateTime)
    closed_week: str = Field(sa_type=sa.String(8), description="ISO week of closed_at, e.g. 2026-W47")
    due_on: dt.date
    amount_minor: int | None = Field(default=None, sa_type=sa.BigInteger)
    currency: str | None = Field(default=None, sa_type=sa.String(3))
    loss_reason_code: str = Field(sa_type=sa.String(64))
    loss_reason_confirmed: bool = False
    competitor: str | None = Field(default=None, sa_type=sa.String(200))
    root_cause: str | None = Field(default=None, sa_type=sa.String(5000))
    what_went_well: str | None = Field(default=None, sa_type=sa.String(5000))
    lessons: list[str] = Field(default_factory=list, sa_type=JSONType)
    skill_gaps: list[str] = Field(default_factory=list, sa_type=JSONType)
    product_feedback: str | None = Field(default=None, sa_type=sa.String(5000))
    enablement_feedback: str | None = Field(default=None, sa_type=sa.String(5000))
    action_items: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)
    seller_reflection: str | None = Field(default=None, sa_type=sa.String(5000))
    suggested_skills: list[str] = Field(default_factory=list, sa_type=JSONType)
    completed_at: dt.datetime | None = _ts(nullable=True)
    # Set on completion, so medians are computed over a plain number on both databases.
    days_to_complete: float | None = None
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class ReviewSkillGap(SQLModel, table=True):
    """One skill gap named by a review: a row each, so analytics can group by skill in SQL."""

    __tablename__ = "review_skill_gap"
    __table_args__ = (sa.Index(None, "organization_id", "skill_code"),)

    review_id: uuid.UUID = Field(foreign_key="closed_lost_review.id", primary_key=True, ondelete="CASCADE")
    skill_code: str = Field(sa_type=sa.String(64), primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")


class LeadershipNote(SQLModel, table=True):
    """A head of sales's note on a review: leadership reviewing the managers' reviews."""

    __tablename__ = "leadership_note"
    __table_args__ = (sa.Index(None, "review_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    review_id: uuid.UUID = Field(foreign_key="closed_lost_review.id", ondelete="CASCADE")
    author_id: uuid.UUID = Field(foreign_key="member.id")
    note: str = Field(sa_type=sa.String(5000))
    created_at: dt.datetime = _ts()


# --- seller development -------------------------------------------------------


class Commitment(SQLModel, table=True):
    """What a member committed to in a debrief or was given as a review's action item,
    tracked until done or dropped."""

    __tablename__ = "commitment"
    __table_args__ = (
        sa.Index(None, "organization_id", "id"),
        sa.Index(None, "organization_id", "member_id", "status", "id"),
        sa.Index(None, "organization_id", "member_id", "status", "created_at"),  # my tasks (open ones)
        sa.Index(None, "organization_id", "member_id", "created_at"),
        sa.Index(None, "organization_id", "deal_id", "id"),
        sa.Index(None, "source_id"),
        sa.CheckConstraint(_in("source", CommitmentSource), name="source"),
        sa.CheckConstraint(_in("status", CommitmentStatus), name="status"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    member_id: uuid.UUID = Field(foreign_key="member.id")
    source: CommitmentSource = Field(sa_type=sa.String(32))
    # The observation or the closed-lost review it came from.
    source_id: uuid.UUID
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    text: str = Field(sa_type=sa.String(2000))
    skill_code: str | None = Field(default=None, sa_type=sa.String(64))
    due_on: dt.date | None = None
    status: CommitmentStatus = Field(default=CommitmentStatus.open, sa_type=sa.String(16))
    note: str | None = Field(default=None, sa_type=sa.String(2000))
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()
    closed_at: dt.datetime | None = _ts(nullable=True)


# --- approvals ----------------------------------------------------------------


class Approval(SQLModel, table=True):
    """Leadership sign-off on explicit deal terms; approved terms never change."""

    __tablename__ = "approval"
    __table_args__ = (
        sa.Index(None, "deal_id", "id"),
        sa.Index(None, "organization_id", "approver_id", "id"),
        sa.Index(None, "organization_id", "approver_id", "status", "created_at"),
        sa.CheckConstraint(_in("status", ApprovalStatus), name="status"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    deal_id: uuid.UUID = Field(foreign_key="deal.id", ondelete="CASCADE")
    requested_by: uuid.UUID = Field(foreign_key="member.id")
    approver_id: uuid.UUID = Field(foreign_key="member.id")
    terms: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)
    status: ApprovalStatus = Field(default=ApprovalStatus.pending, sa_type=sa.String(16))
    decision_note: str | None = Field(default=None, sa_type=sa.String(5000))
    decided_at: dt.datetime | None = _ts(nullable=True)
    relied_on_at: dt.datetime | None = _ts(nullable=True)
    revoked_at: dt.datetime | None = _ts(nullable=True)
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="member.id")
    revoke_reason: str | None = Field(default=None, sa_type=sa.String(5000))
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


# --- webhooks out ---------------------------------------------------------------


class WebhookEndpoint(SQLModel, table=True):
    """A receiver of the organisation's events; its secret signs every delivery."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = (
        sa.Index(None, "organization_id", "id"),
        sa.CheckConstraint(_in("disabled_reason", DisabledReason), name="disabled_reason"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    url: str = Field(sa_type=sa.String(2048))
    event_types: list[str] = Field(default_factory=list, sa_type=JSONType)
    description: str | None = Field(default=None, sa_type=sa.String(500))
    active: bool = True
    disabled_reason: DisabledReason | None = Field(default=None, sa_type=sa.String(16))
    secret: str = Field(sa_type=sa.String(128))
    previous_secret: str | None = Field(default=None, sa_type=sa.String(128))
    previous_secret_until: dt.datetime | None = _ts(nullable=True)
    failing_since: dt.datetime | None = _ts(nullable=True)
    last_success_at: dt.datetime | None = _ts(nullable=True)
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class WebhookSubscription(SQLModel, table=True):
    """One pattern of an active endpoint (`deal.stage_changed`, `deal.*` or `*`): the outbox
    finds an event's endpoints with one indexed lookup on these rows."""

    __tablename__ = "webhook_subscription"

    organization_id: uuid.UUID = Field(foreign_key="organization.id", primary_key=True, ondelete="CASCADE")
    pattern: str = Field(sa_type=sa.String(64), primary_key=True)
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoint.id", primary_key=True, ondelete="CASCADE")


# A delivery's event seq while it is pending, else NULL (as the per-deal index has it; see
# app/db/queues.py).
PENDING_SEQ = f"(CASE WHEN status = '{DeliveryStatus.pending.value}' THEN event_seq END)"


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: written with the event (the outbox), sent by a dispatcher."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.Index(None, "status", "next_attempt_at"),
        # Per deal and endpoint, the pending seqs (app/db/repositories/webhooks.py): pending is in
        # the indexed expression, not a column of its own, so that no index led by status can
        # answer "is an earlier one pending?" too (app/db/queues.py).
        sa.Index("ix_webhook_delivery_endpoint_id_deal_id_pending_seq", "endpoint_id", "deal_id", sa.text(PENDING_SEQ)),
        sa.Index(None, "endpoint_id", "id"),
        sa.Index(None, "status", "created_at"),
        sa.CheckConstraint(_in("status", DeliveryStatus), name="status"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoint.id", ondelete="CASCADE")
    event_id: uuid.UUID
    event_seq: int = Field(sa_type=sa.BigInteger)
    event_type: str = Field(sa_type=sa.String(64))
    deal_id: uuid.UUID | None = None
    payload: dict[str, Any] | None = Field(default=None, sa_type=JSONType)  # only for pings: no event row
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, sa_type=sa.String(16))
    attempts: int = 0
    next_attempt_at: dt.datetime = _ts()
    leased_until: dt.datetime | None = _ts(nullable=True)
    last_attempt_at: dt.datetime | None = _ts(nullable=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_type=sa.String(500))
    last_response_body: str | None = Field(default=None, sa_type=sa.String(1024))
    created_at: dt.datetime = _ts()


class WebhookAttempt(SQLModel, table=True):
    """One try at sending a delivery: its answer, or why there was none, and how long it took."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (sa.Index(None, "delivery_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    delivery_id: uuid.UUID = Field(foreign_key="webhook_delivery.id", ondelete="CASCADE")
    attempted_at: dt.datetime = _ts()
    status_code: int | None = None
    error: str | None = Field(default=None, sa_type=sa.String(500))
    duration_ms: int


# --- CRM integrations (webhooks in) ---------------------------------------------


class Integration(SQLModel, table=True):
    """An organisation's link to its CRM: which CRM account routes here, how its stages, users
    and lost reasons map to ours, and the member its writes are made as. The credentials are
    write-only: no read path of the API returns them."""

    __tablename__ = "integration"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "provider"),
        sa.UniqueConstraint("provider", "account_id"),
        sa.CheckConstraint(_in("provider", Provider), name="provider"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    provider: Provider = Field(sa_type=sa.String(16))
    enabled: bool = True
    account_id: str = Field(sa_type=sa.String(200))
    credentials: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    stage_map: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    owner_map: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    loss_reason_map: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    default_currency: str | None = Field(default=None, sa_type=sa.String(3))
    # Salesforce: the Opportunity field holding the lost reason (null: Loss_Reason__c).
    loss_reason_field: str | None = Field(default=None, sa_type=sa.String(100))
    member_id: uuid.UUID = Field(foreign_key="member.id")
    version: int = 1
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


# An inbound event's id while it is pending, else NULL (as the per-object index has it).
PENDING_ID = f"(CASE WHEN outcome = '{InboxOutcome.pending.value}' THEN id END)"


class InboundEvent(SQLModel, table=True):
    """One event a CRM sent (the inbox): stored before it is answered, applied later by the inbox
    applier (app/services/inbox_applier.py); one row per provider event, however often it is sent."""

    __tablename__ = "inbound_event"
    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_event_id"),
        sa.Index(None, "organization_id", "provider", "id"),
        sa.Index(None, "organization_id", "provider", "outcome", "id"),
        # Per CRM object: its events, and its pending ids (app/db/queues.py).
        sa.Index("ix_inbound_event_object_pending_id", "organization_id", "provider", "object_id", sa.text(PENDING_ID)),
        # The applier's claim (app/db/repositories/integrations.py): the pending events by when
        # they are due, in arrival order; only pending rows, so the claim never steps over the
        # events already applied, however many there are, nor over those waiting for a retry.
        sa.Index(
            "ix_inbound_event_due",
            "next_attempt_at",
            "id",
            postgresql_where=sa.text("outcome = 'pending'"),
            sqlite_where=sa.text("outcome = 'pending'"),
        ),
        sa.CheckConstraint(_in("provider", Provider), name="provider"),
        sa.CheckConstraint(_in("outcome", InboxOutcome), name="outcome"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key="organization.id", ondelete="CASCADE")
    integration_id: uuid.UUID = Field(foreign_key="integration.id", ondelete="CASCADE")
    provider: Provider = Field(sa_type=sa.String(16))
    provider_event_id: str = Field(sa_type=sa.String(200))
    received_at: dt.datetime = _ts()
    action: str = Field(sa_type=sa.String(32))
    object_type: str = Field(sa_type=sa.String(64))
    object_id: str | None = Field(default=None, sa_type=sa.String(200))
    provider_timestamp: dt.datetime | None = _ts(nullable=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    outcome: InboxOutcome = Field(default=InboxOutcome.pending, sa_type=sa.String(16))
    problem: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    deal_id: uuid.UUID | None = None
    attempts: int = 0
    next_attempt_at: dt.datetime = _ts()
    leased_until: dt.datetime | None = _ts(nullable=True)
    applied_at: dt.datetime | None = _ts(nullable=True)
