"""Stage ``search``: score sub-networks of the supernet (shared weights, no retraining) on held-out
training images and keep the best under the MACs budget. Every scored candidate goes to the store and
out as an event at once; a resumed search reuses what the store holds and never scores an arch twice."""

from __future__ import annotations

import random
import time
from typing import Any

from engine.events import CandidateScored
from engine.models import MobileResnetArch, MobileResnetGenerator
from engine.profile import count_params, mobile_resnet_macs, profile_model
from engine.search import Arch, NothingFits, SearchProblem, arch_string, evolutionary_search, exhaustive_search
from engine.errors import ConfigError
from engine.stages.context import Cancelled, StageContext
from engine.stages.data import RunData
from engine.stages.evaluate import generate, make_scorer
from engine.stages.supernet import load_supernet, search_space
from engine.stages.teacher import build_teacher


def teacher_macs(ctx: StageContext) -> int:
    size = ctx.config.image_size
    return profile_model(build_teacher(ctx.config), (1, 3, size, size)).macs


def budget_macs(ctx: StageContext, reference: int) -> float:
    spec = ctx.config.search
    if spec.macs_budget is not None:
        return spec.macs_budget
    return reference / (spec.target_ratio or 10.0)


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    config, size = ctx.config, ctx.config.image_size
    supernet, _, _ = load_supernet(ctx)
    supernet.eval()
    scorer = make_scorer(ctx, data, "search")
    reference = teacher_macs(ctx)
    budget = budget_macs(ctx, reference)
    n_blocks = config.teacher.n_blocks

    def macs(arch: Arch) -> int:
        return mobile_resnet_macs(MobileResnetArch(arch).channels(), size, size, n_blocks)

    # Scores already in the store (an earlier, interrupted search) are reused as they are.
    cache = {c.arch: c.metrics[scorer.metric] for c in ctx.store.candidates(ctx.run_id) if scorer.metric in c.metrics}
    reused = len(cache)
    started = time.monotonic()

    def score(arch: Arch) -> float:
        if ctx.cancel_requested():
            raise Cancelled(f"search stopped; {len(cache)} scored candidates are kept in the store; "
                            f"resume with: python main.py resume {ctx.run_id}")
        name = arch_string(arch)
        outputs = generate(lambda x: supernet(x, name), data.search_inputs, ctx.device)
        metrics = scorer.all(outputs)
        params = count_params(MobileResnetGenerator(arch=name, n_blocks=n_blocks))
        cost = macs(arch)
        ctx.store.add_candidate(ctx.run_id, arch=name, macs=cost, params=params, metrics=metrics)
        ctx.events(CandidateScored(run_id=ctx.run_id, arch=name, macs=cost, params=params, metrics=metrics))
        return metrics[scorer.metric]

    problem = SearchProblem(space=search_space(config), macs=macs, score=score, budget=budget,
                            higher_is_better=scorer.higher_is_better, cache=cache)
    method = config.search.method
    if method == "auto":
        method = "exhaustive" if problem.grid_size() <= config.search.exhaustive_limit else "evolution"
    ctx.message(f"search: {method} over {problem.grid_size()} sub-networks, budget {budget / 1e6:.1f}M MACs "
                f"(teacher {reference / 1e6:.1f}M), metric {scorer.metric}; {reused} scores reused")
    try:
        if method == "exhaustive":
            ctx.begin(problem.grid_size())
            best_arch, best_value = exhaustive_search(problem)
        else:
            spec = config.search
            ctx.begin(spec.generations)
            best_arch, best_value = evolutionary_search(
                problem, population=spec.population, generations=spec.generations, parent_ratio=spec.parent_ratio,
                mutation_ratio=spec.mutation_ratio, mutation_prob=spec.mutation_prob, rng=random.Random(config.seed),
                on_generation=lambda g, arch, value: ctx.progress(g + 1, spec.generations,
                                                                  {f"best_{scorer.metric}": value}))
    except NothingFits as exc:
        raise ConfigError(str(exc)) from None
    seconds = time.monotonic() - started
    best = arch_string(best_arch)
    result = {"arch": best, "metric": scorer.metric, "value": best_value, "macs": macs(best_arch),
              "params": count_params(MobileResnetGenerator(arch=best, n_blocks=n_blocks)),
              "budget_macs": budget, "teacher_macs": reference, "method": method,
              "scored": problem.evaluated, "reused": reused, "seconds": seconds,
              "candidates_per_second": problem.evaluated / seconds if seconds > 0 else None}
    ctx.message(f"search: best {best} with {scorer.metric} {best_value:.4g} at {result['macs'] / 1e6:.1f}M MACs; "
                f"{problem.evaluated} scored in {seconds:.1f}s")
    return result
