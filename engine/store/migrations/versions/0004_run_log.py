"""run log: every line of a run's log, kept in the store

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:40:00

The monitor kept the log only in the window that watched the run: after a restart, or for a run started
from the command line, the lines were gone. The pipeline now records each line as its event passes.
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'log_lines',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('run_id', sa.Integer(), sa.ForeignKey('runs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('level', sa.String(16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
    )
    op.create_index('ix_log_lines_run_id', 'log_lines', ['run_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_log_lines_run_id', 'log_lines')
    op.drop_table('log_lines')
