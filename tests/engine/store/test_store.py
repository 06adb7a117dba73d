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
def store(store_url):
    """A new store on each backend: SQLite and a real PostgreSQL server."""
    store = open_store(store_url)
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield store
    store.close()


def test_new_store_is_migrated_to_head_in_wal_mode(sqlite_store):
    store = sqlite_store
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
                              config={"seed": 1, "image_size": "512x256"}, stages=["teacher", "supernet", "search"])
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
    onnx.write_bytes(b"model bytes, exported again")  # a resumed export writes the same file again
    again = store.add_artifact(run_id, onnx, "onnx", stage="export")
    assert again.id == artifact.id and again.size_bytes == 27

    [summary] = store.list_runs()
    assert (summary.status, summary.stage, summary.step, summary.total_steps) == ("running", "supernet", 5, 20)
    assert (summary.best_macs, summary.best_metric) == (9_000_000_000, {"fid": 60.0})  # best by FID, not fewest MACs
    assert summary.image_size == "512x256"  # read from the configuration, so overlaid runs' sizes can be compared
    run = store.get_run(run_id)
    assert [a.kind for a in run.artifacts] == ["onnx"]
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


def test_a_reader_is_not_blocked_by_a_writer_holding_a_transaction(sqlite_store, tmp_path):
    store = sqlite_store
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


def test_long_series_are_read_for_plots_from_rollups_with_detail_when_zoomed_in(store):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["supernet"])
    for step in range(1, 1001):
        store.record_metrics(run_id, "supernet", step, {"G_gan": float(step), "G_distill": float(step % 7)})
    assert store.metric_names(run_id, "supernet") == ["G_distill", "G_gan"]
    assert len(store.metric_series(run_id, "supernet", "G_gan")) == 1000

    overview = store.curves(run_id, "supernet", max_points=100)
    gan = overview["G_gan"]
    assert gan.width == 16 and len(gan.steps) == 63  # buckets 0..62 of 16 steps cover steps 1..1000
    assert (gan.low[0], gan.high[0], gan.values[0]) == (1.0, 15.0, 8.0)  # steps 1..15: extremes and mean
    assert (gan.low[-1], gan.high[-1]) == (992.0, 1000.0)  # the last, partial bucket keeps the end
    assert list(gan.steps) == sorted(gan.steps)
    assert overview["G_distill"].high.max() == 6.0 and overview["G_distill"].low.min() == 0.0

    detail = store.curves(run_id, "supernet", max_points=100, start=500, stop=560)
    assert detail["G_gan"].width == 1 and list(detail["G_gan"].steps) == list(range(500, 561))
    assert store.curves(run_id, "teacher") == {}


def test_a_resumed_stage_forgets_its_points_after_the_checkpoint_and_the_rollups_follow(store):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["supernet"])
    for step in range(1, 41):
        store.record_metrics(run_id, "supernet", step, {"G_gan": float(step)})
    store.truncate_metrics(run_id, "supernet", after_step=20)
    for step in range(21, 41):  # recorded again by the resumed stage, other values
        store.record_metrics(run_id, "supernet", step, {"G_gan": 100.0 + step})
    series = store.metric_series(run_id, "supernet", "G_gan")
    assert [s for s, _ in series] == list(range(1, 41)) and series[25] == (26, 126.0)
    overview = store.curves(run_id, "supernet", max_points=3)["G_gan"]
    assert overview.width == 16 and list(overview.high) == [15.0, 131.0, 140.0]
    assert overview.low[1] == 16.0  # bucket 16..31 mixes kept and re-recorded points


def test_a_reset_stage_is_pending_without_its_series_artifacts_or_candidates(store, tmp_path):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["supernet", "search"])
    store.update_stage(run_id, "search", status=Status.finished, step=3)
    store.record_metrics(run_id, "search", 1, {"best_psnr": 20.0})
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    store.add_artifact(run_id, weights, "search_result", stage="search")
    store.add_candidate(run_id, arch="a", macs=5, params=1, metrics={"psnr": 20.0}, metric="psnr")
    store.reset_stage(run_id, "search", "redo asked", forget_candidates=True)
    stage = next(s for s in store.get_run(run_id).stages if s.name == "search")
    assert (stage.status, stage.step, stage.error) == (Status.pending, 0, "redo asked")
    assert store.metric_names(run_id, "search") == [] and store.stage_artifacts(run_id, "search") == []
    assert store.candidates(run_id) == [] and store.list_runs()[0].candidates == 0


def _record(store, run_id, arch, macs, metrics):
    store.add_candidate(run_id, arch=arch, macs=macs, params=1, metrics=metrics)
    return store.list_runs()[0]


def test_the_best_candidate_and_the_count_are_kept_up_to_date_as_candidates_are_recorded(store):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["search"])
    assert (store.list_runs()[0].candidates, store.list_runs()[0].best_arch) == (0, None)
    assert _record(store, run_id, "a", 5, {"psnr": 20.0}).best_arch == "a"
    assert _record(store, run_id, "b", 9, {"psnr": 19.0}).best_arch == "a"  # PSNR: higher is better
    assert _record(store, run_id, "c", 9, {"psnr": 21.0}).best_arch == "c"
    assert _record(store, run_id, "d", 3, {"psnr": 21.0}).best_arch == "d"  # equal score: fewer MACs
    summary = _record(store, run_id, "d", 3, {"psnr": 10.0})  # the best, scored again and worse
    assert (summary.best_arch, summary.candidates, summary.best_metric) == ("c", 4, {"psnr": 21.0})

    from engine.store import CandidateRecord
    store.add_candidates(run_id, [CandidateRecord(f"x{i}", 100 + i, 1, {"psnr": 15.0 + i / 100}) for i in range(1200)]
                         + [CandidateRecord("x0", 1, 1, {"psnr": 30.0})])  # the last score of an arch wins
    summary = store.list_runs()[0]
    assert (summary.candidates, summary.best_arch, summary.best_macs) == (1204, "x0", 1)

    table = store.candidate_table(run_id)
    assert len(table) == 1204 and table.archs[:4] == ["a", "b", "c", "d"]
    assert table.row(3) == {"run_id": run_id, "arch": "d", "macs": 3, "params": 1, "metrics": {"psnr": 10.0},
                            "latency_ms": None, "measured_ms": None}
    later = store.candidate_table(run_id, after_id=int(table.ids[-3]))
    assert later.archs == table.archs[-2:]
    # A latency measured end to end (a budget decided on measurement) is kept beside the predicted one.
    store.add_candidate(run_id, arch="m", macs=7, params=1, metrics={"psnr": 12.0}, latency_ms=4.0, measured_ms=5.5)
    assert store.candidate_table(run_id).row(1204)["measured_ms"] == 5.5
    assert store.candidate(run_id, "m")["measured_ms"] == 5.5 and store.candidate(run_id, "m")["latency_ms"] == 4.0
    assert store.candidate(run_id, "x0")["metrics"] == {"psnr": 30.0} and store.candidate(run_id, "nope") is None


def test_the_run_keeps_the_metric_it_is_searched_by(store):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["search"])
    store.add_candidate(run_id, arch="a", macs=5, params=1, metrics={"psnr": 20.0, "ssim": 0.5}, metric="ssim")
    store.add_candidate(run_id, arch="b", macs=5, params=1, metrics={"psnr": 19.0, "ssim": 0.6})
    assert store.list_runs()[0].best_arch == "b"


def test_upgrading_a_store_of_the_first_schema_fills_counts_best_candidates_and_rollups(tmp_path):
    from alembic import command

    from engine.store.store import _alembic_config, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0001")
        connection.execute(text("INSERT INTO runs (id, name, family, dataset, config, status, created_at) "
                                "VALUES (1, 'old', 'cyclegan', 'd', '{}', 'finished', '2026-11-30 10:00:00')"))
        for i, (fid, macs) in enumerate([(70.0, 5), (60.0, 9), (65.0, 2)]):
            connection.execute(text("INSERT INTO candidates (run_id, arch, macs, params, metrics, created_at) "
                                    "VALUES (1, :arch, :macs, 1, :metrics, '2026-11-30 10:00:00')"),
                               {"arch": f"a{i}", "macs": macs, "metrics": f'{{"fid": {fid}}}'})
        for step in range(1, 41):
            connection.execute(text("INSERT INTO metric_points (run_id, stage, name, step, value, recorded_at) "
                                    "VALUES (1, 'supernet', 'G_gan', :step, :value, '2026-11-30 10:00:00')"),
                               {"step": step, "value": float(step)})
    engine.dispose()
    store = open_store(f"sqlite:///{tmp_path / 'old.sqlite'}")
    [summary] = store.list_runs()
    assert (summary.candidates, summary.best_arch, summary.best_metric) == (3, "a1", {"fid": 60.0})
    curve = store.curves(1, "supernet", max_points=10)["G_gan"]
    assert curve.width == 16 and list(curve.high) == [15.0, 31.0, 40.0]
    store.add_candidate(1, arch="a3", macs=1, params=1, metrics={"fid": 50.0})
    assert store.list_runs()[0].best_arch == "a3"
    store.close()


def test_a_run_is_renamed_and_deleted_with_everything_recorded_of_it(store, tmp_path):
    from engine.errors import RunBusyError
    from engine.store import CandidateRecord

    kept = store.create_run(name="kept", family="pix2pix", dataset="d", config={}, stages=["teacher"])
    gone = store.create_run(name="old name", family="pix2pix", dataset="d", config={}, stages=["teacher", "search"])
    for run_id in (kept, gone):
        store.record_metrics(run_id, "teacher", 1, {"G": 1.0})
        store.add_candidates(run_id, [CandidateRecord("8_8", 10, 1, {"psnr": 20.0})], metric="psnr")
        weights = tmp_path / f"w{run_id}.pt"
        weights.write_bytes(b"w")
        store.add_artifact(run_id, weights, "weights", stage="teacher")
        store.add_log_line(run_id, "info", f"line of {run_id}")
    store.rename_run(gone, "  new name ")
    assert store.get_run(gone).name == "new name"
    with pytest.raises(ConfigError, match="1 to 200 characters"):
        store.rename_run(gone, "   ")
    store.mark_run(gone, Status.running)
    with pytest.raises(RunBusyError, match="cancel it before deleting"):
        store.delete_run(gone)
    store.mark_run(gone, Status.cancelled)
    store.delete_run(gone)
    assert [run.id for run in store.list_runs()] == [kept]
    with pytest.raises(ConfigError, match=f"no run {gone}"):
        store.get_run(gone)
    assert store.log_lines(gone) == [] and store.candidates(gone) == [] and store.metric_series(gone, "teacher", "G") == []
    # The other run keeps all it had.
    assert len(store.candidates(kept)) == 1 and store.metric_series(kept, "teacher", "G") == [(1, 1.0)]
    assert [line[3] for line in store.log_lines(kept)] == [f"line of {kept}"]


def test_log_lines_are_read_in_order_incrementally_or_the_newest_few(store):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={}, stages=["teacher"])
    for i in range(7):
        store.add_log_line(run_id, "warning" if i == 3 else "info", f"line {i}")
    lines = store.log_lines(run_id)
    assert [text for *_, text in lines] == [f"line {i}" for i in range(7)] and lines[3][2] == "warning"
    assert [text for *_, text in store.log_lines(run_id, after_id=lines[4][0])] == ["line 5", "line 6"]
    assert [text for *_, text in store.log_lines(run_id, limit=2)] == ["line 5", "line 6"]


def test_a_runs_detail_is_plain_data_with_its_stages_in_order(store):
    run_id = store.create_run(name="r", family="pix2pix", dataset="d", config={"log_every": 5},
                              stages=["teacher", "supernet"])
    store.update_stage(run_id, "teacher", status=Status.finished)
    detail = store.run_detail(run_id)
    assert (detail.name, detail.status, detail.config) == ("r", "pending", {"log_every": 5})
    assert [(s.name, s.status) for s in detail.stages] == [("teacher", "finished"), ("supernet", "pending")]
    assert detail.stage("supernet").step == 0 and detail.stage("export") is None and detail.artifacts == []
