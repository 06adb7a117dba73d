"""The facade's answers that the window draws from."""

import json

from engine import api
from engine.pipeline import create_run, run_dir
from engine.stages.search import TEACHER_REFERENCE
from tests.engine.stages.tiny import tiny_config


def test_a_live_searchs_budget_is_known_in_macs_once_the_search_has_started(settings, store):
    run_id = create_run(tiny_config("pix2pix", search={"target_ratio": 4}), store, settings)
    assert api.search_budget(store, settings, run_id).macs is None  # a ratio of a teacher not profiled yet
    folder = run_dir(settings, run_id) / "search"
    folder.mkdir(parents=True)
    (folder / TEACHER_REFERENCE).write_text(json.dumps({"macs": 8_000_000, "metrics": {"psnr": 20.0},
                                                        "split": "search"}))
    assert api.search_budget(store, settings, run_id).macs == 2_000_000  # drawn as the budget line meanwhile
    (folder / "result.json").write_text(json.dumps({"budget_macs": 1_999_000, "latency_budget_ms": None}))
    assert api.search_budget(store, settings, run_id).macs == 1_999_000  # the search's own, once it has one
