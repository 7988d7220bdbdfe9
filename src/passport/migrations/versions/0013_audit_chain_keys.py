"""audit chain keys: each record's key id and HMAC, and the head's link for the next record

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 09:00:00

Existing records keep no MAC (the migration has no key): they stay the legacy, hash-only beginning
of the chain, and the first record written afterwards links its MAC to the newest one's hash.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))
    with op.batch_alter_table('audit_chain_head') as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))
    # The next record links to the newest one's hash (or to genesis): no MAC exists yet.
    op.execute(sa.text("UPDATE audit_chain_head SET mac = hash"))


def downgrade() -> None:
    with op.batch_alter_table('audit_chain_head') as batch_op:
        batch_op.drop_column('mac')
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.drop_column('mac')
        batch_op.drop_column('key_id')
