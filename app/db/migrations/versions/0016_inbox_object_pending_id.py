"""CRM inbox events per object by their pending id, an expression, instead of a partial index on
the pending ones and a plain one on the object: asked for "an earlier pending event of this
object", the planner, believing almost nothing pending (the inbox's statistics are nearly always
stale), answered from the partial index of all pending events in id order, reading every earlier
pending event for every candidate (app/db/queues.py). The new index serves the per-object
lookups the plain one did.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 04:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("outcome = 'pending'")


def upgrade() -> None:
    op.create_index(
        'ix_inbound_event_object_pending_id',
        'inbound_event',
        ['organization_id', 'provider', 'object_id', sa.text("(CASE WHEN outcome = 'pending' THEN id END)")],
        unique=False,
    )
    op.drop_index('ix_inbound_event_pending_object', table_name='inbound_event')
    op.drop_index('ix_inbound_event_organization_id_provider_object_id', table_name='inbound_event')


def downgrade() -> None:
    op.create_index(
        'ix_inbound_event_organization_id_provider_object_id',
        'inbound_event',
        ['organization_id', 'provider', 'object_id'],
        unique=False,
    )
    op.create_index(
        'ix_inbound_event_pending_object',
        'inbound_event',
        ['organization_id', 'provider', 'object_id', 'id'],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.drop_index('ix_inbound_event_object_pending_id', table_name='inbound_event')
