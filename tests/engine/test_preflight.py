"""The one pre-flight: budgets resolved and every rule about a configuration checked in one place, for the
dialog, ``config --check`` and ``create_run``."""

import json
import os
import subprocess
import sys

import pytest
import torch

from engine.arch import Arch
from engine.errors import ConfigError
from engine.latency_table import LatencyTable, build_on_meta, layer_key, layer_shapes, table_path
from engine.pipeline import create_run, run_dir
from engine.preflight import (PREFLIGHT_FILE, Preflight, preflight, stored, teacher_known, teacher_macs)
from engine.profile import profile_model
from tests.engine.stages.tiny import tiny_config


def test_a_ratio_becomes_a_macs_budget_from_the_teachers_profile(settings):
    config = tiny_config(search={"target_ratio": 2})
    checked = preflight(config, settings)
    family, options = config.family_impl, config.options
    teacher = profile_model(family.build_teacher(options), family.example_inputs(options, config.size_hw)).macs
    space = config.search_space()
    assert checked.ok and checked.complete and checked.device == "cpu"
    assert checked.teacher_macs == teacher and checked.budget_macs == teacher / 2
    assert checked.smallest == str(Arch.smallest(space))
    assert checked.smallest_macs == family.macs(Arch.smallest(space), options, config.size_hw)
    assert checked.largest_macs == family.macs(Arch.largest(space), options, config.size_hw)
    assert checked.largest_ratio == teacher / checked.smallest_macs
    assert Preflight.from_dict(json.loads(json.dumps(checked.to_dict()))) == checked


def test_each_problem_names_its_field_and_the_fix(settings):
    too_far = preflight(tiny_config(search={"target_ratio": 1000}), settings)
    [problem] = too_far.problems
    assert problem.field == "search.target_ratio" and f"at most {too_far.largest_ratio:.1f}" in problem.message
    too_small = preflight(tiny_config(search={"target_ratio": None, "macs_budget": 1000}), settings)
    [problem] = too_small.problems
    assert problem.field == "search.macs_budget" and "raise it to at least" in problem.message
    uneven = preflight(tiny_config(batch_size=4), settings, processes=3)
    assert [p.field for p in uneven.problems] == ["batch_size"] and "set it to 3 or 6" in uneven.problems[0].message
    # Every machine's processes share the global batch.
    assert preflight(tiny_config(batch_size=4), settings, processes=2).ok
    assert [p.field for p in preflight(tiny_config(batch_size=4), settings, 2, machines=3).problems] == ["batch_size"]
    with pytest.raises(ConfigError, match="batch_size 4 is the global batch of the 3 processes"):
        uneven.check()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without a GPU")
def test_a_device_this_machine_lacks_is_a_problem_of_the_device_field(settings):
    checked = preflight(tiny_config(device="cuda"), settings)
    assert [p.field for p in checked.problems] == ["device"] and "set device to cpu" in checked.problems[0].message
    by_latency = preflight(tiny_config(search={"latency_budget_ms": 5, "latency_device": "cuda"}), settings)
    assert [p.field for p in by_latency.problems] == ["search.latency_device"]


def test_a_latency_backend_this_machine_cannot_run_is_a_problem_of_its_field(settings, monkeypatch):
    from engine import openvino_runtime

    monkeypatch.setattr(openvino_runtime, "available", lambda: False)
    checked = preflight(tiny_config(search={"latency_budget_ms": 5, "latency_backend": "openvino"}), settings,
                        profile_teacher=False)
    [problem] = [p for p in checked.problems if p.field == "search.latency_backend"]
    assert problem.message.startswith(openvino_runtime.MISSING) and "choose pytorch or onnxruntime" in problem.message


def test_a_form_gets_an_instant_preflight_without_profiling_the_teacher(settings):
    config = tiny_config(model={"ngf": 12}, search={"target_ratio": 1000})  # a teacher no other test profiles
    quick = preflight(config, settings, profile_teacher=False)
    assert not quick.complete and not teacher_known(config) and quick.ok  # the ratio waits for the profile
    assert preflight(config, settings).problems[0].field == "search.target_ratio"
    assert teacher_known(config) and preflight(config, settings, profile_teacher=False).complete


def test_a_latency_budget_is_checked_against_the_workspaces_table_as_the_search_predicts(settings):
    config = tiny_config(search={"target_ratio": None, "latency_budget_ms": 1000.0})
    unchecked = preflight(config, settings)
    assert unchecked.ok and unchecked.smallest_ms is None and not unchecked.latency_checked
    family, options = config.family_impl, config.options
    example = family.example_inputs(options, config.size_hw)
    table = LatencyTable("pix2pix", options.model_dump_json(), "cpu", "pytorch", torch.get_num_threads(),
                         config.size_hw, scale=2.0, offset_ms=1.0)
    predicted = []
    space = config.search_space()
    for arch in (Arch.smallest(space), Arch.largest(space)):
        net = build_on_meta(lambda a: family.build_student(options, a), arch)
        for module, shape in layer_shapes(net, example):
            table.layers[layer_key(module, shape)] = 0.5
        predicted.append(table.predict(net, example))
    path = table_path(settings.workspace / "latency", "pix2pix", options.model_dump_json(), "cpu",
                      torch.get_num_threads(), config.size_hw)
    path.parent.mkdir(parents=True)
    table.save(path)
    checked = preflight(config, settings)
    assert (checked.smallest_ms, checked.largest_ms) == tuple(predicted) and checked.latency_checked and checked.ok
    below = preflight(tiny_config(search={"target_ratio": None, "latency_budget_ms": predicted[0] - 0.5,
                                          "latency_decision": "predicted"}), settings)
    assert [p.field for p in below.problems] == ["search.latency_budget_ms"]
    assert f"predicted {predicted[0]:.3g} ms" in below.problems[0].message
    # A measured budget (the default) refuses on the prediction only beyond the margin within which the search
    # measures candidates: the table is often 30% off.
    within = preflight(tiny_config(search={"target_ratio": None, "latency_budget_ms": predicted[0] / 1.4}), settings)
    assert within.ok and "measured end to end" in within.describe()
    beyond = preflight(tiny_config(search={"target_ratio": None, "latency_budget_ms": predicted[0] / 1.6}), settings)
    assert [p.field for p in beyond.problems] == ["search.latency_budget_ms"]
    assert "more than 50% over, the margin within which candidates are measured" in beyond.problems[0].message


def test_create_run_refuses_a_problem_and_stores_the_preflight_it_passed(settings, store):
    with pytest.raises(ConfigError, match="search.target_ratio"):
        create_run(tiny_config(search={"target_ratio": 1000}), store, settings)
    assert store.list_runs() == []
    config = tiny_config(search={"target_ratio": 3})
    run_id = create_run(config, store, settings)
    kept = stored(run_dir(settings, run_id))
    assert kept == preflight(config, settings) and kept.budget_macs == teacher_macs(config) / 3
    (run_dir(settings, run_id) / PREFLIGHT_FILE).write_text("{damaged")
    assert stored(run_dir(settings, run_id)) is None


def test_config_check_prints_the_preflight_and_fails_on_a_problem(tmp_path):
    env = {**os.environ, "GCW_WORKSPACE": str(tmp_path)}
    ok = subprocess.run([sys.executable, "main.py", "config", "--preset", "pix2pix-sample", "--check"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "pre-flight on this machine" in ok.stdout and "no problems: it can start" in ok.stdout
    bad = subprocess.run([sys.executable, "main.py", "config", "--preset", "pix2pix-sample", "--check", "--json",
                          "--processes-per-node", "3"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)["preflight"]["problems"]
    assert [p["field"] for p in problems] == ["batch_size"]


def test_the_search_refuses_a_budget_in_the_preflights_words_and_holds_to_its_stored_resolution(settings, tmp_path):
    from engine.preflight import ResolvedBudget, nothing_fits, resolved_budget, save
    from engine.search import NothingFits, SearchProblem, exhaustive_search

    config = tiny_config(search={"target_ratio": 1000})
    [problem] = preflight(config, settings).problems
    family, options = config.family_impl, config.options
    smallest = Arch.smallest(config.search_space())
    smallest_macs = family.macs(smallest, options, config.size_hw)
    budget = ResolvedBudget(teacher_macs(config), teacher_macs(config) / 1000, None)
    # One rule, one sentence: what the search says when nothing fits is the pre-flight's problem, field and fix.
    words = nothing_fits(config, budget, smallest, smallest_macs, None, "", None)
    assert words == problem.sentence
    search = SearchProblem(space=config.search_space(), macs=lambda a: family.macs(a, options, config.size_hw),
                           score=lambda a: 0.0, budget=budget.macs,
                           refusal=lambda a: nothing_fits(config, budget, a, smallest_macs, None, "", None))
    with pytest.raises(NothingFits) as refused:
        exhaustive_search(search)
    assert str(refused.value) == problem.sentence
    # A limit decided on measurement is named by the field the user set.
    measured = nothing_fits(tiny_config(search={"speedup_budget": 10, "latency_backend": "pytorch"}),
                            ResolvedBudget(1, None, None), smallest, smallest_macs, None, "", "10x the teacher")
    assert measured.startswith("search.speedup_budget 10x the teacher: the smallest sub-network")
    # The search reads the budget the pre-flight stored with the run, both limits, not the configuration again.
    stored_check = preflight(tiny_config(search={"target_ratio": 2}), settings)
    save(tmp_path, stored_check)
    resolved = resolved_budget(tiny_config(search={"target_ratio": 3}), tmp_path)
    assert (resolved.teacher_macs, resolved.macs) == (stored_check.teacher_macs, stored_check.budget_macs)
