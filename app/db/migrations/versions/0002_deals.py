"""Deals, external refs, strategy versions, suggestions, assignments, involvement.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 00:46:29.536966
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from app.db.types import JSONType, UTCDateTime

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('deal',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('account_name', sa.String(length=200), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('expected_close_date', sa.Date(), nullable=True),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('closed_at', UTCDateTime(), nullable=True),
    sa.Column('loss_reason_code', sa.String(length=64), nullable=True),
    sa.Column('loss_competitor', sa.String(length=200), nullable=True),
    sa.Column('loss_detail', sa.String(length=2000), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.CheckConstraint("stage IN ('prospecting', 'qualification', 'discovery', 'proposal', 'negotiation', 'closed_won', 'closed_lost')", name=op.f('ck_deal_stage')),
    sa.CheckConstraint('(amount_minor IS NULL) = (currency IS NULL)', name=op.f('ck_deal_amount_has_currency')),
    sa.CheckConstraint('amount_minor IS NULL OR amount_minor >= 0', name=op.f('ck_deal_amount_not_negative')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_deal_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['member.id'], name=op.f('fk_deal_owner_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal'))
    )
    with op.batch_alter_table('deal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deal_organization_id_closed_at_id'), ['organization_id', 'closed_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deal_organization_id_id'), ['organization_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deal_organization_id_owner_id_id'), ['organization_id', 'owner_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deal_organization_id_stage_id'), ['organization_id', 'stage', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deal_organization_id_updated_at_id'), ['organization_id', 'updated_at', 'id'], unique=False)

    op.create_table('assignment',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=2000), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.Uuid(), nullable=False),
    sa.Column('late_involvement', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('decided_at', UTCDateTime(), nullable=True),
    sa.Column('ended_at', UTCDateTime(), nullable=True),
    sa.CheckConstraint("role IN ('coach', 'observer', 'executive_sponsor', 'subject_matter_expert', 'sales_engineer')", name=op.f('ck_assignment_role')),
    sa.CheckConstraint("status IN ('requested', 'proposed', 'active', 'declined', 'ended')", name=op.f('ck_assignment_status')),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_assignment_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_assignment_member_id_member')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_assignment_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by'], ['member.id'], name=op.f('fk_assignment_requested_by_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment'))
    )
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignment_deal_id_id'), ['deal_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignment_member_id_status_deal_id'), ['member_id', 'status', 'deal_id'], unique=False)

    op.create_table('deal_external_ref',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_deal_external_ref_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_deal_external_ref_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal_external_ref')),
    sa.UniqueConstraint('organization_id', 'source', 'external_id', name=op.f('uq_deal_external_ref_organization_id_source_external_id'))
    )
    with op.batch_alter_table('deal_external_ref', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deal_external_ref_deal_id'), ['deal_id'], unique=False)

    op.create_table('deal_involvement',
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('first_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_deal_involvement_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_deal_involvement_member_id_member')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_deal_involvement_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('deal_id', 'member_id', name=op.f('pk_deal_involvement'))
    )
    with op.batch_alter_table('deal_involvement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deal_involvement_organization_id_member_id_first_at'), ['organization_id', 'member_id', 'first_at'], unique=False)

    op.create_table('strategy_version',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('document', JSONType, nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['member.id'], name=op.f('fk_strategy_version_author_id_member')),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_strategy_version_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_strategy_version_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_strategy_version')),
    sa.UniqueConstraint('deal_id', 'version', name=op.f('uq_strategy_version_deal_id_version'))
    )
    op.create_table('suggestion',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('section', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('late_involvement', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('decided_at', UTCDateTime(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'accepted', 'declined')", name=op.f('ck_suggestion_status')),
    sa.ForeignKeyConstraint(['author_id'], ['member.id'], name=op.f('fk_suggestion_author_id_member')),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_suggestion_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_suggestion_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suggestion'))
    )
    with op.batch_alter_table('suggestion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suggestion_deal_id_id'), ['deal_id', 'id'], unique=False)


    if op.get_bind().dialect.name == "postgresql":
        # Deal search (`q`) is a substring match on name and account: trigram indexes serve it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in ("name", "account_name"):
            op.execute(f"CREATE INDEX ix_deal_{column}_trgm ON deal USING gin (lower({column}) gin_trgm_ops)")



def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_deal_name_trgm")
        op.execute("DROP INDEX IF EXISTS ix_deal_account_name_trgm")

    with op.batch_alter_table('suggestion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suggestion_deal_id_id'))

    op.drop_table('suggestion')
    op.drop_table('strategy_version')
    with op.batch_alter_table('deal_involvement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deal_involvement_organization_id_member_id_first_at'))

    op.drop_table('deal_involvement')
    with op.batch_alter_table('deal_external_ref', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deal_external_ref_deal_id'))

    op.drop_table('deal_external_ref')
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignment_member_id_status_deal_id'))
        batch_op.drop_index(batch_op.f('ix_assignment_deal_id_id'))

    op.drop_table('assignment')
    with op.batch_alter_table('deal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deal_organization_id_updated_at_id'))
        batch_op.drop_index(batch_op.f('ix_deal_organization_id_stage_id'))
        batch_op.drop_index(batch_op.f('ix_deal_organization_id_owner_id_id'))
        batch_op.drop_index(batch_op.f('ix_deal_organization_id_id'))
        batch_op.drop_index(batch_op.f('ix_deal_organization_id_closed_at_id'))

    op.drop_table('deal')

