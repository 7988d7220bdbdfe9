"""account information held for review: the nickname and bio an owner asked for, until a reviewer
decides (issue 17)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nickname_pending', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('bio_pending', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('bio_pending')
        batch_op.drop_column('nickname_pending')
