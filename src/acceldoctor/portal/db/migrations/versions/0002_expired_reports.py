"""Remember the run ids retention deleted (expired_reports), so that a report uploaded again after it expired is
not stored and counted a second time.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('expired_reports',
    sa.Column('run_id', sa.String(length=200), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('run_id')
    )


def downgrade() -> None:
    op.drop_table('expired_reports')
