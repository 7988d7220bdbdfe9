"""Reports, appeals, refusals of re-registration, legal holds; account actions keep what an appeal and a
correction deadline need; organisations can be suspended (issue 18)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 08:58:47.691219
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registration_refusals',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=True),
    sa.Column('action_id', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('expires_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lifted_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration_refusals'))
    )
    with op.batch_alter_table('registration_refusals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registration_refusals_kind_bidx'), ['kind', 'bidx'], unique=False)

    op.create_table('legal_holds',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('staff_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_legal_holds_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_holds'))
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_holds_account_id'), ['account_id'], unique=False)

    op.create_table('reports',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('reporter_id', sa.String(length=32), nullable=False),
    sa.Column('subject_type', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=16), nullable=True),
    sa.Column('category', sa.String(length=24), nullable=False),
    sa.Column('description_enc', sa.LargeBinary(), nullable=False),
    sa.Column('right_holder_enc', sa.LargeBinary(), nullable=True),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('review_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('erased_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['reporter_id'], ['accounts.id'], name=op.f('fk_reports_reporter_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports'))
    )
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reports_reporter_id'), ['reporter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reports_reporter_id_subject_type_subject_id_status'),
                              ['reporter_id', 'subject_type', 'subject_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_reports_review_id'), ['review_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reports_subject_id'), ['subject_id'], unique=False)

    op.create_table('appeals',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('action_id', sa.BigInteger(), nullable=False),
    sa.Column('text_enc', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('review_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('erased_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_appeals_account_id_accounts')),
    sa.ForeignKeyConstraint(['action_id'], ['account_actions.id'], name=op.f('fk_appeals_action_id_account_actions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeals')),
    sa.UniqueConstraint('action_id', name=op.f('uq_appeals_action_id'))
    )
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeals_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeals_review_id'), ['review_id'], unique=False)

    with op.batch_alter_table('account_actions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('from_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('review_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('field', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('field_digest', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('escalate_to', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('settled_at', passport.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reminded_at', passport.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reversed_at', passport.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_account_actions_review_id'), ['review_id'], unique=False)

    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspended_at', passport.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspended_until', passport.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspension_reason', sa.Text(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('suspension_reason')
        batch_op.drop_column('suspended_until')
        batch_op.drop_column('suspended_at')

    with op.batch_alter_table('account_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_actions_review_id'))
        batch_op.drop_column('reversed_at')
        batch_op.drop_column('reminded_at')
        batch_op.drop_column('settled_at')
        batch_op.drop_column('escalate_to')
        batch_op.drop_column('field_digest')
        batch_op.drop_column('field')
        batch_op.drop_column('review_id')
        batch_op.drop_column('from_status')

    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeals_review_id'))
        batch_op.drop_index(batch_op.f('ix_appeals_account_id'))

    op.drop_table('appeals')
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reports_subject_id'))
        batch_op.drop_index(batch_op.f('ix_reports_review_id'))
        batch_op.drop_index(batch_op.f('ix_reports_reporter_id_subject_type_subject_id_status'))
        batch_op.drop_index(batch_op.f('ix_reports_reporter_id'))

    op.drop_table('reports')
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_holds_account_id'))

    op.drop_table('legal_holds')
    with op.batch_alter_table('registration_refusals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_refusals_kind_bidx'))

    op.drop_table('registration_refusals')
