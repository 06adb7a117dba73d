"""The facade's answers that the window draws from."""

import json

from engine import api
from engine.pipeline import create_run, run_dir
from engine.stages.resources import TEACHER_REFERENCE
from tests.engine.stages.tiny import tiny_config


def test_a_runs_budget_is_the_one_its_preflight_resolved_and_stored_and_nothing_else(settings, store):
    """One stored resolution: what the search writes later does not change the budget line, and a run made before
    pre-flights were stored is resolved by the same rule, not read back from its search's files."""
    from engine.preflight import PREFLIGHT_FILE, teacher_macs

    config = tiny_config("pix2pix", search={"target_ratio": 4})
    run_id = create_run(config, store, settings)
    assert api.search_budget(store, settings, run_id).macs == teacher_macs(config) / 4  # before the search starts
    folder = run_dir(settings, run_id) / "search"
    folder.mkdir(parents=True)
    (folder / TEACHER_REFERENCE).write_text(json.dumps({"macs": 8_000_000, "metrics": {"psnr": 20.0},
                                                        "split": "search"}))
    (folder / "result.json").write_text(json.dumps({"budget_macs": 1_999_000, "latency_budget_ms": None}))
    assert api.search_budget(store, settings, run_id).macs == teacher_macs(config) / 4
    (run_dir(settings, run_id) / PREFLIGHT_FILE).unlink()  # a run made before pre-flights were stored
    assert api.search_budget(store, settings, run_id).macs == teacher_macs(config) / 4
