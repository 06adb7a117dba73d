"""measured latency per candidate: a search under a latency budget decided on measurement records each scored
sub-network's end-to-end latency in the budget's backend, so the Pareto view can plot it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 18:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('candidates') as batch:
        batch.add_column(sa.Column('measured_ms', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('candidates') as batch:
        batch.drop_column('measured_ms')
