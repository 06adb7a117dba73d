"""aggregates for scale: candidate counts, best candidate and scores kept on write; metric rollups

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:50:00

Listing runs read every candidate of every run to find the best one, and plotting a long training read
every point of its series. Both now read what is kept up to date as data is written; this migration
adds those columns and tables and fills them from the data already in the store.
"""

import json

import sqlalchemy as sa
from alembic import op

from engine.metric_names import primary_metric, score

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

#: Widths (in steps) of the rollups kept for every series; the store's plot queries pick among them.
ROLLUP_WIDTHS = (16, 256, 4096)


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('candidate_count', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('primary_metric', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('best_candidate_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('metric_names', sa.JSON(), nullable=True))
    with op.batch_alter_table('candidates') as batch:
        batch.add_column(sa.Column('score', sa.Float(), nullable=True))
        batch.create_index('ix_candidates_run_score', ['run_id', 'score', 'macs'], unique=False)
    op.create_table('metric_rollups',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=50), nullable=False),
    sa.Column('width', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('bucket', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('low', sa.Float(), nullable=False),
    sa.Column('high', sa.Float(), nullable=False),
    sa.Column('first_step', sa.Integer(), nullable=False),
    sa.Column('last_step', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'stage', 'width', 'name', 'bucket')
    )
    _fill_from_existing_data()


def _fill_from_existing_data() -> None:
    bind = op.get_bind()
    for width in ROLLUP_WIDTHS:
        bind.execute(sa.text(
            "INSERT INTO metric_rollups (run_id, stage, name, width, bucket, count, total, low, high, first_step, "
            "last_step) SELECT run_id, stage, name, :width, step / :width, COUNT(*), SUM(value), MIN(value), "
            "MAX(value), MIN(step), MAX(step) FROM metric_points GROUP BY run_id, stage, name, step / :width"),
            {"width": width})
    run_ids = [row[0] for row in bind.execute(sa.text("SELECT DISTINCT run_id FROM candidates"))]
    for run_id in run_ids:
        rows = [(cid, json.loads(m) if isinstance(m, str) else m, macs) for cid, m, macs in bind.execute(
            sa.text("SELECT id, metrics, macs FROM candidates WHERE run_id = :run"), {"run": run_id})]
        metric = primary_metric(name for _, metrics, _ in rows for name in metrics)
        scored = [(cid, score(metric, metrics), macs) for cid, metrics, macs in rows]
        for cid, value, _ in scored:
            if value is not None:
                bind.execute(sa.text("UPDATE candidates SET score = :score WHERE id = :id"),
                             {"score": value, "id": cid})
        ranked = [row for row in scored if row[1] is not None] or scored
        best = min(ranked, key=lambda row: (row[1] if row[1] is not None else 0.0, row[2]))[0]
        names = sorted({name for _, metrics, _ in rows for name in metrics})
        bind.execute(sa.text("UPDATE runs SET candidate_count = :count, primary_metric = :metric, "
                             "best_candidate_id = :best, metric_names = :names WHERE id = :run"),
                     {"count": len(rows), "metric": metric, "best": best, "names": json.dumps(names), "run": run_id})


def downgrade() -> None:
    op.drop_table('metric_rollups')
    with op.batch_alter_table('candidates') as batch:
        batch.drop_index('ix_candidates_run_score')
        batch.drop_column('score')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('metric_names')
        batch.drop_column('best_candidate_id')
        batch.drop_column('primary_metric')
        batch.drop_column('candidate_count')
