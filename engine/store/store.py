"""Opening the store (SQLite in the workspace by default, any SQLAlchemy URL otherwise) and the
operations the engine and the workbench use on it. One writer per run; readers poll."""

from __future__ import annotations

import json
import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import String, case, cast, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConfigError, RunBusyError, UserError
from engine.files import free_bytes
from engine.locks import file_lock
from engine.metric_names import primary_metric, score
from engine.store.models import (Artifact, Candidate, LogLine, MetricPoint, MetricRollup, Run, Stage, Status,
                                 utcnow)
from engine.store.records import (ArtifactDetail, CandidateRecord, CandidateTable, Curve, ListedResult, RunDetail,
                                  RunSummary, StageDetail)

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Rows per statement where a query names many keys (SQLite allows 32766 bound parameters).
KEY_CHUNK = 500


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


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"store URL {url!r} is not a SQLAlchemy URL (e.g. sqlite:///path/store.sqlite): {exc}") from None


def make_engine(url: str) -> Engine:
    parsed = _parse_url(url)
    try:
        return _make_engine(parsed)
    except NoSuchModuleError:
        raise ConfigError(f"store URL {parsed.render_as_string(hide_password=True)!r}: SQLAlchemy knows no database "
                          f"{parsed.get_backend_name()!r}; use sqlite:///PATH/store.sqlite or "
                          "postgresql://USER@HOST/DATABASE") from None
    except OSError as exc:  # the folder of an SQLite store cannot be made (a file in the way, no permission)
        raise UserError(f"cannot create the folder of the store {parsed.database}: {exc.strerror or exc}; "
                        "choose another workspace or store URL") from None
    except ModuleNotFoundError as exc:
        backend = parsed.get_backend_name()
        package = DRIVER_PACKAGES.get(backend, exc.name)
        raise ConfigError(f"the store URL needs the {backend} driver, Python package {exc.name!r}, which is not "
                          f"installed: pip install {package}") from None


def _make_engine(parsed: URL) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        if path is not None and not parsed.database.startswith("file:"):  # an SQLite URI is opened as it is
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _text(column: Any, name: str) -> Any:
    """A JSON column as its stored text (parsed by ``_json_fields``, where a damaged value stays one run's)."""
    return cast(column, String).label(name)


def _json_fields(row: Any, names: tuple[str, ...]) -> tuple[dict[str, Any], str | None]:
    """The JSON fields ``names`` of a row read through ``_text``, parsed; a field that is not valid JSON is None,
    and what is wrong is said (for the runs list: the run is damaged, the others are not)."""
    fields: dict[str, Any] = {}
    problems = []
    for name in names:
        text = getattr(row, name)
        try:
            fields[name] = json.loads(text) if text is not None else None
        except ValueError as exc:
            fields[name] = None
            problems.append(f"its stored {name} is not valid JSON ({exc})")
    return fields, "; ".join(problems) or None


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
            if connection.dialect.name == "postgresql":
                # Serialises migrations of a shared server store across machines, for this transaction.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7321440917)")
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

    def run_detail(self, run_id: int) -> RunDetail:
        """The run, its stages (in order) and its artifacts as plain data."""
        run = self.get_run(run_id)
        stages = [StageDetail(s.name, s.status.value, s.step, s.total_steps, s.started_at, s.finished_at, s.error)
                  for s in sorted(run.stages, key=lambda s: s.position)]
        return RunDetail(run.id, run.name, run.family, run.dataset, run.status.value, run.error,
                         run.config if isinstance(run.config, dict) else {}, run.created_at, stages,
                         [ArtifactDetail(a.kind, a.path, a.stage) for a in run.artifacts])

    def mark_run(self, run_id: int, status: Status, *, error: str | None = None,
                 result: ListedResult | None = None) -> None:
        with self.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise ConfigError(f"there is no run {run_id} in the store")
            run.status = status
            if result is not None:
                run.result = result.as_dict()
            if status is Status.running:
                run.started_at = run.started_at or utcnow()
                for name, value in _held_by_this_process().items():
                    setattr(run, name, value)
            elif status in (Status.finished, Status.failed, Status.cancelled):
                run.finished_at = utcnow()
                run.error = error

    def restore_run(self, run_id: int, status: Status, error: str | None, finished_at: Any) -> None:
        """Put back a run's status as it was before a command claimed it and then could not start (its dataset
        gone, say): a command that does nothing changes nothing."""
        with self.session() as session:
            run = session.get(Run, run_id)
            run.status, run.error, run.finished_at = status, error, finished_at
            run.pid = None

    def claim_run(self, run_id: int) -> None:
        """Mark the run running for this process, atomically: of two processes claiming it at once, one
        gets it and the other a ``RunBusyError`` naming the holder (compare-and-set on the status)."""
        held = _held_by_this_process()
        with self.session() as session:
            claimed = session.execute(
                update(Run).where(Run.id == run_id, Run.status != Status.running)
                .values(status=Status.running, started_at=func.coalesce(Run.started_at, held["heartbeat_at"]), **held)
                .execution_options(synchronize_session=False)).rowcount
            if claimed == 1:
                return
            run = session.get(Run, run_id)
            if run is None:
                raise ConfigError(f"there is no run {run_id} in the store")
            raise RunBusyError(f"run {run_id} is already running (pid {run.pid} on {run.host}); wait for it to "
                               f"finish or cancel it first")

    def heartbeat(self, run_id: int) -> None:
        with self.session() as session:
            run = session.get(Run, run_id)
            if run is not None:
                run.heartbeat_at = utcnow()

    def list_runs(self) -> list[RunSummary]:
        """Every run, newest first, with its current stage and best candidate: three indexed queries,
        whatever the number of candidates (their count and best are kept up to date as they are written)."""
        with self.session() as session:
            runs = session.execute(
                # JSON fields as their stored text, read here one run at a time: one damaged record (a config
                # edited by hand) must not fail the list of every run.
                select(Run.id, Run.name, Run.family, Run.dataset, Run.status, Run.created_at, Run.started_at,
                       Run.error, Run.candidate_count, _text(Run.result, "result"), Run.processes,
                       _text(Run.hosts, "hosts"), Run.host, Run.pid, Run.heartbeat_at, _text(Run.config, "config"),
                       Candidate.arch, Candidate.macs, _text(Candidate.metrics, "metrics"))
                .outerjoin(Candidate, Candidate.id == Run.best_candidate_id)
                .order_by(Run.created_at.desc(), Run.id.desc())).all()
            stages: dict[int, list[Any]] = {}
            for row in session.execute(select(Stage.run_id, Stage.name, Stage.status, Stage.step, Stage.total_steps)
                                       .order_by(Stage.run_id, Stage.position)):
                stages.setdefault(row.run_id, []).append(row)
        summaries = []
        for run in runs:
            own = stages.get(run.id, [])
            current = next((s for s in own if s.status is Status.running), None)
            if current is None:
                done = [s for s in own if s.status is not Status.pending]
                current = done[-1] if done else (own[0] if own else None)
            fields, damaged = _json_fields(run, ("config", "result", "hosts", "metrics"))
            config = fields["config"] if isinstance(fields["config"], dict) else {}
            summaries.append(RunSummary(
                id=run.id, name=run.name, family=run.family, dataset=run.dataset, status=run.status.value,
                stage=current.name if current else None, step=current.step if current else 0,
                total_steps=current.total_steps if current else None,
                best_macs=int(run.macs) if run.macs is not None else None, best_metric=fields["metrics"],
                created_at=run.created_at, started_at=run.started_at, error=run.error,
                candidates=run.candidate_count or 0, best_arch=run.arch,
                result=ListedResult.from_stored(fields["result"]) if fields["result"] else None,
                processes=run.processes or 1, hosts=fields["hosts"], host=run.host, pid=run.pid,
                heartbeat_at=run.heartbeat_at, image_size=config.get("image_size"), damaged=damaged))
        return summaries

    def set_run_processes(self, run_id: int, processes: int, hosts: list[str]) -> None:
        """The processes a run (re)started with and their machines (a resume may use another number)."""
        with self.session() as session:
            session.execute(update(Run).where(Run.id == run_id).values(processes=processes, hosts=list(hosts)))

    def running_run_ids(self) -> list[int]:
        with self.session() as session:
            return list(session.scalars(select(Run.id).where(Run.status == Status.running)))

    def rename_run(self, run_id: int, name: str) -> None:
        name = name.strip()
        if not name or len(name) > 200:
            raise ConfigError("a run's name must be 1 to 200 characters")
        with self.session() as session:
            if session.execute(update(Run).where(Run.id == run_id).values(name=name)).rowcount != 1:
                raise ConfigError(f"there is no run {run_id} in the store")

    def delete_run(self, run_id: int) -> None:
        """Remove the run and everything recorded of it (not its folder: the caller decides about files).
        A running run is refused: its process would go on writing to rows that are gone."""
        with self.session() as session:
            # Only the columns it needs: a damaged record (a field that is not JSON) can still be deleted.
            run = session.execute(select(Run.status, Run.pid, Run.host).where(Run.id == run_id)).first()
            if run is None:
                raise ConfigError(f"there is no run {run_id} in the store")
            if run.status is Status.running:
                raise RunBusyError(f"run {run_id} is running (pid {run.pid} on {run.host}); cancel it before deleting it")
            # Table by table rather than through the ORM's cascade: one statement each, whatever the row count.
            for table in (MetricPoint, MetricRollup, Candidate, Artifact, LogLine, Stage):
                session.execute(delete(table).where(table.run_id == run_id))
            session.execute(delete(Run).where(Run.id == run_id))

    # --- log ----------------------------------------------------------------------------------
    def add_log_line(self, run_id: int, level: str, text: str) -> None:
        with self.session() as session:
            session.add(LogLine(run_id=run_id, level=level, text=text))

    def log_lines(self, run_id: int, after_id: int = 0, limit: int | None = None) -> list[tuple[int, Any, str, str]]:
        """(id, time, level, text) of the run's log lines after ``after_id``, oldest first; with ``limit``,
        the newest ``limit`` of them."""
        with self.session() as session:
            query = select(LogLine.id, LogLine.at, LogLine.level, LogLine.text).where(
                LogLine.run_id == run_id, LogLine.id > after_id)
            if limit is None:
                return [tuple(row) for row in session.execute(query.order_by(LogLine.id))]
            rows = session.execute(query.order_by(LogLine.id.desc()).limit(limit)).all()
            return [tuple(row) for row in reversed(rows)]

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
        """One point per named value at ``step``, and the rollups that plots of long series read."""
        if not values:
            return
        with self.session() as session:
            session.add_all(MetricPoint(run_id=run_id, stage=stage, name=name, step=step, value=float(value))
                            for name, value in values.items())
            self._add_to_rollups(session, [
                {"run_id": run_id, "stage": stage, "name": name, "width": width, "bucket": step // width, "count": 1,
                 "total": float(value), "low": float(value), "high": float(value), "first_step": step,
                 "last_step": step}
                for name, value in values.items() for width in MetricRollup.WIDTHS])

    def _add_to_rollups(self, session: Session, rows: list[dict[str, Any]]) -> None:
        dialect = self.engine.dialect.name
        if dialect in ("sqlite", "postgresql"):
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as upsert
            else:
                from sqlalchemy.dialects.postgresql import insert as upsert
            statement = upsert(MetricRollup)
            new, old = statement.excluded, MetricRollup
            statement = statement.on_conflict_do_update(
                index_elements=["run_id", "stage", "width", "name", "bucket"],
                set_={"count": old.count + new.count, "total": old.total + new.total,
                      "low": case((new.low < old.low, new.low), else_=old.low),
                      "high": case((new.high > old.high, new.high), else_=old.high),
                      "first_step": case((new.first_step < old.first_step, new.first_step), else_=old.first_step),
                      "last_step": case((new.last_step > old.last_step, new.last_step), else_=old.last_step)})
            session.execute(statement, rows)
            return
        for row in rows:  # any other database: read, then write
            key = (row["run_id"], row["stage"], row["width"], row["name"], row["bucket"])
            rollup = session.get(MetricRollup, key)
            if rollup is None:
                session.add(MetricRollup(**row))
            else:
                rollup.count += row["count"]
                rollup.total += row["total"]
                rollup.low, rollup.high = min(rollup.low, row["low"]), max(rollup.high, row["high"])
                rollup.first_step = min(rollup.first_step, row["first_step"])
                rollup.last_step = max(rollup.last_step, row["last_step"])

    def truncate_metrics(self, run_id: int, stage: str, after_step: int) -> None:
        """Forget the stage's points after ``after_step`` (a stage resumed from its checkpoint at that step
        records them again) and rebuild the rollups they were part of from the points that remain."""
        with self.session() as session:
            self._truncate_metrics(session, run_id, stage, after_step)

    @staticmethod
    def _truncate_metrics(session: Session, run_id: int, stage: str, after_step: int) -> None:
        own = (MetricRollup.run_id == run_id, MetricRollup.stage == stage)
        session.execute(delete(MetricPoint).where(MetricPoint.run_id == run_id, MetricPoint.stage == stage,
                                                  MetricPoint.step > after_step))
        for width in MetricRollup.WIDTHS:
            first_bucket = (after_step + 1) // width
            session.execute(delete(MetricRollup).where(*own, MetricRollup.width == width,
                                                       MetricRollup.bucket >= first_bucket))
            bucket = MetricPoint.step // width
            rows = session.execute(
                select(MetricPoint.name, bucket, func.count(), func.sum(MetricPoint.value),
                       func.min(MetricPoint.value), func.max(MetricPoint.value), func.min(MetricPoint.step),
                       func.max(MetricPoint.step))
                .where(MetricPoint.run_id == run_id, MetricPoint.stage == stage,
                       MetricPoint.step >= first_bucket * width)
                .group_by(MetricPoint.name, bucket)).all()
            if rows:
                session.execute(insert(MetricRollup), [
                    {"run_id": run_id, "stage": stage, "width": width, "name": name, "bucket": int(b),
                     "count": count, "total": total, "low": low, "high": high, "first_step": first,
                     "last_step": last} for name, b, count, total, low, high, first, last in rows])

    def reset_stage(self, run_id: int, stage: str, reason: str, *, forget_candidates: bool = False) -> None:
        """Mark a stage not finished, to be redone from its start: its series and artifact records are
        dropped (the redone stage writes them again); with ``forget_candidates`` the run's scored
        candidates too (a search over a supernet that has changed must not reuse them)."""
        with self.session() as session:
            record = self._stage(session, run_id, stage)
            record.status, record.step, record.error = Status.pending, 0, reason
            record.started_at = record.finished_at = None
            record.checkpoint_path = None
            self._truncate_metrics(session, run_id, stage, after_step=-1)  # every point and rollup
            session.execute(delete(Artifact).where(Artifact.run_id == run_id, Artifact.stage == stage))
            if forget_candidates:
                session.execute(delete(Candidate).where(Candidate.run_id == run_id))
                run = session.get(Run, run_id)
                run.candidate_count, run.best_candidate_id = 0, None

    def forget_candidates(self, run_id: int) -> int:
        """Drop the run's scored candidates (scores taken on images that are no longer the run's); returns how
        many there were."""
        with self.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise ConfigError(f"there is no run {run_id} in the store")
            count = run.candidate_count
            session.execute(delete(Candidate).where(Candidate.run_id == run_id))
            run.candidate_count, run.best_candidate_id = 0, None
            return count

    def stage_artifacts(self, run_id: int, stage: str) -> list[Artifact]:
        with self.session() as session:
            return list(session.scalars(select(Artifact).where(Artifact.run_id == run_id, Artifact.stage == stage)
                                        .order_by(Artifact.id)).all())

    def metric_series(self, run_id: int, stage: str, name: str) -> list[tuple[int, float]]:
        """Every recorded point of one series, in step order (plots read ``curves``)."""
        with self.session() as session:
            query = (select(MetricPoint.step, MetricPoint.value)
                     .where(MetricPoint.run_id == run_id, MetricPoint.stage == stage, MetricPoint.name == name)
                     .order_by(MetricPoint.step, MetricPoint.id))
            return [(int(step), float(value)) for step, value in session.execute(query).all()]

    def metric_names(self, run_id: int, stage: str) -> list[str]:
        with self.engine.connect() as connection:
            return _series_names(connection, run_id, stage)

    def curves(self, run_id: int, stage: str, *, max_points: int = 2000, start: int | None = None,
               stop: int | None = None) -> dict[str, Curve]:
        """The stage's series between steps ``start`` and ``stop`` (default: all), each at most about
        ``max_points`` rows: the recorded points when the range is that short, else the finest rollup that
        fits. The rows read are bounded by ``max_points`` whatever the length of the training."""
        coarsest = MetricRollup.WIDTHS[-1]
        own = (MetricRollup.run_id == run_id, MetricRollup.stage == stage)
        with self.engine.connect() as session:  # Core: no ORM processing per row
            if start is None or stop is None:
                low, high = session.execute(select(func.min(MetricRollup.first_step), func.max(MetricRollup.last_step))
                                            .where(*own, MetricRollup.width == coarsest)).one()
                if low is None:
                    return {}
                start = low if start is None else start
                stop = high if stop is None else stop
            span = max(1, stop - start + 1)
            width = 1 if span <= max_points else next(
                (w for w in MetricRollup.WIDTHS if span / w <= max_points), coarsest)
            names = _series_names(session, run_id, stage)
            rows: dict[str, list[Any]] = {}
            # One range query per series: each reads only its own rows through the primary-key index.
            for name in names:
                if width == 1:
                    rows[name] = [(step, value, value, value) for step, value in session.execute(
                        select(MetricPoint.step, MetricPoint.value)
                        .where(MetricPoint.run_id == run_id, MetricPoint.stage == stage, MetricPoint.name == name,
                               MetricPoint.step >= start, MetricPoint.step <= stop)
                        .order_by(MetricPoint.step, MetricPoint.id))]
                else:
                    rows[name] = [((first + last) / 2, mean, low, high)
                                  for first, last, mean, low, high in session.execute(
                        select(MetricRollup.first_step, MetricRollup.last_step, MetricRollup.total / MetricRollup.count,
                               MetricRollup.low, MetricRollup.high)
                        .where(*own, MetricRollup.name == name, MetricRollup.width == width,
                               MetricRollup.bucket >= start // width, MetricRollup.bucket <= stop // width)
                        .order_by(MetricRollup.bucket))]
        curves = {}
        for name, values in rows.items():
            if not values:
                continue
            array = np.array(values, dtype=float)
            curves[name] = Curve(array[:, 0], array[:, 1], array[:, 2], array[:, 3], width)
        return curves

    def add_candidate(self, run_id: int, *, arch: str, macs: int, params: int, metrics: dict[str, float],
                      latency_ms: float | None = None, metric: str | None = None,
                      measured_ms: float | None = None) -> None:
        """Record a scored sub-network; scoring the same arch again replaces its values."""
        self.add_candidates(run_id, [CandidateRecord(arch, macs, params, metrics, latency_ms, measured_ms)],
                            metric=metric)

    def add_candidates(self, run_id: int, records: Sequence[CandidateRecord], metric: str | None = None) -> None:
        """Record scored sub-networks in one transaction (an arch scored again replaces its values), and keep
        the run's candidate count and best candidate up to date. ``metric`` names what ranks them (the
        search's metric); the run keeps the first one it was given, else the first of fid, rfid, psnr."""
        latest = {record.arch: record for record in records}  # the last score of an arch in the batch wins
        if not latest:
            return
        with self.session() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise ConfigError(f"there is no run {run_id} in the store")
            if run.primary_metric is None:
                run.primary_metric = metric or primary_metric(n for r in latest.values() for n in r.metrics)
            ranked_by = run.primary_metric
            names = {name for r in latest.values() for name in r.metrics}
            if not names <= set(run.metric_names or ()):
                run.metric_names = sorted(names | set(run.metric_names or ()))
            archs = list(latest)
            existing: dict[str, tuple[int, float | None]] = {}
            for i in range(0, len(archs), KEY_CHUNK):
                for cid, arch, old_score in session.execute(
                        select(Candidate.id, Candidate.arch, Candidate.score)
                        .where(Candidate.run_id == run_id, Candidate.arch.in_(archs[i:i + KEY_CHUNK]))):
                    existing[arch] = (cid, old_score)
            rows = [{"run_id": run_id, "arch": r.arch, "macs": int(r.macs), "params": int(r.params),
                     "metrics": r.metrics, "latency_ms": r.latency_ms, "measured_ms": r.measured_ms,
                     "score": score(ranked_by, r.metrics)}
                    for r in latest.values()]
            fresh = [row for row in rows if row["arch"] not in existing]
            again = [{**row, "id": existing[row["arch"]][0]} for row in rows if row["arch"] in existing]
            if fresh:
                session.execute(insert(Candidate), [{**row, "created_at": utcnow()} for row in fresh])
            if again:
                session.execute(update(Candidate), again)
            run.candidate_count = (run.candidate_count or 0) + len(fresh)
            best_rescored = any(row["id"] == run.best_candidate_id for row in again)
            if best_rescored or run.best_candidate_id is None:
                run.best_candidate_id = self._best_candidate_id(session, run_id)
            else:
                best = session.execute(select(Candidate.score, Candidate.macs)
                                       .where(Candidate.id == run.best_candidate_id)).one()
                if min(_rank((row["score"], row["macs"])) for row in rows) < _rank((best.score, best.macs)):
                    run.best_candidate_id = self._best_candidate_id(session, run_id)

    @staticmethod
    def _best_candidate_id(session: Session, run_id: int) -> int | None:
        """The candidate with the best score (fewest MACs among equals), by the (run, score, MACs) index;
        without scores, the one with the fewest MACs."""
        scored = session.scalar(select(Candidate.id).where(Candidate.run_id == run_id, Candidate.score.is_not(None))
                                .order_by(Candidate.score, Candidate.macs).limit(1))
        if scored is not None:
            return scored
        return session.scalar(select(Candidate.id).where(Candidate.run_id == run_id)
                              .order_by(Candidate.macs).limit(1))

    def candidates(self, run_id: int) -> list[Candidate]:
        """ORM rows of a run's candidates; bulk readers use ``candidate_table``."""
        with self.session() as session:
            return list(session.scalars(select(Candidate).where(Candidate.run_id == run_id)
                                        .order_by(Candidate.id)).all())

    def candidate_table(self, run_id: int, after_id: int = 0) -> CandidateTable:
        """The run's candidates recorded after the one with id ``after_id`` (default: all), as columns. The
        database extracts each metric (the run keeps their names), so no JSON is decoded here; Core, not the
        ORM session, so no per-row ORM processing either."""
        with self.engine.connect() as connection:
            names = connection.execute(select(Run.metric_names).where(Run.id == run_id)).scalar() or []
            rows = connection.execute(
                select(Candidate.id, Candidate.arch, Candidate.macs, Candidate.params, Candidate.latency_ms,
                       Candidate.measured_ms, *(Candidate.metrics[name].as_float() for name in names))
                .where(Candidate.run_id == run_id, Candidate.id > after_id).order_by(Candidate.id)).all()
        if not rows:
            return CandidateTable(run_id)
        ids, archs, macs, params, latency, measured, *values = zip(*rows)
        # None (a candidate without that metric, or no latency) becomes NaN.
        return CandidateTable(run_id, np.array(ids, dtype=np.int64), list(archs), np.array(macs, dtype=np.int64),
                              np.array(params, dtype=np.int64), np.array(latency, dtype=float),
                              {name: np.array(column, dtype=float) for name, column in zip(names, values)},
                              np.array(measured, dtype=float))

    def candidate(self, run_id: int, arch: str) -> dict[str, Any] | None:
        """One candidate's record by its arch (the unique index), or None if the run never scored it."""
        with self.session() as session:
            row = session.execute(select(Candidate.arch, Candidate.macs, Candidate.params, Candidate.metrics,
                                         Candidate.latency_ms, Candidate.measured_ms)
                                  .where(Candidate.run_id == run_id, Candidate.arch == arch)).first()
        return None if row is None else {"run_id": run_id, "arch": row.arch, "macs": int(row.macs),
                                         "params": int(row.params), "metrics": row.metrics,
                                         "latency_ms": row.latency_ms, "measured_ms": row.measured_ms}

    def add_artifact(self, run_id: int, path: Path, kind: str, stage: str | None = None,
                     recorded_as: str | None = None) -> Artifact:
        """Record a file a run wrote (its digest and size), under ``recorded_as`` (a path relative to the run's
        folder, so that a moved workspace keeps its records; default: the absolute path)."""
        path = Path(path)
        digest = file_sha256(path)
        recorded_as = recorded_as or str(path.resolve())
        with self.session() as session:
            # A stage redone (a resumed export, say) rewrites its files: the record is updated, not repeated. A
            # record of an earlier version (an absolute path) is the same file when only its folder differs.
            artifact = session.scalars(select(Artifact).where(Artifact.run_id == run_id, Artifact.kind == kind,
                                                              Artifact.path.in_([recorded_as, str(path.resolve())]))
                                       ).first()
            if artifact is None:
                artifact = Artifact(run_id=run_id, kind=kind, path=recorded_as)
                session.add(artifact)
            artifact.path = recorded_as
            artifact.stage, artifact.sha256, artifact.size_bytes = stage, digest, path.stat().st_size
            artifact.created_at = utcnow()
            session.flush()
            return artifact


def _sqlite_path(parsed: URL) -> Path | None:
    """The file of an SQLite store (also of an SQLite URI, ``sqlite:///file:PATH?mode=ro&uri=true``)."""
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database.removeprefix("file:")).expanduser()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _migration_lock(parsed: URL) -> Iterator[None]:
    """Held while a process opens (and maybe creates or upgrades) an SQLite store: two processes opening a
    fresh workspace at once would otherwise both create its tables. A lock file beside the database, so
    it is taken before the first connection (which already switches the journal to WAL)."""
    path = _sqlite_path(parsed)
    if path is None:
        yield
        return
    with file_lock(path.with_name(path.name + ".lock")):
        yield


def new_store_at(url: str) -> str | None:
    """None where ``url`` names a store that exists (or a server, which never creates one); else what opening it
    would create: the SQLite file and the folders made for it, for a window to ask before it does (a
    mistyped path would otherwise open a new, empty store and seem to have lost every run)."""
    try:
        path = _sqlite_path(_parse_url(url))
    except UserError:
        return None  # opening it fails with that message
    if path is None or path.exists() or any(f.exists() and not f.is_dir() for f in path.parents):
        return None  # there, or it cannot be made (a file in the way): opening it says which
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    made = f", making the folder(s) {', '.join(str(f) for f in reversed(missing))}" if missing else ""
    return f"There is no store at {path}. Opening it creates a new, empty store there{made}."


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open (and create or upgrade to the current schema) the store at a SQLAlchemy URL. Processes opening
    the same store at once migrate it one after the other; the later ones find it current. A store that
    cannot be opened (damaged, read-only, unreachable, no driver) is a ``UserError`` saying what to fix."""
    parsed = _parse_url(url)
    try:
        with _migration_lock(parsed):
            store = Store(make_engine(url))
            try:
                if migrate and store.schema_revision() != Store.head_revision():
                    store.upgrade()
                log.debug("store %s at revision %s", url, store.schema_revision())
            except SQLAlchemyError as exc:
                store.close()
                raise store_error(exc, parsed) from None
    except OSError as exc:  # the lock file beside an SQLite store cannot be made
        raise UserError(f"cannot use the store {parsed.database}: {exc.strerror or exc} ({exc.filename}); make "
                        "the workspace writable or choose another") from None
    return store


#: Python packages that provide the drivers of the databases a store is commonly kept in.
DRIVER_PACKAGES = {"postgresql": "psycopg[binary]  (or: pip install -e \".[postgresql]\")", "mysql": "mysqlclient (or pymysql, with mysql+pymysql://)",
                   "mssql": "pyodbc", "oracle": "oracledb"}


def store_error(exc: Exception, url: URL | str) -> UserError:
    """What to tell a user whose store cannot be opened or written, naming the store (password hidden)."""
    parsed = _parse_url(url) if isinstance(url, str) else url
    shown = parsed.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if database and "file is not a database" in reason:
        return UserError(f"the store {database} is not an SQLite database (damaged, or another kind of file): move "
                         "it aside to start a new store there, or point the store URL at a good one")
    if "disk is full" in reason or "No space left" in reason:
        free = f"{free_bytes(Path(database)) / 1e6:.1f} MB free, " if database else ""
        return UserError(f"the disk holding the store {shown} is full ({free}{reason}); free some space there, "
                         "then resume")
    if "readonly" in reason or "read-only" in reason:
        return UserError(f"the store {shown} is read-only ({reason}); make its folder writable or choose "
                         "another workspace or store URL")
    return UserError(f"cannot use the store {shown}: {reason}; check the store URL (setting store_url, "
                     "--store-url or GCW_STORE_URL), that the database is reachable and its folder writable")


def _held_by_this_process() -> dict[str, Any]:
    """What a run records of the process that runs it."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "heartbeat_at": utcnow(), "error": None}


def _series_names(connection: Any, run_id: int, stage: str) -> list[str]:
    """The names of a stage's series, from its coarsest rollup (a few rows per series)."""
    return sorted(connection.execute(select(MetricRollup.name).where(
        MetricRollup.run_id == run_id, MetricRollup.stage == stage,
        MetricRollup.width == MetricRollup.WIDTHS[-1]).distinct()).scalars())


def _rank(pair: tuple[float | None, int]) -> tuple[float, int]:
    value, macs = pair
    return (float("inf") if value is None else value, macs)
