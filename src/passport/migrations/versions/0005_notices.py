"""Outbox, inbox, announcements, maintenance windows (issue 5)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notice_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('recipient_enc', sa.LargeBinary(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claim', sa.String(length=32), nullable=True),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('provider_message_id', sa.String(length=200), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_outbox'))
    )
    with op.batch_alter_table('notice_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_outbox_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_outbox_status_next_attempt_at'), ['status', 'next_attempt_at'],
                              unique=False)

    op.create_table('inbox_messages',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_messages'))
    )
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_messages_account_id_created_at'), ['account_id', 'created_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_messages_account_id_read_at'), ['account_id', 'read_at'],
                              unique=False)

    op.create_table('announcements',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('audience', sa.String(length=16), nullable=False),
    sa.Column('starts_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('maintenance_id', sa.String(length=32), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_announcements'))
    )
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_announcements_starts_at'), ['starts_at'], unique=False)

    op.create_table('maintenance_windows',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('starts_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('announcement_id', sa.String(length=32), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows'))
    )
    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_windows_ends_at'), ['ends_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('maintenance_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintenance_windows_ends_at'))
    op.drop_table('maintenance_windows')
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_announcements_starts_at'))
    op.drop_table('announcements')
    with op.batch_alter_table('inbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_messages_account_id_read_at'))
        batch_op.drop_index(batch_op.f('ix_inbox_messages_account_id_created_at'))
    op.drop_table('inbox_messages')
    with op.batch_alter_table('notice_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_outbox_status_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_notice_outbox_account_id'))
    op.drop_table('notice_outbox')
