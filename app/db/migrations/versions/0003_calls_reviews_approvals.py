"""Calls, attendees, interventions, observations; closed-lost reviews; approvals.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 01:10:50.295537
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from app.db.types import JSONType, UTCDateTime

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('approval',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('requested_by', sa.Uuid(), nullable=False),
    sa.Column('approver_id', sa.Uuid(), nullable=False),
    sa.Column('terms', JSONType, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('decision_note', sa.String(length=5000), nullable=True),
    sa.Column('decided_at', UTCDateTime(), nullable=True),
    sa.Column('relied_on_at', UTCDateTime(), nullable=True),
    sa.Column('revoked_at', UTCDateTime(), nullable=True),
    sa.Column('revoked_by', sa.Uuid(), nullable=True),
    sa.Column('revoke_reason', sa.String(length=5000), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected', 'revoked')", name=op.f('ck_approval_status')),
    sa.ForeignKeyConstraint(['approver_id'], ['member.id'], name=op.f('fk_approval_approver_id_member')),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_approval_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_approval_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by'], ['member.id'], name=op.f('fk_approval_requested_by_member')),
    sa.ForeignKeyConstraint(['revoked_by'], ['member.id'], name=op.f('fk_approval_revoked_by_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval'))
    )
    with op.batch_alter_table('approval', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_deal_id_id'), ['deal_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_approval_organization_id_approver_id_id'), ['organization_id', 'approver_id', 'id'], unique=False)

    op.create_table('call',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('scheduled_at', UTCDateTime(), nullable=False),
    sa.Column('purpose', sa.String(length=2000), nullable=True),
    sa.Column('held_at', UTCDateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=5000), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_call_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['member.id'], name=op.f('fk_call_lead_id_member')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_call_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call'))
    )
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_deal_id_id'), ['deal_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_organization_id_id'), ['organization_id', 'id'], unique=False)

    op.create_table('closed_lost_review',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('reviewer_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('deal_reopened', sa.Boolean(), nullable=False),
    sa.Column('closed_at', UTCDateTime(), nullable=False),
    sa.Column('closed_week', sa.String(length=8), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('loss_reason_code', sa.String(length=64), nullable=False),
    sa.Column('loss_reason_confirmed', sa.Boolean(), nullable=False),
    sa.Column('competitor', sa.String(length=200), nullable=True),
    sa.Column('root_cause', sa.String(length=5000), nullable=True),
    sa.Column('what_went_well', sa.String(length=5000), nullable=True),
    sa.Column('lessons', JSONType, nullable=False),
    sa.Column('skill_gaps', JSONType, nullable=False),
    sa.Column('product_feedback', sa.String(length=5000), nullable=True),
    sa.Column('enablement_feedback', sa.String(length=5000), nullable=True),
    sa.Column('action_items', JSONType, nullable=False),
    sa.Column('seller_reflection', sa.String(length=5000), nullable=True),
    sa.Column('suggested_skills', JSONType, nullable=False),
    sa.Column('completed_at', UTCDateTime(), nullable=True),
    sa.Column('days_to_complete', sa.Float(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'completed')", name=op.f('ck_closed_lost_review_status')),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_closed_lost_review_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_closed_lost_review_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['member.id'], name=op.f('fk_closed_lost_review_owner_id_member')),
    sa.ForeignKeyConstraint(['reviewer_id'], ['member.id'], name=op.f('fk_closed_lost_review_reviewer_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_closed_lost_review')),
    sa.UniqueConstraint('deal_id', name=op.f('uq_closed_lost_review_deal_id'))
    )
    with op.batch_alter_table('closed_lost_review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_closed_lost_review_organization_id_closed_at'), ['organization_id', 'closed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_closed_lost_review_organization_id_closed_week_reviewer_id'), ['organization_id', 'closed_week', 'reviewer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_closed_lost_review_organization_id_owner_id_id'), ['organization_id', 'owner_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_closed_lost_review_organization_id_reviewer_id_id'), ['organization_id', 'reviewer_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_closed_lost_review_organization_id_status_id'), ['organization_id', 'status', 'id'], unique=False)

    op.create_table('call_attendee',
    sa.Column('call_id', sa.Uuid(), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('call_role', sa.String(length=16), nullable=False),
    sa.Column('agreed_part', sa.String(length=2000), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.CheckConstraint("call_role IN ('lead', 'observer', 'contributor')", name=op.f('ck_call_attendee_call_role')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_call_attendee_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_call_attendee_member_id_member')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_call_attendee_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('call_id', 'member_id', name=op.f('pk_call_attendee'))
    )
    with op.batch_alter_table('call_attendee', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_attendee_organization_id_member_id'), ['organization_id', 'member_id'], unique=False)

    op.create_table('intervention',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('call_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('note', sa.String(length=2000), nullable=True),
    sa.Column('is_takeover', sa.Boolean(), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('answered_question', 'corrected_fact', 'took_over')", name=op.f('ck_intervention_kind')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_intervention_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_intervention_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_intervention_member_id_member')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_intervention_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by'], ['member.id'], name=op.f('fk_intervention_recorded_by_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intervention'))
    )
    with op.batch_alter_table('intervention', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intervention_call_id_id'), ['call_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intervention_organization_id_member_id_created_at'), ['organization_id', 'member_id', 'created_at'], unique=False)

    op.create_table('leadership_note',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('review_id', sa.Uuid(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('note', sa.String(length=5000), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['member.id'], name=op.f('fk_leadership_note_author_id_member')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_leadership_note_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['review_id'], ['closed_lost_review.id'], name=op.f('fk_leadership_note_review_id_closed_lost_review'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leadership_note'))
    )
    with op.batch_alter_table('leadership_note', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leadership_note_review_id_id'), ['review_id', 'id'], unique=False)

    op.create_table('observation',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('call_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('observer_id', sa.Uuid(), nullable=False),
    sa.Column('seller_id', sa.Uuid(), nullable=False),
    sa.Column('strengths', JSONType, nullable=False),
    sa.Column('improvements', JSONType, nullable=False),
    sa.Column('strengths_count', sa.Integer(), nullable=False),
    sa.Column('improvements_count', sa.Integer(), nullable=False),
    sa.Column('summary', sa.String(length=5000), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('shared_at', UTCDateTime(), nullable=True),
    sa.Column('acknowledged_at', UTCDateTime(), nullable=True),
    sa.Column('reflection', sa.String(length=5000), nullable=True),
    sa.Column('commitments', JSONType, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'shared', 'acknowledged')", name=op.f('ck_observation_status')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_observation_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_observation_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['observer_id'], ['member.id'], name=op.f('fk_observation_observer_id_member')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_observation_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['seller_id'], ['member.id'], name=op.f('fk_observation_seller_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_observation'))
    )
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_observation_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_observation_organization_id_observer_id_id'), ['organization_id', 'observer_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_observation_organization_id_seller_id_id'), ['organization_id', 'seller_id', 'id'], unique=False)

    op.create_table('review_skill_gap',
    sa.Column('review_id', sa.Uuid(), nullable=False),
    sa.Column('skill_code', sa.String(length=64), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_review_skill_gap_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['review_id'], ['closed_lost_review.id'], name=op.f('fk_review_skill_gap_review_id_closed_lost_review'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('review_id', 'skill_code', name=op.f('pk_review_skill_gap'))
    )
    with op.batch_alter_table('review_skill_gap', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_skill_gap_organization_id_skill_code'), ['organization_id', 'skill_code'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('review_skill_gap', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_skill_gap_organization_id_skill_code'))

    op.drop_table('review_skill_gap')
    with op.batch_alter_table('observation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_observation_organization_id_seller_id_id'))
        batch_op.drop_index(batch_op.f('ix_observation_organization_id_observer_id_id'))
        batch_op.drop_index(batch_op.f('ix_observation_call_id'))

    op.drop_table('observation')
    with op.batch_alter_table('leadership_note', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leadership_note_review_id_id'))

    op.drop_table('leadership_note')
    with op.batch_alter_table('intervention', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intervention_organization_id_member_id_created_at'))
        batch_op.drop_index(batch_op.f('ix_intervention_call_id_id'))

    op.drop_table('intervention')
    with op.batch_alter_table('call_attendee', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_attendee_organization_id_member_id'))

    op.drop_table('call_attendee')
    with op.batch_alter_table('closed_lost_review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_closed_lost_review_organization_id_status_id'))
        batch_op.drop_index(batch_op.f('ix_closed_lost_review_organization_id_reviewer_id_id'))
        batch_op.drop_index(batch_op.f('ix_closed_lost_review_organization_id_owner_id_id'))
        batch_op.drop_index(batch_op.f('ix_closed_lost_review_organization_id_closed_week_reviewer_id'))
        batch_op.drop_index(batch_op.f('ix_closed_lost_review_organization_id_closed_at'))

    op.drop_table('closed_lost_review')
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_organization_id_id'))
        batch_op.drop_index(batch_op.f('ix_call_deal_id_id'))

    op.drop_table('call')
    with op.batch_alter_table('approval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_organization_id_approver_id_id'))
        batch_op.drop_index(batch_op.f('ix_approval_deal_id_id'))

    op.drop_table('approval')

