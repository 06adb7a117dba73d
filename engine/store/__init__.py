"""The run store: the single source of truth for runs, stages, series, candidates and artifacts."""

from engine.store.models import Artifact, Base, Candidate, MetricPoint, MetricRollup, Project, Run, Stage, Status
from engine.store.records import (ArtifactDetail, CandidateRecord, CandidateTable, Curve, ListedResult, RunDetail, RunSummary,
                                  StageDetail)
from engine.store.store import Store, make_engine, new_store_at, open_store

__all__ = ["Artifact", "Base", "Candidate", "CandidateRecord", "CandidateTable", "Curve", "ListedResult", "MetricPoint",
           "MetricRollup", "Project", "Run", "RunDetail", "RunSummary", "StageDetail", "ArtifactDetail", "Stage", "Status", "Store", "make_engine", "new_store_at",
           "open_store"]
