"""Webhook deliveries per deal by their pending seq, an expression, instead of (status, event_seq):
the claim asks whether an earlier delivery of each candidate's deal is pending, and with status a
column of that index the planner, believing almost nothing pending (the outbox's statistics are
nearly always stale), answered from an index led by status instead, reading every pending
delivery for every candidate (app/db/queues.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_webhook_delivery_endpoint_id_deal_id_pending_seq',
        'webhook_delivery',
        ['endpoint_id', 'deal_id', sa.text("(CASE WHEN status = 'pending' THEN event_seq END)")],
        unique=False,
    )
    op.drop_index('ix_webhook_delivery_endpoint_id_deal_id_status_event_seq', table_name='webhook_delivery')


def downgrade() -> None:
    op.create_index(
        'ix_webhook_delivery_endpoint_id_deal_id_status_event_seq',
        'webhook_delivery',
        ['endpoint_id', 'deal_id', 'status', 'event_seq'],
        unique=False,
    )
    op.drop_index('ix_webhook_delivery_endpoint_id_deal_id_pending_seq', table_name='webhook_delivery')
