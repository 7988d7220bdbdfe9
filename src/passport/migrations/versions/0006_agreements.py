"""Consent ledger extensions and optional purposes (issue 6)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('basis', sa.String(length=16), server_default='explicit', nullable=False))

    op.create_table('purpose_consents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_purpose_consents_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purpose_consents'))
    )
    with op.batch_alter_table('purpose_consents', schema=None) as batch_op:
        batch_op.create_index('ix_purpose_consents_account_id_purpose_id', ['account_id', 'purpose', 'id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('purpose_consents', schema=None) as batch_op:
        batch_op.drop_index('ix_purpose_consents_account_id_purpose_id')
    op.drop_table('purpose_consents')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_column('basis')
