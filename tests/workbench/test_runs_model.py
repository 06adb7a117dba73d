"""The runs list: a watched run's progress follows its live events, not only the store's every-N-steps record."""

from datetime import datetime, timezone

from engine.store import RunSummary
from workbench.views.runs_model import RunsTableModel


def _run(stage, step, total):
    return RunSummary(id=1, name="r", family="pix2pix", dataset="d", status="running", stage=stage, step=step,
                      total_steps=total, best_macs=None, best_metric=None, created_at=datetime.now(timezone.utc),
                      started_at=None, error=None)


def test_the_list_shows_the_live_step_until_the_store_catches_up(qtbot):
    model = RunsTableModel()
    model.set_runs([_run("supernet", 50, 100)])  # the store's record: every log_every steps
    changed = []
    model.dataChanged.connect(lambda first, last: changed.append((first.row(), first.column())))
    model.live_progress(1, "supernet", 80, 100)
    assert model.index(0, 3).data() == "supernet 80%" and changed == [(0, 3)]
    model.live_progress(1, "supernet", 60, 100)  # an older event never pulls it back
    assert model.index(0, 3).data() == "supernet 80%"
    model.live_progress(1, "search", 1, 40)  # the next stage
    assert model.index(0, 3).data() == "search 2%"
    model.live_progress(7, "search", 1, 40)  # a run the list does not hold: nothing
    model.live_progress(1, "search", 30, 40)
    model.set_runs([_run("search", 20, 40)])  # a refresh from the lagging store: no jump back
    assert model.index(0, 3).data() == "search 75%"
    model.set_runs([_run("search", 35, 40)])  # the store caught up
    assert model.index(0, 3).data() == "search 88%"
    model.set_runs([_run("finetune", 1, 10)])
    assert model.index(0, 3).data() == "finetune 10%"
