"""My tasks: the next steps of every deal's current strategy as rows (a step assigned to a member is
found by index), carried over from the latest versions; indexes for what each kind of task filters
on (the member it waits on and the state it waits in).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 06:45:28.630195
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from app.db.types import UTCDateTime

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = [
    ('ix_approval_organization_id_approver_id_status_created_at', 'approval', ['organization_id', 'approver_id', 'status', 'created_at']),
    ('ix_assignment_organization_id_status_created_at', 'assignment', ['organization_id', 'status', 'created_at']),
    ('ix_closed_lost_review_organization_id_owner_id_status_closed_at', 'closed_lost_review', ['organization_id', 'owner_id', 'status', 'closed_at']),
    ('ix_closed_lost_review_org_reviewer_id_status_closed_at', 'closed_lost_review', ['organization_id', 'reviewer_id', 'status', 'closed_at']),
    ('ix_observation_organization_id_observer_id_status_created_at', 'observation', ['organization_id', 'observer_id', 'status', 'created_at']),
    ('ix_observation_organization_id_seller_id_status_shared_at', 'observation', ['organization_id', 'seller_id', 'status', 'shared_at']),
    ('ix_suggestion_organization_id_status_created_at', 'suggestion', ['organization_id', 'status', 'created_at']),
]


def upgrade() -> None:
    op.create_table('strategy_next_step',
    sa.Column('deal_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('assignee_id', sa.Uuid(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assigned_at', UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'done')", name=op.f('ck_strategy_next_step_status')),
    sa.ForeignKeyConstraint(['assignee_id'], ['member.id'], name=op.f('fk_strategy_next_step_assignee_id_member')),
    sa.ForeignKeyConstraint(['deal_id'], ['deal.id'], name=op.f('fk_strategy_next_step_deal_id_deal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], name=op.f('fk_strategy_next_step_organization_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('deal_id', 'id', name=op.f('pk_strategy_next_step'))
    )
    op.create_index('ix_strategy_next_step_org_assignee_id_status_assigned_at', 'strategy_next_step', ['organization_id', 'assignee_id', 'status', 'assigned_at'], unique=False)
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns, unique=False)

    _carry_over(op.get_bind().dialect.name)


def _carry_over(dialect: str) -> None:
    """The steps of each deal's latest version. A step's assigned_at is when the earliest version
    naming its assignee on it was written (a step handed to someone else and back counts from the
    first time)."""
    if dialect == 'postgresql':
        steps = "jsonb_array_elements({0}.document -> 'next_steps') WITH ORDINALITY AS {1}(value, n)"
        field = "{0}.value ->> '{1}'"
        uuid_of = "({0})::uuid"
        date_of = "({0})::date"
        position = "s.n - 1"
    else:
        steps = "json_each({0}.document, '$.next_steps') AS {1}"
        field = "json_extract({0}.value, '$.{1}')"
        uuid_of = "lower(replace({0}, '-', ''))"  # how SQLAlchemy stores a Uuid on SQLite: 32 hex digits
        date_of = "{0}"
        position = "s.key"
    step_id, assignee = field.format('s', 'id'), field.format('s', 'assignee_id')
    op.execute(
        "INSERT INTO strategy_next_step (deal_id, id, organization_id, position, description, assignee_id, due_date, "
        "status, assigned_at) "
        f"SELECT v.deal_id, {uuid_of.format(step_id)}, v.organization_id, {position}, "
        f"{field.format('s', 'description')}, {uuid_of.format(assignee)}, "
        f"{date_of.format(field.format('s', 'due_date'))}, coalesce({field.format('s', 'status')}, 'open'), "
        f"CASE WHEN {assignee} IS NULL THEN NULL ELSE ("
        f"SELECT min(p.created_at) FROM strategy_version p, {steps.format('p', 'ps')} "
        f"WHERE p.deal_id = v.deal_id AND {field.format('ps', 'id')} = {step_id} "
        f"AND {field.format('ps', 'assignee_id')} = {assignee}) END "
        f"FROM strategy_version v, {steps.format('v', 's')} "
        "WHERE v.version = (SELECT max(l.version) FROM strategy_version l WHERE l.deal_id = v.deal_id)"
    )


def downgrade() -> None:
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_index('ix_strategy_next_step_org_assignee_id_status_assigned_at', table_name='strategy_next_step')
    op.drop_table('strategy_next_step')
