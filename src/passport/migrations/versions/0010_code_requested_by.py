"""verification code requested_by: the signed-in account that asked for a code, so the
personal-data export lists only its own codes (issue 15)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_by', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_verification_codes_requested_by'), ['requested_by'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_verification_codes_requested_by'))
        batch_op.drop_column('requested_by')
