"""account information review, second slice (issue 17): avatars (the shown and the held one per
account), the operators' image blocklist and lexicon entries with their version

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('avatar_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('avatar_pending_id', sa.String(length=32), nullable=True))
    op.create_table(
        'avatars',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('image', sa.LargeBinary(), nullable=True),
        sa.Column('content_type', sa.String(length=32), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('phash', sa.String(length=16), nullable=False),
        sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_at', passport.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_avatars_account_id'), 'avatars', ['account_id'], unique=False)
    op.create_table(
        'moderation_image_blocks',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('phash', sa.String(length=16), nullable=False),
        sa.Column('category', sa.String(length=32), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('added_by', sa.String(length=64), nullable=True),
        sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('phash'),
    )
    op.create_table(
        'moderation_lexicon_entries',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('term', sa.String(length=64), nullable=False),
        sa.Column('category', sa.String(length=32), nullable=False),
        sa.Column('verdict', sa.String(length=8), nullable=False),
        sa.Column('fields', sa.String(length=64), nullable=True),
        sa.Column('context', sa.String(length=32), nullable=True),
        sa.Column('added_by', sa.String(length=64), nullable=True),
        sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    state = op.create_table(
        'moderation_lexicon_state',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(state, [{'id': 1, 'version': 0}])


def downgrade() -> None:
    op.drop_table('moderation_lexicon_state')
    op.drop_table('moderation_lexicon_entries')
    op.drop_table('moderation_image_blocks')
    op.drop_index(op.f('ix_avatars_account_id'), table_name='avatars')
    op.drop_table('avatars')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('avatar_pending_id')
        batch_op.drop_column('avatar_id')
