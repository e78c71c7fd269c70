"""CRM integrations (webhooks in): each organisation's integration per provider, and the inbox of
the events the CRMs send, stored before they are answered and applied by the inbox applier.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from app.db.types import JSONType, UTCDateTime

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('integration',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('credentials', JSONType, nullable=False),
    sa.Column('stage_map', JSONType, nullable=False),
    sa.Column('owner_map', JSONType, nullable=False),
    sa.Column('loss_reason_map', JSONType, nullable=False),
    sa.Column('default_currency', sa.String(length=3), nullable=True),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.CheckConstraint("provider IN ('hubspot', 'pipedrive', 'salesforce')", name=op.f('ck_integration_provider')),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_integration_member_id_member')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_integration_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration')),
    sa.UniqueConstraint('organization_id', 'provider', name=op.f('uq_integration_organization_id_provider')),
    sa.UniqueConstraint('provider', 'account_id', name=op.f('uq_integration_provider_account_id'))
    )
    op.create_table('inbound_event',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('integration_id', sa.Uuid(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('provider_event_id', sa.String(length=200), nullable=False),
    sa.Column('received_at', UTCDateTime(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('object_type', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=200), nullable=True),
    sa.Column('provider_timestamp', UTCDateTime(), nullable=True),
    sa.Column('payload', JSONType, nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('problem', JSONType, nullable=True),
    sa.Column('deal_id', sa.Uuid(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
    sa.Column('leased_until', UTCDateTime(), nullable=True),
    sa.Column('applied_at', UTCDateTime(), nullable=True),
    sa.CheckConstraint("outcome IN ('pending', 'applied', 'unchanged', 'ignored', 'duplicate', 'rejected')", name=op.f('ck_inbound_event_outcome')),
    sa.CheckConstraint("provider IN ('hubspot', 'pipedrive', 'salesforce')", name=op.f('ck_inbound_event_provider')),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_inbound_event_integration_id_integration'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_inbound_event_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_event')),
    sa.UniqueConstraint('provider', 'provider_event_id', name=op.f('uq_inbound_event_provider_provider_event_id'))
    )
    op.create_index(op.f('ix_inbound_event_organization_id_provider_id'), 'inbound_event', ['organization_id', 'provider', 'id'], unique=False)
    op.create_index(op.f('ix_inbound_event_organization_id_provider_object_id'), 'inbound_event', ['organization_id', 'provider', 'object_id'], unique=False)
    op.create_index(op.f('ix_inbound_event_organization_id_provider_outcome_id'), 'inbound_event', ['organization_id', 'provider', 'outcome', 'id'], unique=False)
    op.create_index(op.f('ix_inbound_event_outcome_next_attempt_at'), 'inbound_event', ['outcome', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_inbound_event_outcome_next_attempt_at'), table_name='inbound_event')
    op.drop_index(op.f('ix_inbound_event_organization_id_provider_outcome_id'), table_name='inbound_event')
    op.drop_index(op.f('ix_inbound_event_organization_id_provider_object_id'), table_name='inbound_event')
    op.drop_index(op.f('ix_inbound_event_organization_id_provider_id'), table_name='inbound_event')
    op.drop_table('inbound_event')
    op.drop_table('integration')
