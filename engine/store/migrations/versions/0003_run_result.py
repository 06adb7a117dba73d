"""run result: the finished run's student vs teacher on the test split, kept with the run

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 14:00:00

The runs list showed only the search's best score (on the search split) while the summary and the model
card report the test split: the list now shows the same test-split numbers, read from the run's row.
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('result', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('result')
