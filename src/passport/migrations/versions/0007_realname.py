"""Real-name attempts, organisations, administrators, licence files (issue 7)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('realname_documents',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_realname_documents_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_realname_documents')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_realname_documents_stored_name'))
    )
    with op.batch_alter_table('realname_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_realname_documents_account_id'), ['account_id'], unique=False)

    op.create_table('realname_attempts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('name_enc', sa.LargeBinary(), nullable=False),
    sa.Column('id_number_enc', sa.LargeBinary(), nullable=False),
    sa.Column('id_number_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('document_id', sa.String(length=32), nullable=True),
    sa.Column('review_id', sa.String(length=32), nullable=True),
    sa.Column('provider_ref', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_realname_attempts_account_id_accounts')),
    sa.ForeignKeyConstraint(['document_id'], ['realname_documents.id'],
                            name=op.f('fk_realname_attempts_document_id_realname_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_realname_attempts'))
    )
    with op.batch_alter_table('realname_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_realname_attempts_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_realname_attempts_id_number_bidx'), ['id_number_bidx'], unique=False)

    op.create_table('organizations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('uscc_live', sa.String(length=18), nullable=True),
    sa.Column('legal_representative_enc', sa.LargeBinary(), nullable=True),
    sa.Column('contact_phone_enc', sa.LargeBinary(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('strict_review', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('license_id', sa.String(length=32), nullable=True),
    sa.Column('review_id', sa.String(length=32), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['license_id'], ['realname_documents.id'],
                            name=op.f('fk_organizations_license_id_realname_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations')),
    sa.UniqueConstraint('uscc_live', name=op.f('uq_organizations_uscc_live'))
    )
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organizations_created_by'), ['created_by'], unique=False)
        batch_op.create_index(batch_op.f('ix_organizations_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_organizations_uscc'), ['uscc'], unique=False)

    op.create_table('organization_admins',
    sa.Column('organization_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('added_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_organization_admins_account_id_accounts')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                            name=op.f('fk_organization_admins_organization_id_organizations')),
    sa.PrimaryKeyConstraint('organization_id', 'account_id', name=op.f('pk_organization_admins'))
    )
    with op.batch_alter_table('organization_admins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organization_admins_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('organization_admins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organization_admins_account_id'))
    op.drop_table('organization_admins')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organizations_uscc'))
        batch_op.drop_index(batch_op.f('ix_organizations_status'))
        batch_op.drop_index(batch_op.f('ix_organizations_created_by'))
    op.drop_table('organizations')
    with op.batch_alter_table('realname_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_realname_attempts_id_number_bidx'))
        batch_op.drop_index(batch_op.f('ix_realname_attempts_account_id'))
    op.drop_table('realname_attempts')
    with op.batch_alter_table('realname_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_realname_documents_account_id'))
    op.drop_table('realname_documents')
