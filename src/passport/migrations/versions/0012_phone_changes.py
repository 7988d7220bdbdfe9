"""phone_changes: a phone change proved by the recovery key waits out a hold (issue 15)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('phone_changes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('new_phone_enc', sa.LargeBinary(), nullable=True),
    sa.Column('requested_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('effective_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_phone_changes_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_changes'))
    )
    with op.batch_alter_table('phone_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phone_changes_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_phone_changes_status_effective_at'), ['status', 'effective_at'],
                              unique=False)
        batch_op.create_index('uq_phone_changes_held_account_id', ['account_id'], unique=True,
                              sqlite_where=sa.text("status = 'held'"), postgresql_where=sa.text("status = 'held'"))


def downgrade() -> None:
    with op.batch_alter_table('phone_changes', schema=None) as batch_op:
        batch_op.drop_index('uq_phone_changes_held_account_id')
        batch_op.drop_index(batch_op.f('ix_phone_changes_status_effective_at'))
        batch_op.drop_index(batch_op.f('ix_phone_changes_account_id'))
    op.drop_table('phone_changes')
