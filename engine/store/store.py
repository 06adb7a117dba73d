"""Opening the store (SQLite in the workspace by default, any SQLAlchemy URL otherwise) and the
operations the engine and the workbench use on it. One writer per run; readers poll."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConfigError
from engine.store.models import Artifact, Candidate, MetricPoint, Run, Stage, Status, utcnow

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class RunSummary:
    """What a runs list shows of one run."""

    id: int
    name: str
    family: str
    dataset: str
    status: str
    stage: str | None
    step: int
    total_steps: int | None
    best_macs: int | None
    best_metric: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    error: str | None


def _alembic_config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the workbench read while a run writes; the busy timeout makes writers wait, not fail.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"store URL {url!r} is not a SQLAlchemy URL (e.g. sqlite:///path/store.sqlite): {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    # --- schema -------------------------------------------------------------------------------
    def upgrade(self) -> None:
        with self.engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")

    def schema_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    # --- runs ---------------------------------------------------------------------------------
    def create_run(self, *, name: str, family: str, dataset: str, config: dict[str, Any],
                   stages: list[str]) -> int:
        with self.session() as session:
            run = Run(name=name, family=family, dataset=dataset, config=config)
            run.stages = [Stage(name=stage, position=i) for i, stage in enumerate(stages)]
            session.add(run)
            session.flush()
            return run.id

    def get_run(self, run_id: int) -> Run:
        with self.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise ConfigError(f"there is no run {run_id} in the store")
            # Load what callers read after the session closes.
            _ = run.stages, run.artifacts
            return run

    def mark_run(self, run_id: int, status: Status, *, error: str | None = None) -> None:
        with self.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise ConfigError(f"there is no run {run_id} in the store")
            run.status = status
            if status is Status.running:
                run.started_at = run.started_at or utcnow()
                run.pid, run.host = os.getpid(), socket.gethostname()
                run.heartbeat_at = utcnow()
                run.error = None
            elif status in (Status.finished, Status.failed, Status.cancelled):
                run.finished_at = utcnow()
                run.error = error

    def heartbeat(self, run_id: int) -> None:
        with self.session() as session:
            run = session.get(Run, run_id)
            if run is not None:
                run.heartbeat_at = utcnow()

    def list_runs(self) -> list[RunSummary]:
        with self.session() as session:
            runs = session.scalars(select(Run).order_by(Run.created_at.desc(), Run.id.desc())).all()
            counts = dict(session.execute(
                select(Candidate.run_id, func.count()).group_by(Candidate.run_id)).all())
            summaries = []
            for run in runs:
                current = next((s for s in run.stages if s.status is Status.running), None)
                if current is None:
                    done = [s for s in run.stages if s.status is not Status.pending]
                    current = done[-1] if done else (run.stages[0] if run.stages else None)
                best = self._best_candidate(session, run.id) if counts.get(run.id) else None
                summaries.append(RunSummary(
                    id=run.id, name=run.name, family=run.family, dataset=run.dataset,
                    status=run.status.value, stage=current.name if current else None,
                    step=current.step if current else 0,
                    total_steps=current.total_steps if current else None,
                    best_macs=best[0] if best else None, best_metric=best[1] if best else None,
                    created_at=run.created_at, started_at=run.started_at, error=run.error))
            return summaries

    @staticmethod
    def _best_candidate(session: Session, run_id: int) -> tuple[int, dict[str, Any]] | None:
        """(MACs, metrics) of the candidate with the best value of the run's primary metric (FID-like:
        lowest; PSNR: highest)."""
        from engine.metrics import HIGHER_IS_BETTER

        rows = [(int(macs), metrics) for macs, metrics in
                session.execute(select(Candidate.macs, Candidate.metrics).where(Candidate.run_id == run_id)).all()]
        names = {name for _, metrics in rows for name in metrics}
        metric = next((m for m in ("fid", "rfid", "psnr") if m in names), None)
        if metric is None:
            return min(rows, key=lambda row: row[0], default=None)
        sign = -1.0 if HIGHER_IS_BETTER.get(metric, False) else 1.0
        return min((row for row in rows if metric in row[1]), key=lambda row: (sign * row[1][metric], row[0]))

    def running_run_ids(self) -> list[int]:
        with self.session() as session:
            return list(session.scalars(select(Run.id).where(Run.status == Status.running)))

    # --- stages -------------------------------------------------------------------------------
    def _stage(self, session: Session, run_id: int, name: str) -> Stage:
        stage = session.scalars(select(Stage).where(Stage.run_id == run_id, Stage.name == name)).first()
        if stage is None:
            raise ConfigError(f"run {run_id} has no stage {name!r}")
        return stage

    def update_stage(self, run_id: int, name: str, *, status: Status | None = None,
                     step: int | None = None, total_steps: int | None = None,
                     checkpoint_path: str | None = None, error: str | None = None) -> None:
        with self.session() as session:
            stage = self._stage(session, run_id, name)
            if status is not None:
                stage.status = status
                if status is Status.running:
                    stage.started_at = stage.started_at or utcnow()
                    stage.error = None
                elif status in (Status.finished, Status.failed, Status.cancelled):
                    stage.finished_at = utcnow()
            if step is not None:
                stage.step = step
            if total_steps is not None:
                stage.total_steps = total_steps
            if checkpoint_path is not None:
                stage.checkpoint_path = checkpoint_path
            if error is not None:
                stage.error = error

    def stage_status(self, run_id: int, name: str) -> Status:
        with self.session() as session:
            return self._stage(session, run_id, name).status

    # --- series, candidates, artifacts --------------------------------------------------------
    def record_metrics(self, run_id: int, stage: str, step: int, values: dict[str, float]) -> None:
        with self.session() as session:
            session.add_all(MetricPoint(run_id=run_id, stage=stage, name=name, step=step, value=float(value))
                            for name, value in values.items())

    def metric_series(self, run_id: int, stage: str, name: str, max_points: int | None = None) -> list[tuple[int, float]]:
        """The series in step order; with ``max_points``, every k-th point (and the last) of a longer one, so a
        plot of a long run stays cheap to read."""
        where = (MetricPoint.run_id == run_id, MetricPoint.stage == stage, MetricPoint.name == name)
        with self.session() as session:
            query = select(MetricPoint.step, MetricPoint.value).where(*where).order_by(MetricPoint.step)
            if max_points:
                count = session.scalar(select(func.count()).select_from(MetricPoint).where(*where)) or 0
                if count > max_points:
                    stride = -(-count // max_points)
                    numbered = select(MetricPoint.step, MetricPoint.value,
                                      func.row_number().over(order_by=MetricPoint.step).label("n")).where(*where).subquery()
                    query = (select(numbered.c.step, numbered.c.value)
                             .where((numbered.c.n % stride == 0) | (numbered.c.n == count)).order_by(numbered.c.step))
            return [(int(step), float(value)) for step, value in session.execute(query).all()]

    def metric_names(self, run_id: int, stage: str) -> list[str]:
        with self.session() as session:
            return list(session.scalars(select(MetricPoint.name).where(MetricPoint.run_id == run_id,
                                                                        MetricPoint.stage == stage).distinct()))

    def add_candidate(self, run_id: int, *, arch: str, macs: int, params: int,
                      metrics: dict[str, float], latency_ms: float | None = None) -> None:
        """Record a scored sub-network; scoring the same arch again replaces its values."""
        with self.session() as session:
            existing = session.scalars(select(Candidate).where(Candidate.run_id == run_id,
                                                               Candidate.arch == arch)).first()
            if existing is None:
                session.add(Candidate(run_id=run_id, arch=arch, macs=macs, params=params,
                                      metrics=metrics, latency_ms=latency_ms))
            else:
                existing.macs, existing.params, existing.metrics = macs, params, metrics
                existing.latency_ms = latency_ms

    def candidates(self, run_id: int) -> list[Candidate]:
        with self.session() as session:
            return list(session.scalars(select(Candidate).where(Candidate.run_id == run_id)
                                        .order_by(Candidate.id)).all())

    def add_artifact(self, run_id: int, path: Path, kind: str, stage: str | None = None) -> Artifact:
        path = Path(path)
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        with self.session() as session:
            artifact = Artifact(run_id=run_id, stage=stage, kind=kind, path=str(path.resolve()),
                                sha256=digest.hexdigest(), size_bytes=path.stat().st_size)
            session.add(artifact)
            session.flush()
            return artifact


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open (and create or upgrade to the current schema) the store at a SQLAlchemy URL."""
    store = Store(make_engine(url))
    if migrate:
        store.upgrade()
    log.debug("store %s at revision %s", url, store.schema_revision())
    return store
