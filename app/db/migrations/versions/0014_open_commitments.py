"""My tasks' open commitments by index: (organisation, member, status, created_at), as every other
kind of task has (0011). With (organisation, member, created_at) alone, a page of a member's open
commitments below a cursor read through all their done and dropped ones after the last open one.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 01:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_commitment_organization_id_member_id_status_created_at',
        'commitment',
        ['organization_id', 'member_id', 'status', 'created_at'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_commitment_organization_id_member_id_status_created_at', table_name='commitment')
