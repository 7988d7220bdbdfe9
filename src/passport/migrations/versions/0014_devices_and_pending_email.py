"""known devices (new-device login notices) and the candidate address on its bind_email code
(an unproved email address is no longer kept on the account) (issue 15)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'known_devices',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('device_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('first_seen_at', passport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', passport.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_known_devices_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_known_devices')),
        sa.UniqueConstraint('account_id', 'device_hash', name=op.f('uq_known_devices_account_id_device_hash')),
    )
    with op.batch_alter_table('known_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_known_devices_account_id'), ['account_id'], unique=False)
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('target_enc', sa.LargeBinary(), nullable=True))
    # A pending address was an unproved claim on the account: it goes (the owner asks for a new code).
    op.execute("UPDATE accounts SET email_pending_enc = NULL, email_pending_bidx = NULL")


def downgrade() -> None:
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_column('target_enc')
    with op.batch_alter_table('known_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_known_devices_account_id'))
    op.drop_table('known_devices')
