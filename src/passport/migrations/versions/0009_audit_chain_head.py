"""audit chain head: the newest record's seq and hash, locked by appends

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    # An existing chain continues from its newest record; an empty one from genesis.
    op.execute(sa.text(
        "INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, "
        "COALESCE((SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1), 0), "
        "COALESCE((SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1), :genesis))"
    ).bindparams(genesis=GENESIS))


def downgrade() -> None:
    op.drop_table('audit_chain_head')
