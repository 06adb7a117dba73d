"""A run's time estimated from costs measured before anything runs: the parts add up from the measured step and
image costs and the run's lengths (no assertion on the machine's speed)."""

import pytest

from engine.stages.time_estimate import duration, estimate, search_candidates
from tests.engine.stages.tiny import tiny_config


def test_the_estimate_is_the_runs_lengths_times_the_measured_costs():
    config = tiny_config("pix2pix", supernet={"steps": 1000, "search_space": [[8, 4]] * 8}, finetune={"steps": 300},
                         batch_size=2, search={"method": "evolution", "population": 10, "generations": 4})
    found = estimate(config)
    assert found.step_s > 0 and found.image_s > 0
    assert found.supernet_s == pytest.approx(1000 * found.step_s) and found.finetune_s == pytest.approx(300 * found.step_s)
    assert found.candidates == 50 == search_candidates(config)
    assert found.search_s == pytest.approx(50 * config.dataset.search_images * found.image_s)
    assert found.total_s == pytest.approx(found.supernet_s + found.finetune_s + found.search_s)
    assert found.describe().startswith("estimated on cpu: ")


def test_an_exhaustive_search_visits_the_space_and_an_evolution_at_most_it():
    assert search_candidates(tiny_config("pix2pix", search={"method": "exhaustive"})) == 256
    assert search_candidates(tiny_config("pix2pix", search={"method": "evolution", "population": 100,
                                                            "generations": 500})) == 256


def test_durations_read_in_the_unit_that_fits():
    assert [duration(s) for s in (42, 600, 3 * 3600, 5 * 86400)] == ["42 s", "10 min", "3.0 h", "5.0 days"]
