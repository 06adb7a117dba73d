"""run processes: how many processes (torchrun ranks) a run uses and on which machines

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 19:00:00

A run on a cluster reports to a shared store; the runs list shows its number of processes and hosts.
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('processes', sa.Integer(), nullable=False, server_default='1'))
        batch.add_column(sa.Column('hosts', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('hosts')
        batch.drop_column('processes')
