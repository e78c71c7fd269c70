"""Sign-in with the organisation's identity provider: its issuer (one organisation per issuer)
and the audience its tokens are for.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('organization', sa.Column('oidc_issuer', sa.String(length=2048), nullable=True))
    op.add_column('organization', sa.Column('oidc_audience', sa.String(length=500), nullable=True))
    op.create_index(op.f('ix_organization_oidc_issuer'), 'organization', ['oidc_issuer'], unique=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_organization_oidc_issuer'), table_name='organization')
    with op.batch_alter_table('organization') as batch:
        batch.drop_column('oidc_audience')
        batch.drop_column('oidc_issuer')
