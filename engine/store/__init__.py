"""The run store: the single source of truth for runs, stages, series, candidates and artifacts."""

from engine.store.models import Artifact, Base, Candidate, MetricPoint, Project, Run, Stage, Status
from engine.store.store import RunSummary, Store, make_engine, open_store

__all__ = ["Artifact", "Base", "Candidate", "MetricPoint", "Project", "Run", "RunSummary", "Stage", "Status",
           "Store", "make_engine", "open_store"]
