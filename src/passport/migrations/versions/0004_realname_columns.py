"""realname columns

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:29:02.615987
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('real_name_status', sa.String(length=16), server_default='none', nullable=False))
        batch_op.add_column(sa.Column('real_name_enc', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('id_number_enc', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('id_number_bidx', sa.LargeBinary(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_accounts_id_number_bidx'), ['id_number_bidx'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_id_number_bidx'))
        batch_op.drop_column('id_number_bidx')
        batch_op.drop_column('id_number_enc')
        batch_op.drop_column('real_name_enc')
        batch_op.drop_column('real_name_status')

