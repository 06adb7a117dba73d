"""Architecture search over a grid of width choices under a budget of MACs, of predicted latency, or both:
exhaustive or evolutionary.

Both check the budget first (closed-form MACs, table-predicted latency: microseconds, or latency measured end
to end: ``engine.measured_budget``) and score only
candidates within it; scores are cached by arch string,
so a candidate is never scored twice (and a resumed search starts from what the store already holds).

A budget decided on measurement can be checked when a candidate is drawn (every drawn candidate measured before
it is scored) or only when the search would keep it (``SearchProblem.prefilter``): candidates are then drawn and
scored on the pre-filter's word, and measured when one would become the best so far or a parent, in order of
score, those over the budget passed over. The second measures a few candidates per generation instead of every
one drawn, and keeps no student the first would not: the best within the budget by measurement.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.arch import Arch

if TYPE_CHECKING:
    from engine.config import SearchSpec


def choose_method(spec: SearchSpec, grid_size: int) -> str:
    """The search a run does: ``auto`` is exhaustive up to ``exhaustive_limit`` sub-networks; an evolution that
    would visit at least as many members as the space holds (a population of 10^9 on 256 sub-networks) is
    exhaustive too: cheaper, exact, and bounded by the space instead of by the population."""
    if spec.method == "auto":
        return "exhaustive" if grid_size <= spec.exhaustive_limit else "evolution"
    if spec.method == "evolution" and spec.population * (spec.generations + 1) >= grid_size:
        return "exhaustive"
    return spec.method


@dataclass
class SearchProblem:
    space: list[tuple[int, ...]]
    macs: Callable[[Arch], int]
    score: Callable[[Arch], float]
    budget: float | None  # MACs; None: no MACs limit (a latency budget alone)
    higher_is_better: bool = False
    cache: dict[str, float] = field(default_factory=dict)
    evaluated: int = 0  # scores computed in this process (cache misses)
    latency: Callable[[Arch], float] | None = None  # predicted ms
    latency_budget_ms: float | None = None
    #: Scores of several sub-networks at once (a multi-process search shards them over its ranks); by
    #: default ``score`` one after the other.
    score_many: Callable[[list[Arch]], list[float]] | None = None
    chunk: int = 1  # sub-networks the exhaustive search hands to ``score_many`` at a time
    #: Told, before ``score_many`` is asked for a round, which sub-networks the search will ask for next (those not
    #: scored yet of its next round), so that their set-up can start while this round's are scored.
    upcoming: Callable[[list[Arch]], None] | None = None
    #: A latency limit decided on measurement (``engine.measured_budget.MeasuredBudget.fits``, which uses the
    #: table only to pre-filter), in place of ``latency_budget_ms``'s prediction; with ``measured_limit``, its
    #: words for a refusal.
    measured: Callable[[Arch], bool] | None = None
    measured_limit: str = ""
    #: Why the smallest sub-network does not fit, for the refusal: a run's search gives the pre-flight's words
    #: (``engine.preflight.nothing_fits``: one rule, one way of saying it); alone, the search says it below.
    refusal: Callable[[Arch], str] | None = None
    #: With ``measured``: candidates are drawn and scored when this cheap check passes them (the table's
    #: prediction within a margin) and ``measured`` is asked only of those the search would keep. None:
    #: ``measured`` is asked of every candidate drawn, before it is scored.
    prefilter: Callable[[Arch], bool] | None = None

    def __post_init__(self) -> None:
        if self.budget is None and self.latency_budget_ms is None and self.measured is None:
            raise ValueError("a search needs a MACs budget, a latency budget or both")
        if self.latency_budget_ms is not None and self.latency is None:
            raise ValueError("a latency budget needs a latency predictor")

    def grid_size(self) -> int:
        return math.prod(len(choices) for choices in self.space)

    def within_macs(self, arch: Arch) -> bool:
        return self.budget is None or self.macs(arch) <= self.budget

    def fits(self, arch: Arch) -> bool:
        if not self.within_macs(arch):
            return False
        if self.measured is not None:
            return self.measured(arch)
        return self.latency_budget_ms is None or self.latency(arch) <= self.latency_budget_ms  # type: ignore[misc]

    def drawable(self, arch: Arch) -> bool:
        """Whether the search may draw and score it: it fits, or (measuring only what would be kept) it is within
        the MACs budget and passes the pre-filter."""
        if not self.measures_kept:
            return self.fits(arch)
        return self.within_macs(arch) and self.prefilter(arch)  # type: ignore[misc]

    @property
    def measures_kept(self) -> bool:
        """Measurement waits until the search would keep a candidate."""
        return self.prefilter is not None and self.measured is not None

    def keepable(self, arch: Arch) -> bool:
        """Whether the search may keep a drawn candidate (as the best or a parent): always, where every drawn
        candidate was checked in full; else it is measured now."""
        return not self.measures_kept or self.fits(arch)

    def best_keepable(self, ranked: list[Arch], count: int) -> list[Arch]:
        """The first ``count`` keepable sub-networks of ``ranked`` (best first), asking no further."""
        kept: list[Arch] = []
        for arch in ranked:
            if len(kept) == count:
                break
            if self.keepable(arch):
                kept.append(arch)
        return kept

    def evaluate(self, arch: Arch) -> float:
        key = str(arch)
        if key not in self.cache:
            self.prefetch([arch])
        return self.cache[key]

    def prefetch(self, archs: list[Arch], then: list[Arch] | None = None) -> None:
        """Score the sub-networks of ``archs`` not scored yet (each once, in their order); ``then``: those the
        search will ask for next, for ``upcoming``."""
        missing = list(dict.fromkeys(a for a in archs if str(a) not in self.cache))
        if not missing:
            return
        if self.upcoming is not None:
            self.upcoming([a for a in dict.fromkeys(then or []) if str(a) not in self.cache and a not in missing])
        values = self.score_many(missing) if self.score_many else [self.score(a) for a in missing]
        for arch, value in zip(missing, values):
            self.cache[str(arch)] = value
        self.evaluated += len(missing)

    def key(self, value: float) -> float:
        """Sort key: smaller is better."""
        return -value if self.higher_is_better else value

    def smallest(self) -> Arch:
        return Arch.smallest(self.space)


class NothingFits(ValueError):
    pass


def _check_feasible(problem: SearchProblem) -> None:
    smallest = problem.smallest()
    if problem.refusal is not None:
        if not problem.fits(smallest):
            raise NothingFits(problem.refusal(smallest))
        return
    if not problem.within_macs(smallest):
        raise NothingFits(f"no sub-network fits in the budget of {problem.budget / 1e9:.4g}G MACs: the smallest, "
                          f"{smallest}, needs {problem.macs(smallest) / 1e9:.4g}G; raise the budget "
                          "or lower the target ratio")
    if not problem.fits(smallest) and problem.measured is not None:
        raise NothingFits(f"no sub-network fits in the latency budget of {problem.measured_limit}: the smallest, "
                          f"{smallest}, does not meet it; raise the budget")
    if not problem.fits(smallest):
        raise NothingFits(f"no sub-network fits in the latency budget of {problem.latency_budget_ms:.4g} ms: the "
                          f"smallest, {smallest}, is predicted to take {problem.latency(smallest):.4g} ms; raise "  # type: ignore[misc]
                          "search.latency_budget_ms")


def exhaustive_search(problem: SearchProblem,
                      on_candidate: Callable[[int, int, Arch, float], None] | None = None) -> tuple[Arch, float]:
    """Every sub-network within the budget, scored; ``on_candidate(done, total, best_arch, best_value)``
    after each (``total``: how many fit, counted first from the closed-form MACs; ``best_value`` None while no
    candidate measured so far is within a budget decided on measurement)."""
    _check_feasible(problem)
    fitting = [arch for arch in (Arch(values) for values in itertools.product(*problem.space))
               if problem.drawable(arch)]
    best: tuple[Arch, float] | None = None
    lazy = problem.measures_kept
    for done, arch in enumerate(fitting, 1):
        if (done - 1) % problem.chunk == 0:
            problem.prefetch(fitting[done - 1:done - 1 + problem.chunk],
                             then=fitting[done - 1 + problem.chunk:done - 1 + 2 * problem.chunk])
        value = problem.evaluate(arch)
        if not lazy and (best is None or problem.key(value) < problem.key(best[1])):
            best = (arch, value)
        if on_candidate and not (lazy and done == len(fitting)):
            on_candidate(done, len(fitting), *(best or (arch, None)))
    if lazy:  # every one scored: measured in order of score until one is within the budget
        ranked = sorted(fitting, key=lambda a: problem.key(problem.evaluate(a)))
        kept = (problem.best_keepable(ranked, 1) or [problem.smallest()])[0]  # the smallest fits: checked first
        best = (kept, problem.evaluate(kept))
        if on_candidate and fitting:
            on_candidate(len(fitting), len(fitting), *best)
    assert best is not None
    return best


def sample_weights(choices: tuple[int, ...], weighted_sample: float,
                   strategy: str = "arithmetic") -> list[float] | None:
    """The reference's weights for the first generation (``configs/channel_configs.py``): with
    ``weighted_sample`` w > 1 the choices, widest first, get weights (n-1)/(w-1), +1, +2, ... (``arithmetic``)
    or 1, w, w^2, ... (``geometric``), so narrow widths are drawn more often (a tight budget rejects fewer
    samples); w = 1 draws uniformly."""
    if weighted_sample <= 1.0001:
        return None
    if strategy == "geometric":
        return [weighted_sample ** i for i in range(len(choices))]
    if strategy != "arithmetic":
        raise ValueError(f"weight strategy must be arithmetic or geometric, not {strategy!r}")
    start = (len(choices) - 1) / (weighted_sample - 1)
    return [start + i for i in range(len(choices))]


def _random_fitting(problem: SearchProblem, rng: random.Random, weighted_sample: float = 1.0,
                    weight_strategy: str = "arithmetic", tries: int = 2000) -> Arch:
    space = [tuple(sorted(c, reverse=True)) for c in problem.space]
    weights = [sample_weights(c, weighted_sample, weight_strategy) for c in space]
    for _ in range(tries):
        arch = Arch(tuple(rng.choices(c, weights=w)[0] for c, w in zip(space, weights)))
        if problem.drawable(arch):
            return arch
    # The budget is tight: the smallest arch fits, so shrink a random arch position by position.
    values = [rng.choice(c) for c in space]
    for i in rng.sample(range(len(values)), len(values)):
        values[i] = min(space[i])
        if problem.drawable(Arch(tuple(values))):
            break
    return Arch(tuple(values))


def _child(problem: SearchProblem, rng: random.Random, make, tries: int = 1000) -> Arch:
    """A child from ``make()`` that fits the budget (the reference retries until one does; after
    ``tries`` a budget this tight gets a fresh random sample instead)."""
    for _ in range(tries):
        child = make()
        if problem.drawable(child):
            return child
    return _random_fitting(problem, rng)


def _children(problem: SearchProblem, rng: random.Random, parents: list[Arch], population: int, n_mutants: int,
              mutation_prob: float) -> list[Arch]:
    """A generation's ``n_mutants`` mutants of random parents, then crossovers of two up to ``population``."""
    children: list[Arch] = []
    for _ in range(n_mutants):
        parent = rng.choice(parents)
        children.append(_child(problem, rng, lambda p=parent: Arch(tuple(
            rng.choice(c) if rng.random() < mutation_prob else v for v, c in zip(p.values, problem.space)))))
    for _ in range(population - n_mutants):
        a, b = rng.choice(parents), rng.choice(parents)
        children.append(_child(problem, rng, lambda a=a, b=b: Arch(tuple(
            rng.choice(pair) for pair in zip(a.values, b.values)))))
    return children


def evolutionary_search(problem: SearchProblem, *, population: int, generations: int, parent_ratio: float,
                        mutation_ratio: float, mutation_prob: float, rng: random.Random, weighted_sample: float = 1.0,
                        weight_strategy: str = "arithmetic",
                        on_generation: Callable[[int, Arch, float], None] | None = None,
                        on_member: Callable[[int, int, float], None] | None = None) -> tuple[Arch, float]:
    """The reference's evolution: a first generation of ``population`` random sub-networks within the
    budget; then each generation keeps the best ``parent_ratio`` of it as parents and adds
    ``mutation_ratio * population`` mutants (each position resampled with ``mutation_prob``) and
    ``population - mutants`` crossovers of two parents, children over the budget redrawn. Measuring only what
    is kept (``prefilter``), parents are the best members measured within the budget (``on_member``'s best too)."""
    _check_feasible(problem)
    population = min(population, problem.grid_size())  # never more members than there are sub-networks
    members = [_random_fitting(problem, rng, weighted_sample, weight_strategy) for _ in range(population)]
    n_parents = max(1, int(round(population * parent_ratio)))
    n_mutants = int(round(population * mutation_ratio))
    best: tuple[Arch, float] | None = None

    def consider(arch: Arch) -> None:
        nonlocal best
        value = problem.evaluate(arch)
        if (best is None or problem.key(value) < problem.key(best[1])) and problem.keepable(arch):
            best = (arch, value)

    # Progress by member: the first generation, then each generation's ``population`` children (the final
    # pass only ranks the last ones); a member scored before (a duplicate, a resumed search) counts too.
    total = population * (generations + 1)
    visited = 0
    best_seen: float | None = None

    def visit(archs: list[Arch]) -> None:
        nonlocal visited, best_seen
        for position, arch in enumerate(archs):
            # A round at a time (one sub-network per process), in the generation's order: progress is reported
            # as members are scored, not once a whole generation is (minutes at the paper's sizes).
            if position % problem.chunk == 0:
                problem.prefetch(archs[position:position + problem.chunk],
                                 then=archs[position + problem.chunk:position + 2 * problem.chunk])
            value = problem.evaluate(arch)
            visited += 1
            if problem.measures_kept:  # the best measured within the budget, as of the last ranking
                best_seen = None if best is None else best[1]
            elif best_seen is None or problem.key(value) < problem.key(best_seen):
                best_seen = value
            if on_member:
                on_member(visited, total, best_seen)

    visit(members)
    for generation in range(generations):
        ranked = sorted(members, key=lambda a: problem.key(problem.evaluate(a)))
        # Measured (where measuring waits for what is kept) in order of score, until enough are within budget.
        parents = problem.best_keepable(ranked, n_parents) or [problem.smallest()]
        consider(parents[0])
        if on_generation:
            on_generation(generation, *best)  # type: ignore[misc]
        children = _children(problem, rng, parents, population, n_mutants, mutation_prob)
        # The children are scored in this order, before the next generation's ranking (or the final pass).
        visit(children)
        members = parents + children
    for arch in sorted(members, key=lambda a: problem.key(problem.evaluate(a))):
        consider(arch)  # best first: where measuring waits for what is kept, few are measured
    return best  # type: ignore[return-value]
