"""reviews: who opened the item's document during the current claim, and when (issue 15)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reviews') as batch_op:
        batch_op.add_column(sa.Column('opened_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('opened_at', passport.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reviews') as batch_op:
        batch_op.drop_column('opened_at')
        batch_op.drop_column('opened_by')
