"""Salesforce: the Opportunity field whose value is the lost reason (Salesforce has no standard
one); null means `Loss_Reason__c`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('integration', sa.Column('loss_reason_field', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('integration') as batch:
        batch.drop_column('loss_reason_field')
