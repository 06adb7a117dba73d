import hashlib
import sqlite3
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from engine.errors import ConfigError
from engine.store import Base, Status, Store, open_store


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield store
    store.close()


def test_new_store_is_migrated_to_head_in_wal_mode(store, tmp_path):
    assert store.schema_revision() == Store.head_revision() is not None
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_migrations_create_exactly_the_models_schema(store):
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_opening_again_keeps_the_data_and_the_revision(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'store.sqlite'}"
    first = open_store(url)
    run_id = first.create_run(name="a", family="cyclegan", dataset="x", config={}, stages=["teacher"])
    first.close()
    second = open_store(url)
    assert [r.id for r in second.list_runs()] == [run_id]
    second.close()


def test_run_lifecycle_with_stages_series_candidates_and_artifacts(store, tmp_path):
    run_id = store.create_run(name="horse2zebra", family="cyclegan", dataset="/data/h2z",
                              config={"seed": 1}, stages=["teacher", "supernet", "search"])
    store.mark_run(run_id, Status.running)
    store.update_stage(run_id, "teacher", status=Status.finished, step=10, total_steps=10)
    store.update_stage(run_id, "supernet", status=Status.running, step=5, total_steps=20,
                       checkpoint_path="/ckpt/supernet.pt")
    store.record_metrics(run_id, "supernet", 5, {"G_gan": 0.7, "G_distill": 1.5})
    store.record_metrics(run_id, "supernet", 6, {"G_gan": 0.6})
    store.add_candidate(run_id, arch="16_16_24_16_32_64_16_24", macs=2_640_000_000, params=355_235,
                        metrics={"fid": 70.0})
    store.add_candidate(run_id, arch="32_32_32_32_32_32_32_32", macs=9_000_000_000, params=1_000_000,
                        metrics={"fid": 60.0}, latency_ms=4.5)
    store.add_candidate(run_id, arch="16_16_24_16_32_64_16_24", macs=2_640_000_000, params=355_235,
                        metrics={"fid": 68.0})
    onnx = tmp_path / "student.onnx"
    onnx.write_bytes(b"model bytes")
    artifact = store.add_artifact(run_id, onnx, "onnx", stage="export")

    assert store.metric_series(run_id, "supernet", "G_gan") == [(5, 0.7), (6, 0.6)]
    assert [c.metrics["fid"] for c in store.candidates(run_id)] == [68.0, 60.0]

    assert artifact.sha256 == hashlib.sha256(b"model bytes").hexdigest()
    assert artifact.size_bytes == 11

    [summary] = store.list_runs()
    assert (summary.status, summary.stage, summary.step, summary.total_steps) == ("running", "supernet", 5, 20)
    assert (summary.best_macs, summary.best_metric) == (9_000_000_000, {"fid": 60.0})  # best by FID, not fewest MACs
    run = store.get_run(run_id)
    assert [s.status for s in run.stages] == [Status.finished, Status.running, Status.pending]
    assert run.started_at is not None and run.pid is not None

    store.mark_run(run_id, Status.failed, error="killed")
    [summary] = store.list_runs()
    assert (summary.status, summary.error) == ("failed", "killed")


def test_unknown_run_or_stage_is_a_clear_error(store):
    with pytest.raises(ConfigError, match="no run 42"):
        store.get_run(42)
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["teacher"])
    with pytest.raises(ConfigError, match="no stage 'export'"):
        store.update_stage(run_id, "export", status=Status.running)


def test_bad_store_url_names_the_expected_form():
    with pytest.raises(ConfigError, match="not a SQLAlchemy URL"):
        open_store("not a url")


def test_a_reader_is_not_blocked_by_a_writer_holding_a_transaction(store, tmp_path):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["teacher"])
    writer = sqlite3.connect(tmp_path / "store.sqlite")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE runs SET name = 'renamed' WHERE id = ?", (run_id,))
    result = []
    reader = threading.Thread(target=lambda: result.append([r.name for r in store.list_runs()]))
    reader.start()
    reader.join(timeout=10)
    writer.commit()
    writer.close()
    assert result == [["r"]]  # WAL: the reader sees the last committed state at once
    assert [r.name for r in store.list_runs()] == ["renamed"]


def test_store_url_setting_points_anywhere(tmp_path, monkeypatch):
    from engine.settings import Settings

    monkeypatch.setenv("GCW_STORE_URL", f"sqlite:///{tmp_path / 'team' / 'shared.sqlite'}")
    store = open_store(Settings.from_env().resolved_store_url)
    store.close()
    assert (tmp_path / "team" / "shared.sqlite").is_file()


def test_long_series_are_thinned_for_plots_but_keep_their_ends(store):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["supernet"])
    for step in range(1, 1001):
        store.record_metrics(run_id, "supernet", step, {"G_gan": float(step)})
    full = store.metric_series(run_id, "supernet", "G_gan")
    thin = store.metric_series(run_id, "supernet", "G_gan", max_points=100)
    assert len(full) == 1000 and 100 <= len(thin) <= 101
    assert thin[-1] == (1000, 1000.0) and [s for s, _ in thin] == sorted(s for s, _ in thin)
    assert store.metric_series(run_id, "supernet", "G_gan", max_points=5000) == full
