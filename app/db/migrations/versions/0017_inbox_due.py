"""CRM inbox events claimed by when they are due, then in arrival order: the pending events' index
is on (next_attempt_at, id) instead of id alone. In id order, every claim stepped over all the
events waiting for a retry (a CRM's API unavailable for an hour leaves every event of that hour
waiting), one by one.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 05:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("outcome = 'pending'")


def upgrade() -> None:
    op.create_index(
        'ix_inbound_event_due', 'inbound_event', ['next_attempt_at', 'id'], postgresql_where=PENDING, sqlite_where=PENDING
    )
    op.drop_index('ix_inbound_event_pending', table_name='inbound_event')


def downgrade() -> None:
    op.create_index(
        'ix_inbound_event_pending', 'inbound_event', ['id'], postgresql_where=PENDING, sqlite_where=PENDING
    )
    op.drop_index('ix_inbound_event_due', table_name='inbound_event')
