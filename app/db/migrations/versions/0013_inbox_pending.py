"""The inbox applier's claim reads pending events only: partial indexes on the pending ones (in
arrival order, and per CRM object) replace the index on (outcome, next_attempt_at).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("outcome = 'pending'")


def upgrade() -> None:
    op.drop_index('ix_inbound_event_outcome_next_attempt_at', table_name='inbound_event')
    op.create_index(
        'ix_inbound_event_pending', 'inbound_event', ['id'], postgresql_where=PENDING, sqlite_where=PENDING
    )
    op.create_index(
        'ix_inbound_event_pending_object',
        'inbound_event',
        ['organization_id', 'provider', 'object_id', 'id'],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index('ix_inbound_event_pending_object', table_name='inbound_event')
    op.drop_index('ix_inbound_event_pending', table_name='inbound_event')
    op.create_index(
        'ix_inbound_event_outcome_next_attempt_at', 'inbound_event', ['outcome', 'next_attempt_at'], unique=False
    )
