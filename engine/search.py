"""Architecture search over a grid of width choices under a MACs budget: exhaustive or evolutionary.

Both compute MACs first and score only candidates within the budget; scores are cached by arch string,
so a candidate is never scored twice (and a resumed search starts from what the store already holds).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

Arch = tuple[int, ...]


def arch_string(arch: Arch) -> str:
    return "_".join(str(v) for v in arch)


@dataclass
class SearchProblem:
    space: list[tuple[int, ...]]
    macs: Callable[[Arch], int]
    score: Callable[[Arch], float]
    budget: float
    higher_is_better: bool = False
    cache: dict[str, float] = field(default_factory=dict)
    evaluated: int = 0  # scores computed in this process (cache misses)

    def grid_size(self) -> int:
        return math.prod(len(choices) for choices in self.space)

    def fits(self, arch: Arch) -> bool:
        return self.macs(arch) <= self.budget

    def evaluate(self, arch: Arch) -> float:
        key = arch_string(arch)
        if key not in self.cache:
            self.cache[key] = self.score(arch)
            self.evaluated += 1
        return self.cache[key]

    def key(self, value: float) -> float:
        """Sort key: smaller is better."""
        return -value if self.higher_is_better else value

    def smallest(self) -> Arch:
        return tuple(min(c) for c in self.space)


class NothingFits(ValueError):
    pass


def _check_feasible(problem: SearchProblem) -> None:
    smallest = problem.smallest()
    if not problem.fits(smallest):
        raise NothingFits(f"no sub-network fits in the budget of {problem.budget / 1e9:.4g}G MACs: the smallest, "
                          f"{arch_string(smallest)}, needs {problem.macs(smallest) / 1e9:.4g}G; raise the budget "
                          "or lower the target ratio")


def exhaustive_search(problem: SearchProblem) -> tuple[Arch, float]:
    _check_feasible(problem)
    best: tuple[Arch, float] | None = None
    for arch in itertools.product(*problem.space):
        if not problem.fits(arch):
            continue
        value = problem.evaluate(arch)
        if best is None or problem.key(value) < problem.key(best[1]):
            best = (arch, value)
    assert best is not None
    return best


def _random_fitting(problem: SearchProblem, rng: random.Random, tries: int = 2000) -> Arch:
    for _ in range(tries):
        arch = tuple(rng.choice(c) for c in problem.space)
        if problem.fits(arch):
            return arch
    # The budget is tight: the smallest arch fits, so shrink a random arch position by position.
    arch = list(tuple(rng.choice(c) for c in problem.space))
    for i in rng.sample(range(len(arch)), len(arch)):
        arch[i] = min(problem.space[i])
        if problem.fits(tuple(arch)):
            break
    return tuple(arch)


def evolutionary_search(problem: SearchProblem, *, population: int, generations: int, parent_ratio: float,
                        mutation_ratio: float, mutation_prob: float, rng: random.Random,
                        on_generation: Callable[[int, Arch, float], None] | None = None) -> tuple[Arch, float]:
    """Keep the best ``parent_ratio`` of the population; fill the rest with mutants of parents (each
    position resampled with ``mutation_prob``) and crossovers of two parents; reject children over the
    budget."""
    _check_feasible(problem)
    members = [_random_fitting(problem, rng) for _ in range(population)]
    n_parents = max(1, int(round(population * parent_ratio)))
    n_mutants = int(round(population * mutation_ratio))
    best: tuple[Arch, float] | None = None
    for generation in range(generations):
        ranked = sorted(set(members), key=lambda a: problem.key(problem.evaluate(a)))
        if best is None or problem.key(problem.evaluate(ranked[0])) < problem.key(best[1]):
            best = (ranked[0], problem.evaluate(ranked[0]))
        if on_generation:
            on_generation(generation, *best)
        parents = ranked[:n_parents]
        children: list[Arch] = []
        attempts = 0
        while len(children) < population - n_parents:
            attempts += 1
            if attempts > 100 * population:  # a budget so tight that few children fit: sample afresh
                children.append(_random_fitting(problem, rng))
                continue
            if len(children) < n_mutants:
                parent = rng.choice(parents)
                child = tuple(rng.choice(c) if rng.random() < mutation_prob else v
                              for v, c in zip(parent, problem.space))
            else:
                a, b = rng.choice(parents), rng.choice(parents)
                child = tuple(rng.choice(pair) for pair in zip(a, b))
            if problem.fits(child):
                children.append(child)
        members = parents + children
    ranked = sorted(set(members), key=lambda a: problem.key(problem.evaluate(a)))
    if problem.key(problem.evaluate(ranked[0])) < problem.key(best[1]):  # type: ignore[index]
        best = (ranked[0], problem.evaluate(ranked[0]))
    return best  # type: ignore[return-value]
