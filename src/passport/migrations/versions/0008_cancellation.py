"""Cancellation requests and finalisation (issue 8)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cancellation_requests',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('previous_status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('effective_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                            name=op.f('fk_cancellation_requests_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cancellation_requests'))
    )
    with op.batch_alter_table('cancellation_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cancellation_requests_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cancellation_requests_status_effective_at'), ['status', 'effective_at'],
                              unique=False)
        batch_op.create_index('uq_cancellation_requests_pending_account_id', ['account_id'], unique=True,
                              sqlite_where=sa.text("status = 'cooling_off'"),
                              postgresql_where=sa.text("status = 'cooling_off'"))


def downgrade() -> None:
    with op.batch_alter_table('cancellation_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_cancellation_requests_pending_account_id')
        batch_op.drop_index(batch_op.f('ix_cancellation_requests_status_effective_at'))
        batch_op.drop_index(batch_op.f('ix_cancellation_requests_account_id'))
    op.drop_table('cancellation_requests')
