"""QR-code login requests, passkeys (of accounts and of staff) and their challenges (issue 21)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'qr_logins',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('browser_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('ip', sa.String(length=45), nullable=True),
        sa.Column('user_agent', sa.String(length=512), nullable=True),
        sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', passport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=True),
        sa.Column('decided_at', passport.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('session_id', sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_qr_logins_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_qr_logins')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_qr_logins_code_hash')),
    )
    op.create_index(op.f('ix_qr_logins_expires_at'), 'qr_logins', ['expires_at'], unique=False)
    op.create_index(op.f('ix_qr_logins_account_id'), 'qr_logins', ['account_id'], unique=False)
    op.create_table(
        'passkeys',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=True),
        sa.Column('staff_id', sa.String(length=32), nullable=True),
        sa.Column('credential_id', sa.LargeBinary(length=1023), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('sign_count', sa.Integer(), nullable=False),
        sa.Column('transports', sa.String(length=128), nullable=True),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', passport.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_passkeys_account_id_accounts')),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_passkeys_staff_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_passkeys')),
        sa.UniqueConstraint('credential_id', name=op.f('uq_passkeys_credential_id')),
    )
    op.create_index(op.f('ix_passkeys_account_id'), 'passkeys', ['account_id'], unique=False)
    op.create_index(op.f('ix_passkeys_staff_id'), 'passkeys', ['staff_id'], unique=False)
    op.create_table(
        'passkey_challenges',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('challenge_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=True),
        sa.Column('staff_id', sa.String(length=32), nullable=True),
        sa.Column('expires_at', passport.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_passkey_challenges_account_id_accounts')),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_passkey_challenges_staff_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_passkey_challenges')),
        sa.UniqueConstraint('challenge_hash', name=op.f('uq_passkey_challenges_challenge_hash')),
    )
    op.create_index(op.f('ix_passkey_challenges_expires_at'), 'passkey_challenges', ['expires_at'], unique=False)
    op.create_index(op.f('ix_passkey_challenges_account_id'), 'passkey_challenges', ['account_id'], unique=False)
    op.create_index(op.f('ix_passkey_challenges_staff_id'), 'passkey_challenges', ['staff_id'], unique=False)


def downgrade() -> None:
    op.drop_table('passkey_challenges')
    op.drop_table('passkeys')
    op.drop_table('qr_logins')
