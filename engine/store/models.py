"""The run store's tables. Schema changes go through an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Enum, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Status(str, enum.Enum):
    pending = "pending"
    running = "running"
    finished = "finished"
    failed = "failed"
    cancelled = "cancelled"


# native_enum=False keeps the column a plain string with a CHECK, portable across SQLite and PostgreSQL.
StatusColumn = Enum(Status, native_enum=False, length=16, name="status",
                    values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    runs: Mapped[list[Run]] = relationship(back_populates="project")


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    family: Mapped[str] = mapped_column(String(50))
    dataset: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[Status] = mapped_column(StatusColumn, default=Status.pending)
    error: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    # Kept up to date as candidates are recorded, so that listing runs never reads their candidates.
    candidate_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    primary_metric: Mapped[str | None] = mapped_column(String(100))
    metric_names: Mapped[list[str] | None] = mapped_column(JSON)  # every metric name its candidates have
    best_candidate_id: Mapped[int | None] = mapped_column(Integer)
    #: A finished run's outcome on the test split (``Store.mark_run(..., result=)``): what the runs list shows.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The processes (torchrun ranks) of its latest start, and the machines they ran on.
    processes: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    hosts: Mapped[list[str] | None] = mapped_column(JSON)

    project: Mapped[Project | None] = relationship(back_populates="runs")
    stages: Mapped[list[Stage]] = relationship(back_populates="run", order_by="Stage.position",
                                               cascade="all, delete-orphan")
    candidates: Mapped[list[Candidate]] = relationship(back_populates="run", cascade="all, delete-orphan")
    artifacts: Mapped[list[Artifact]] = relationship(back_populates="run", cascade="all, delete-orphan")


class Stage(Base):
    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("run_id", "name", name="uq_stages_run_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[Status] = mapped_column(StatusColumn, default=Status.pending)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    run: Mapped[Run] = relationship(back_populates="stages")


class MetricPoint(Base):
    """One value of a named series (a loss, a metric) at a step of a stage."""

    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_run_series", "run_id", "stage", "name", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetricRollup(Base):
    """Aggregate of a series over ``width`` consecutive steps (bucket ``step // width``), kept beside the
    points for a few widths, so a plot of a long training reads a bounded number of rows at any zoom."""

    __tablename__ = "metric_rollups"
    #: The widths kept for every series (migration 0002 fills them for data written before).
    WIDTHS = (16, 256, 4096)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(50), primary_key=True)
    # Width before name in the key: the queries of one width (names, extent) read only that width's rows.
    width: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    first_step: Mapped[int] = mapped_column(Integer)
    last_step: Mapped[int] = mapped_column(Integer)


class Candidate(Base):
    """A sub-network scored during search; ``arch`` is the width string, e.g. 16_16_24_16_32_64_16_24.
    ``score`` is the run's primary metric signed so that lower is better (None without that metric)."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("run_id", "arch", name="uq_candidates_run_arch"),
                      Index("ix_candidates_run_score", "run_id", "score", "macs"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    arch: Mapped[str] = mapped_column(String(200))
    macs: Mapped[int] = mapped_column(BigInteger)
    params: Mapped[int] = mapped_column(BigInteger)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    latency_ms: Mapped[float | None] = mapped_column(Float)  # predicted by the latency table
    measured_ms: Mapped[float | None] = mapped_column(Float)  # measured end to end (a measured latency budget)
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    run: Mapped[Run] = relationship(back_populates="candidates")


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str | None] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(50))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    run: Mapped[Run] = relationship(back_populates="artifacts")


class LogLine(Base):
    """One line of a run's log (what the CLI and the monitor show), in the order written."""

    __tablename__ = "log_lines"
    __table_args__ = (Index("ix_log_lines_run_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
