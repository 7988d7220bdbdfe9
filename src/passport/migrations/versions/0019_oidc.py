"""oidc: single sign-on apps, codes, tokens, grants, the app consent ledger, signing keys and
back-channel logouts (issue 19)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 08:01:13.748645
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passport.db

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oidc_apps',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('secret_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('redirect_uris', sa.JSON(), nullable=False),
    sa.Column('post_logout_redirect_uris', sa.JSON(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('grant_types', sa.JSON(), nullable=False),
    sa.Column('first_party', sa.Boolean(), nullable=False),
    sa.Column('allowed_claims', sa.JSON(), nullable=False),
    sa.Column('resource_server', sa.Boolean(), nullable=False),
    sa.Column('backchannel_logout_uri', sa.Text(), nullable=True),
    sa.Column('id_token_alg', sa.String(length=8), nullable=False),
    sa.Column('sector', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_apps')),
    sa.UniqueConstraint('client_id', name=op.f('uq_oidc_apps_client_id'))
    )
    op.create_table('oidc_signing_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('alg', sa.String(length=8), nullable=False),
    sa.Column('private_enc', sa.LargeBinary(), nullable=False),
    sa.Column('public_jwk', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('publish_until', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_signing_keys')),
    sa.UniqueConstraint('kid', name=op.f('uq_oidc_signing_keys_kid'))
    )
    op.create_table('oidc_codes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('code_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=True),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('nonce', sa.String(length=255), nullable=True),
    sa.Column('code_challenge', sa.String(length=128), nullable=True),
    sa.Column('code_challenge_method', sa.String(length=8), nullable=True),
    sa.Column('auth_time', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('amr', sa.String(length=64), nullable=True),
    sa.Column('acr', sa.String(length=64), nullable=True),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_oidc_codes_account_id_accounts')),
    sa.ForeignKeyConstraint(['app_id'], ['oidc_apps.id'], name=op.f('fk_oidc_codes_app_id_oidc_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_oidc_codes_code_hash'))
    )
    with op.batch_alter_table('oidc_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_codes_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_codes_app_id'), ['app_id'], unique=False)

    op.create_table('oidc_consents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=32), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_oidc_consents_account_id_accounts')),
    sa.ForeignKeyConstraint(['app_id'], ['oidc_apps.id'], name=op.f('fk_oidc_consents_app_id_oidc_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_consents'))
    )
    with op.batch_alter_table('oidc_consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_consents_account_id'), ['account_id'], unique=False)

    op.create_table('oidc_grants',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=32), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('granted_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_issued_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_oidc_grants_account_id_accounts')),
    sa.ForeignKeyConstraint(['app_id'], ['oidc_apps.id'], name=op.f('fk_oidc_grants_app_id_oidc_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_grants')),
    sa.UniqueConstraint('account_id', 'app_id', name=op.f('uq_oidc_grants_account_id_app_id'))
    )
    with op.batch_alter_table('oidc_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_grants_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_grants_app_id'), ['app_id'], unique=False)

    op.create_table('oidc_logouts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('sub', sa.String(length=64), nullable=False),
    sa.Column('sid', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sent_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['oidc_apps.id'], name=op.f('fk_oidc_logouts_app_id_oidc_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_logouts'))
    )
    with op.batch_alter_table('oidc_logouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oidc_logouts_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_logouts_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_logouts_next_at'), ['next_at'], unique=False)

    op.create_table('oidc_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('app_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=True),
    sa.Column('session_id', sa.String(length=32), nullable=True),
    sa.Column('sid', sa.String(length=32), nullable=True),
    sa.Column('family_id', sa.String(length=32), nullable=False),
    sa.Column('code_id', sa.String(length=32), nullable=True),
    sa.Column('access_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('refresh_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('issued_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', passport.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('refresh_expires_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('refresh_used_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('auth_time', passport.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('amr', sa.String(length=64), nullable=True),
    sa.Column('acr', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_oidc_tokens_account_id_accounts')),
    sa.ForeignKeyConstraint(['app_id'], ['oidc_apps.id'], name=op.f('fk_oidc_tokens_app_id_oidc_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_tokens')),
    sa.UniqueConstraint('access_hash', name=op.f('uq_oidc_tokens_access_hash')),
    sa.UniqueConstraint('refresh_hash', name=op.f('uq_oidc_tokens_refresh_hash'))
    )
    with op.batch_alter_table('oidc_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_oidc_tokens_account_id_app_id', ['account_id', 'app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_tokens_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_tokens_code_id'), ['code_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_tokens_family_id'), ['family_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_oidc_tokens_session_id'), ['session_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('oidc_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_tokens_session_id'))
        batch_op.drop_index(batch_op.f('ix_oidc_tokens_family_id'))
        batch_op.drop_index(batch_op.f('ix_oidc_tokens_code_id'))
        batch_op.drop_index(batch_op.f('ix_oidc_tokens_app_id'))
        batch_op.drop_index('ix_oidc_tokens_account_id_app_id')

    op.drop_table('oidc_tokens')
    with op.batch_alter_table('oidc_logouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_logouts_next_at'))
        batch_op.drop_index(batch_op.f('ix_oidc_logouts_app_id'))
        batch_op.drop_index(batch_op.f('ix_oidc_logouts_account_id'))

    op.drop_table('oidc_logouts')
    with op.batch_alter_table('oidc_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_grants_app_id'))
        batch_op.drop_index(batch_op.f('ix_oidc_grants_account_id'))

    op.drop_table('oidc_grants')
    with op.batch_alter_table('oidc_consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_consents_account_id'))

    op.drop_table('oidc_consents')
    with op.batch_alter_table('oidc_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oidc_codes_app_id'))
        batch_op.drop_index(batch_op.f('ix_oidc_codes_account_id'))

    op.drop_table('oidc_codes')
    op.drop_table('oidc_signing_keys')
    op.drop_table('oidc_apps')
