"""Seller development: commitments, the skills of shared observations, indexes for profiles,
team skills and the feedback digest; existing debriefs and completed reviews are carried over.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 20:49:23.664931
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from app.db.types import UTCDateTime

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('commitment',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.Uuid(), nullable=False),
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('text', sa.String(length=2000), nullable=False),
    sa.Column('skill_code', sa.String(length=64), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=2000), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('closed_at', UTCDateTime(), nullable=True),
    sa.CheckConstraint("source IN ('observation', 'closed_lost_review')", name=op.f('ck_commitment_source')),
    sa.CheckConstraint("status IN ('open', 'done', 'dropped')", name=op.f('ck_commitment_status')),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_commitment_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_commitment_member_id_member')),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_commitment_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commitment'))
    )
    op.create_index(op.f('ix_commitment_organization_id_deal_id_id'), 'commitment', ['organization_id', 'deal_id', 'id'], unique=False)
    op.create_index(op.f('ix_commitment_organization_id_id'), 'commitment', ['organization_id', 'id'], unique=False)
    op.create_index(op.f('ix_commitment_organization_id_member_id_created_at'), 'commitment', ['organization_id', 'member_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_commitment_organization_id_member_id_status_id'), 'commitment', ['organization_id', 'member_id', 'status', 'id'], unique=False)
    op.create_index(op.f('ix_commitment_source_id'), 'commitment', ['source_id'], unique=False)

    op.create_table('observation_skill',
    sa.Column('observation_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('skill_code', sa.String(length=64), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('seller_id', sa.Uuid(), nullable=False),
    sa.Column('shared_at', UTCDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('strength', 'improvement')", name=op.f('ck_observation_skill_kind')),
    sa.ForeignKeyConstraint(['observation_id'], ['observation.id'], name=op.f('fk_observation_skill_observation_id_observation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_observation_skill_organization_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['seller_id'], ['member.id'], name=op.f('fk_observation_skill_seller_id_member')),
    sa.PrimaryKeyConstraint('observation_id', 'kind', 'skill_code', name=op.f('pk_observation_skill'))
    )
    op.create_index(op.f('ix_observation_skill_organization_id_seller_id_shared_at'), 'observation_skill', ['organization_id', 'seller_id', 'shared_at'], unique=False)
    op.create_index(op.f('ix_observation_skill_organization_id_shared_at'), 'observation_skill', ['organization_id', 'shared_at'], unique=False)

    op.create_index(op.f('ix_closed_lost_review_organization_id_completed_at_id'), 'closed_lost_review', ['organization_id', 'completed_at', 'id'], unique=False)
    op.create_index(op.f('ix_closed_lost_review_organization_id_owner_id_closed_at'), 'closed_lost_review', ['organization_id', 'owner_id', 'closed_at'], unique=False)
    op.create_index(op.f('ix_observation_organization_id_seller_id_acknowledged_at'), 'observation', ['organization_id', 'seller_id', 'acknowledged_at'], unique=False)
    op.create_index(op.f('ix_observation_organization_id_seller_id_shared_at'), 'observation', ['organization_id', 'seller_id', 'shared_at'], unique=False)

    _carry_over(op.get_bind().dialect.name)


def _carry_over(dialect: str) -> None:
    """What was recorded before this revision counts: the skills of every shared observation, the
    commitments of every acknowledged one, and the assigned action items of every completed review
    (open; ids are random here, not UUIDv7, as neither database makes v7 ids)."""
    if dialect == 'postgresql':
        elements, text_elements = 'jsonb_array_elements', 'jsonb_array_elements_text'
        field = "{0}.value ->> '{1}'"
        new_id = 'gen_random_uuid()'
        member = "(a.value ->> 'assignee_id')::uuid"
        due = "(a.value ->> 'due_date')::date"
    else:
        elements = text_elements = 'json_each'
        field = "json_extract({0}.value, '$.{1}')"
        new_id = 'lower(hex(randomblob(16)))'  # how SQLAlchemy stores a Uuid on SQLite: 32 hex digits
        member = "lower(replace(json_extract(a.value, '$.assignee_id'), '-', ''))"
        due = "json_extract(a.value, '$.due_date')"
    for kind, column in (('strength', 'strengths'), ('improvement', 'improvements')):
        op.execute(
            f"INSERT INTO observation_skill (observation_id, kind, skill_code, organization_id, seller_id, shared_at) "
            f"SELECT DISTINCT o.id, '{kind}', {field.format('s', 'skill_code')}, o.organization_id, o.seller_id, "
            f"o.shared_at FROM observation o, {elements}(o.{column}) s WHERE o.shared_at IS NOT NULL"
        )
    op.execute(
        f"INSERT INTO commitment (id, organization_id, member_id, source, source_id, deal_id, text, status, version, "
        f"created_at, updated_at) "
        f"SELECT {new_id}, o.organization_id, o.seller_id, 'observation', o.id, o.deal_id, t.value, 'open', 1, "
        f"o.acknowledged_at, o.acknowledged_at FROM observation o, {text_elements}(o.commitments) t "
        f"WHERE o.status = 'acknowledged'"
    )
    op.execute(
        f"INSERT INTO commitment (id, organization_id, member_id, source, source_id, deal_id, text, due_on, status, "
        f"version, created_at, updated_at) "
        f"SELECT {new_id}, r.organization_id, {member}, 'closed_lost_review', r.id, r.deal_id, "
        f"{field.format('a', 'description')}, {due}, 'open', 1, r.completed_at, r.completed_at "
        f"FROM closed_lost_review r, {elements}(r.action_items) a "
        f"WHERE r.status = 'completed' AND {field.format('a', 'assignee_id')} IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_observation_organization_id_seller_id_shared_at'), table_name='observation')
    op.drop_index(op.f('ix_observation_organization_id_seller_id_acknowledged_at'), table_name='observation')
    op.drop_index(op.f('ix_closed_lost_review_organization_id_owner_id_closed_at'), table_name='closed_lost_review')
    op.drop_index(op.f('ix_closed_lost_review_organization_id_completed_at_id'), table_name='closed_lost_review')

    op.drop_index(op.f('ix_observation_skill_organization_id_shared_at'), table_name='observation_skill')
    op.drop_index(op.f('ix_observation_skill_organization_id_seller_id_shared_at'), table_name='observation_skill')
    op.drop_table('observation_skill')

    op.drop_index(op.f('ix_commitment_source_id'), table_name='commitment')
    op.drop_index(op.f('ix_commitment_organization_id_member_id_status_id'), table_name='commitment')
    op.drop_index(op.f('ix_commitment_organization_id_member_id_created_at'), table_name='commitment')
    op.drop_index(op.f('ix_commitment_organization_id_id'), table_name='commitment')
    op.drop_index(op.f('ix_commitment_organization_id_deal_id_id'), table_name='commitment')
    op.drop_table('commitment')
