"""Stage ``search``: score sub-networks of the supernet (shared weights, no retraining) on held-out
training images and keep the best under the budget (MACs, predicted latency or both). Every scored
candidate goes to the store and out as an event at once; a resumed search reuses what the store holds and
never scores an arch twice. On several processes each scores its share of every round of candidates and
the scores are gathered, so every process takes the same decisions."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import time
from typing import Any

import torch
from torch import nn

from engine.arch import Arch
from engine.errors import ConfigError
from engine.events import CandidateScored
from engine.families.capabilities import calibrate
from engine.files import write_text_atomic
from engine.measured_budget import MeasuredBudget
from engine.preflight import nothing_fits, resolved_budget
from engine.search import NothingFits, SearchProblem, choose_method, evolutionary_search, exhaustive_search
from engine.stages.context import Cancelled, StageContext
from engine.stages.data import RunData
from engine.stages.evaluate import Scorer, generate, make_scorer
from engine.stages.generation import CandidateGenerator, GenerationChoice, choose_generation
from engine.stages.latency_budget import RunLatency, measured_budget, run_latency
from engine.stages.resources import TEACHER_REFERENCE, load_supernet, load_teacher, teacher_reference
from engine.store import CandidateRecord


def report_candidate(ctx: StageContext, record: CandidateRecord, metric: str) -> None:
    """Send a scored candidate out at once (the store records it from the event, in batches)."""
    ctx.events(CandidateScored(run_id=ctx.run_id, arch=record.arch, macs=record.macs, params=record.params,
                               metrics=record.metrics, latency_ms=record.latency_ms, metric=metric,
                               measured_ms=record.measured_ms))


SPLIT_FILE = "search_split.json"


def split_fingerprint(data: RunData) -> str:
    """A digest of the held-out inputs and targets as the search scores them (their pixels, exactly)."""
    digest = hashlib.sha256()
    for tensor in (data.search_inputs, data.search_targets, *data.search_conditioning):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def forget_stale_scores(ctx: StageContext, data: RunData) -> None:
    """Drop the stored scores of an interrupted search whose held-out images have changed since (the dataset
    edited, another split drawn): scores on other images must not compete with new ones."""
    path = ctx.stage_dir / SPLIT_FILE
    now = split_fingerprint(data)
    try:
        before = json.loads(path.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        before = None
    if before is not None and before != now:
        dropped = ctx.store.forget_candidates(ctx.run_id)
        ctx.message(f"search: the held-out images changed since the interrupted search scored {dropped} "
                    "candidate(s); their scores are dropped and every candidate is scored on the images as they are "
                    "now", level="warning")
    write_text_atomic(path, json.dumps({"fingerprint": now, "images": len(data.search_inputs)}))


def measured_result(measured: MeasuredBudget | None, best: Arch, world) -> dict[str, Any]:
    """What the result says of a measured latency budget: the kept student's measurement and how it was taken,
    its measured speed-up over the teacher, and what the measuring cost."""
    found = None
    if measured is not None:
        reading = measured.measure(best)
        found = {"latency_decision": "measured",
                 "latency_measured": {**reading.as_dict(), "how": reading.how(),
                                      "speedup_over_teacher": measured.speedup_of(best)},
                 "measurements": {"taken": measured.measured, "reused": len(measured.cache) - measured.measured,
                                  "refused_on_prediction": measured.refused_on_prediction,
                                  "seconds": round(measured.seconds, 2), "limit_ms": measured.limit_ms(),
                                  "teacher_ms": measured.baseline.teacher_ms,
                                  "reference_ms": measured.baseline.reference_ms}}
    return world.broadcast(found)


def scored_teacher(ctx: StageContext, data: RunData, scorer: Scorer, macs: float) -> dict[str, float]:
    """The teacher's scores on the search split: as its search wrote them when it started (a resumed search), else
    scored and written now, on rank 0; every rank gets them."""
    scores = None
    if ctx.world.is_main:
        written = teacher_reference(ctx.run_dir)
        if written is not None:
            scores = written.metrics
        else:
            teacher, _ = load_teacher(ctx)
            scores = scorer.all(generate(teacher, data.search_inputs, ctx.device, data.search_conditioning))
            del teacher
            write_text_atomic(ctx.stage_dir / TEACHER_REFERENCE,
                              json.dumps({"macs": macs, "metrics": scores, "split": "search"}))
    return ctx.world.broadcast(scores)


def stored_scores(ctx: StageContext, data: RunData,
                  scorer: Scorer) -> tuple[dict[str, float], dict[str, CandidateRecord]]:
    """Scores already in the store (an earlier, interrupted search), reused as they are if they were taken on the
    same held-out images (else dropped, and the search scores again, saying so); every rank gets them. With them,
    on rank 0, their records (a measurement taken later is written onto its candidate)."""
    cache: dict[str, float] = {}
    records: dict[str, CandidateRecord] = {}
    if ctx.world.is_main:
        forget_stale_scores(ctx, data)
        stored = ctx.store.candidate_table(ctx.run_id)
        values = stored.metrics.get(scorer.metric)
        if values is not None:
            for index, (arch, value) in enumerate(zip(stored.archs, values)):
                if not math.isnan(value):
                    cache[arch] = float(value)
                    row = stored.row(index)
                    records[arch] = CandidateRecord(arch, row["macs"], row["params"], row["metrics"],
                                                    row["latency_ms"], row["measured_ms"])
    return ctx.world.broadcast(cache), records


class Candidates:
    """How the search scores sub-networks of the supernet and reports each: its MACs and parameters, its scores
    on the held-out images (one sub-network per process and round, gathered on every process), its predicted and
    measured latency, and whether it meets a budget decided on measurement."""

    def __init__(self, ctx: StageContext, data: RunData, supernet: nn.Module, scorer: Scorer,
                 latency: RunLatency | None, measured: MeasuredBudget | None,
                 stored: tuple[dict[str, float], dict[str, CandidateRecord]], generation: GenerationChoice) -> None:
        self.ctx, self.data, self.supernet, self.scorer = ctx, data, supernet, scorer
        self.generate = CandidateGenerator(supernet, ctx.device, generation)
        self.latency, self.measured = latency, measured
        self.cache, self.records = stored  # records: rank 0's, as reported (a later measurement is added to one)
        self.family, self.options = ctx.config.family_impl, ctx.config.options
        self._params: dict[Arch, int] = {}
        self._upcoming: list[Arch] = []

    def macs(self, arch: Arch) -> int:
        return self.family.macs(arch, self.options, self.ctx.config.size_hw)

    def params(self, arch: Arch) -> int:
        if arch not in self._params:
            self._params[arch] = self.family.params(arch, self.options)
        return self._params[arch]

    def metrics_of(self, arch: Arch, then: Arch | None = None) -> dict[str, float]:
        """``arch``'s scores; with ``then`` (this process's next sub-network), its set-up is started while
        ``arch``'s images are scored (``CandidateGenerator.prepare``)."""
        inputs, conditioning = self.data.search_inputs, self.data.search_conditioning
        images = self.generate(arch, inputs, conditioning, before=lambda: self._calibrate(arch))
        if then is not None:
            self.generate.prepare(then, (inputs, *conditioning), before=lambda: self._calibrate(then))
        return self.scorer.all(images)

    def _calibrate(self, arch: Arch) -> None:
        calibrate(self.family, self.supernet, arch, self.data, self.options)

    def expect(self, archs: list[Arch]) -> None:
        """The sub-networks the search will most likely score after the ones it asks for now (its next round)."""
        self._upcoming = list(archs)

    def measured_ms(self, arch: Arch) -> float | None:
        """The sub-network's end-to-end latency where the budget was decided on it and it has been measured (before
        it was scored with ``search.measure: drawn``; with ``kept``, when the search would keep it)."""
        found = self.measured.cache.get(str(arch)) if self.measured is not None else None
        return None if found is None else found.ms

    def record(self, arch: Arch, metrics: dict[str, float]) -> CandidateRecord:
        return CandidateRecord(str(arch), self.macs(arch), self.params(arch), metrics,
                               self.latency(arch) if self.latency else None, self.measured_ms(arch))

    def score_many(self, archs: list[Arch]) -> list[float]:
        """Rounds of one sub-network per rank, the scores gathered on every rank; rank 0 reports them all
        in order (the store gets each once); a stop asked on any rank ends the search between rounds."""
        world, values = self.ctx.world, []
        upcoming, self._upcoming = self._upcoming, []
        rounds = [archs[start:start + world.size] for start in range(0, len(archs), world.size)]
        # This process's sub-networks in the order it scores them (one a round at most), then its one of the round
        # the search will ask for next: each one's successor is set up while it is scored.
        queue = [arch for round_ in rounds for arch in world.shard(round_)] + world.shard(upcoming[:world.size])
        done = 0
        for round_ in rounds:
            if world.any(self.ctx.cancel_requested()):
                self.generate.settle()
                raise Cancelled(f"search stopped; {len(self.cache)} scored candidates are kept in the store; "
                                f"resume with: python main.py resume {self.ctx.run_id}")
            scored = []
            for arch in world.shard(round_):
                done += 1
                scored.append(self.metrics_of(arch, queue[done] if done < len(queue) else None))
            gathered = world.gather(scored)
            for position, arch in enumerate(round_):
                metrics = gathered[position % world.size][position // world.size]
                record = self.record(arch, metrics)
                if world.is_main:
                    self.records[str(arch)] = record
                report_candidate(self.ctx, record, self.scorer.metric)
                values.append(metrics[self.scorer.metric])
        return values

    def fits_measured(self, arch: Arch) -> bool:
        """Rank 0 measures; every rank takes its decision, in the same order, so all search alike. A candidate
        scored before it was measured (``search.measure: kept``) is reported again with its measurement."""
        self.generate.settle()  # a set-up started ahead reads the supernet: done before it is measured
        fits = self.measured.fits(arch) if self.measured is not None else None
        self._add_measurement(arch)
        return self.ctx.world.broadcast(fits)

    def passes_prefilter(self, arch: Arch) -> bool:
        """The measured budget's pre-filter alone (rank 0's table), for every rank."""
        return self.ctx.world.broadcast(self.measured.drawable(arch) if self.measured is not None else None)

    def _add_measurement(self, arch: Arch) -> None:
        record, ms = self.records.get(str(arch)), self.measured_ms(arch)
        if record is not None and ms is not None and record.measured_ms != ms:
            self.records[str(arch)] = record = dataclasses.replace(record, measured_ms=ms)
            report_candidate(self.ctx, record, self.scorer.metric)  # the store and the window replace its row


#: Held-out images the generation backends are compared and timed on before a search scores anything.
PROBE_IMAGES = 8


def generation_backend(ctx: StageContext, data: RunData, supernet: nn.Module, scorer: Scorer) -> GenerationChoice:
    """Where this search generates its candidates' images (``engine.stages.generation``), decided on rank 0 with
    the space's middle sub-network as the probe, the same on every rank. The middle, not the smallest: a search
    scores sub-networks across the space, and the smallest, where OpenVINO's per-candidate set-up weighs most,
    sent a 256 px CycleGAN search to PyTorch on one run of two (its OpenVINO lead within the timing's noise there),
    where each typical candidate then took 3 s longer; a wrong choice the other way costs at most a set-up."""
    choice = None
    if ctx.world.is_main:
        config = ctx.config
        probe = Arch.middle(config.search_space())
        count = min(PROBE_IMAGES, len(data.search_inputs))
        with torch.random.fork_rng(devices=[]):  # the run's random stream is as it would be without the probe
            calibrate(config.family_impl, supernet, probe, data, config.options)
            choice = choose_generation(supernet, probe, data.search_inputs[:count],
                                       tuple(c[:count] for c in data.search_conditioning),
                                       config.search.scoring_backend, ctx.device, scorer.primary,
                                       len(data.search_inputs))
        if choice.backend == "pytorch" and config.search.scoring_backend == "openvino":
            ctx.message(f"{choice.note}; PyTorch is used", level="warning")
    return ctx.world.broadcast(choice)


def backend_words(generation: GenerationChoice, scorer: Scorer) -> str:
    return "; ".join(note for note in (scorer.backend_note, generation.note) if note)


def _announce(ctx: StageContext, problem: SearchProblem, method: str, limits: list[str], teacher: str,
              reused: int, metric: str, backends: str) -> None:
    spec = ctx.config.search
    if spec.method == "evolution" and method == "exhaustive":
        ctx.message(f"search: an evolution of {spec.population} x {spec.generations + 1} members would visit more than "
                    f"the {problem.grid_size()} sub-networks of the space; every one within the budget is scored "
                    "once instead (exhaustive)", level="warning")
    ctx.message(f"search: {method} over {problem.grid_size()} sub-networks, budget {' and '.join(limits)} "
                f"({teacher}), metric {metric} on the search split; {reused} scores reused; {backends}")


def _search(ctx: StageContext, problem: SearchProblem, method: str, metric: str) -> tuple[Arch, float]:
    """The best sub-network within the budget, by ``method``, with progress per candidate and the best score so
    far (the total comes with the first: the sub-networks within the budget, or the members an evolution visits)."""
    config, recipe = ctx.config, ctx.config.resolved_recipe

    def report(done: int, total: int, best_value: float | None) -> None:
        if done == 1:
            ctx.begin(total)
        # No best before a candidate is known to be within the budget (measured, where that waits for the best).
        ctx.progress(done, total, {} if best_value is None else {f"best_{metric}": best_value})

    try:
        if method == "exhaustive":
            return exhaustive_search(problem, on_candidate=lambda done, total, _arch, value: report(done, total, value))
        spec = config.search
        return evolutionary_search(
            problem, population=spec.population, generations=spec.generations, parent_ratio=recipe.parent_ratio,
            mutation_ratio=recipe.mutation_ratio, mutation_prob=recipe.mutation_prob,
            weighted_sample=recipe.weighted_sample, weight_strategy=recipe.weight_strategy,
            rng=random.Random(spec.evolution_seed(config.seed)), on_member=report)
    except NothingFits as exc:
        raise ConfigError(str(exc)) from None


def run(ctx: StageContext, data: RunData) -> dict[str, Any]:
    config, world = ctx.config, ctx.world
    supernet, _, _ = load_supernet(ctx)
    scorer = make_scorer(ctx, data, "search")
    resolved = resolved_budget(config, ctx.run_dir)  # as the run's pre-flight resolved it
    reference, budget, latency_budget = resolved.teacher_macs, resolved.macs, resolved.latency_ms
    latency = run_latency(ctx) if config.search.predicts_latency else None
    measured = measured_budget(ctx, latency) if config.search.measures_latency and world.is_main else None
    teacher_scores = scored_teacher(ctx, data, scorer, reference)
    generation = generation_backend(ctx, data, supernet.eval(), scorer)
    backends = backend_words(generation, scorer)
    candidates = Candidates(ctx, data, supernet, scorer, latency, measured, stored_scores(ctx, data, scorer), generation)
    measures_kept = config.search.measures_latency and config.search.measure == "kept"
    reused = len(candidates.cache)
    limit_words = world.broadcast(measured.describe() if measured is not None else None)
    problem = SearchProblem(space=config.search_space(), macs=candidates.macs,
                            score=lambda arch: candidates.score_many([arch])[0], budget=budget,
                            higher_is_better=scorer.higher_is_better, cache=candidates.cache, latency=latency,
                            latency_budget_ms=latency_budget, score_many=candidates.score_many, chunk=world.size,
                            upcoming=candidates.expect,
                            measured=candidates.fits_measured if config.search.measures_latency else None,
                            measured_limit=limit_words or "",
                            prefilter=candidates.passes_prefilter if measures_kept else None,
                            refusal=lambda smallest: nothing_fits(
                                config, resolved, smallest, candidates.macs(smallest),
                                latency(smallest) if latency else None, latency.conditions() if latency else "",
                                limit_words if config.search.measures_latency else None))
    method = choose_method(config.search, problem.grid_size())
    limits = ([] if budget is None else [f"{budget / 1e6:.1f}M MACs"]) + \
        ([] if latency_budget is None else [f"{latency_budget:g} ms predicted on {latency.conditions()}"]) + \
        ([] if limit_words is None else [f"{limit_words} ({config.search.latency_backend})"])  # type: ignore[union-attr]
    _announce(ctx, problem, method, limits, f"teacher {reference / 1e6:.1f}M MACs, {scorer.metric} "
              f"{teacher_scores[scorer.metric]:.4g}", reused, scorer.metric, backends)
    started = time.monotonic()
    try:
        best_arch, best_value = _search(ctx, problem, method, scorer.metric)
    finally:
        candidates.generate.close()  # a set-up started ahead for a round that never came
    seconds = time.monotonic() - started
    result = {"arch": str(best_arch), "metric": scorer.metric, "split": "search", "value": best_value,
              "macs": candidates.macs(best_arch), "params": candidates.params(best_arch), "budget_macs": budget,
              "teacher_macs": reference, "teacher_metrics": teacher_scores, "method": method,
              "scored": problem.evaluated, "reused": reused, "seconds": seconds, "scoring_backend": backends,
              "set_up_ahead": candidates.generate.ahead,  # candidates whose OpenVINO set-up overlapped a scoring
              "candidates_per_second": problem.evaluated / seconds if seconds > 0 else None,
              "latency_budget_ms": latency_budget,
              "latency_ms": latency(best_arch) if latency else None,  # predicted
              "latency": latency.card() if latency else None}
    if config.search.measures_latency:
        result.update(measured_result(measured, best_arch, world))
    predicted = f", predicted {result['latency_ms']:.3g} ms" if latency else ""
    if result.get("latency_measured"):
        predicted += f", {result['latency_measured']['how']}"
    ctx.message(f"search: best {best_arch} with {scorer.metric} {best_value:.4g} (search split) at "
                f"{result['macs'] / 1e6:.1f}M MACs{predicted}; {problem.evaluated} scored in {seconds:.1f}s")
    return result
