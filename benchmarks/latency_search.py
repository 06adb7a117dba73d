"""Search by predicted latency against search by MACs, at equal latency, on one trained supernet: which
student scores better when both must be as fast, and how fast each really is. Writes the table into
docs/benchmarks.md.

    python benchmarks/latency_search.py [--workspace WS --run N] [--preset pix2pix-sample] [--seeds 3]
                                        [--population 40] [--generations 8] [--ratio 10] [--threads N]

Without ``--run``, a run of ``--preset`` is made in ``--workspace`` (a temporary folder by default) and
stopped after its supernet stage (minutes). Then, for each seed:
1. the reference's evolutionary search under the MACs budget (teacher MACs / ``--ratio``): student M;
2. the same search under a latency budget: M's own predicted latency (from the run's latency table on this
   machine, ``engine.latency_table``), so that the table's bias is the same for both: student L.
Both are scored on the search split (supernet weights, no fine-tuning, as the search sees them) and on the
test split, and measured end to end together (interleaved rounds, ``engine.latency``). One cache of scores
serves every search, so a sub-network is scored once.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import parse_timing_args, publish  # noqa: E402
from engine.models.elastic import subnet_of


def main() -> int:
    from engine.arch import Arch
    from engine.config import RunConfig, load_config
    from engine.families.capabilities import calibrate
    from engine.latency import measure
    from engine.pipeline import create_run, execute, run_dir
    from engine.search import SearchProblem, evolutionary_search
    from engine.settings import Settings
    from engine.stages.context import Cancelled, StageContext
    from engine.stages.data import prepare_data
    from engine.stages.evaluate import generate, make_scorer
    from engine.stages.latency_budget import run_latency
    from engine.preflight import teacher_macs
    from engine.stages.supernet import load_supernet
    from engine.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--run", type=int, default=None, help="a run in the workspace with a trained supernet")
    parser.add_argument("--preset", default="pix2pix-sample")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--population", type=int, default=40)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--ratio", type=float, default=10.0, help="the MACs budget: teacher MACs / this")
    args = parse_timing_args(parser)
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="gcw-latency-search-"))
    settings = Settings(workspace=workspace)
    store = open_store(settings.resolved_store_url)

    def quiet(event) -> None:
        pass

    if args.run is None:
        config = load_config(args.preset)
        args.run = create_run(config, store, settings)
        print(f"training run {args.run} ({args.preset}) up to its supernet in {workspace}…", flush=True)
        started = time.perf_counter()
        try:
            execute(args.run, settings, store, quiet, lambda: False, stop_after="supernet")
        except Cancelled:
            pass  # stopped after the supernet, as asked
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    config = RunConfig.model_validate(store.get_run(args.run).config)
    latency_config = config.model_copy(update={"search": config.search.model_copy(update={"predict_latency": True})})
    device = torch.device("cpu")
    ctx = StageContext(run_id=args.run, stage="latency-benchmark", config=latency_config, settings=settings,
                       store=store, run_dir=run_dir(settings, args.run), events=quiet, cancel_requested=lambda: False,
                       device=device)
    data = prepare_data(config, settings, quiet)
    supernet, _, _ = load_supernet(ctx)
    supernet.eval()
    family, options = config.family_impl, config.options
    search_scorer, test_scorer = make_scorer(ctx, data, "search"), make_scorer(ctx, data, "test")
    started = time.perf_counter()
    latency = run_latency(ctx)
    table_s = time.perf_counter() - started
    reference = teacher_macs(config)
    macs_budget = reference / args.ratio
    space = config.search_space()
    cache: dict[str, float] = {}
    recipe = config.resolved_recipe

    def score(arch: Arch, scorer=search_scorer, inputs=None) -> float:
        calibrate(family, supernet, arch, data, config.options)
        outputs = generate(lambda x: supernet(x, arch), data.search_inputs if inputs is None else inputs, device)
        return scorer.all(outputs)[scorer.metric]

    def macs(arch: Arch) -> int:
        return family.macs(arch, options, config.size_hw)

    def search(seed: int, budget: float | None, latency_budget: float | None) -> tuple[Arch, float]:
        problem = SearchProblem(space=space, macs=macs, score=score, budget=budget,
                                higher_is_better=search_scorer.higher_is_better, cache=cache,
                                latency=latency, latency_budget_ms=latency_budget)
        return evolutionary_search(problem, population=args.population, generations=args.generations,
                                   parent_ratio=recipe.parent_ratio, mutation_ratio=recipe.mutation_ratio,
                                   mutation_prob=recipe.mutation_prob, weighted_sample=recipe.weighted_sample,
                                   rng=random.Random(seed))

    example = family.example_inputs(options, config.size_hw)
    rows, wins, faster_or_equal = [], 0, 0
    metric, higher = search_scorer.metric, search_scorer.higher_is_better
    for seed in range(args.seeds):
        by_macs, macs_value = search(seed, macs_budget, None)
        by_latency, latency_value = search(seed, None, latency(by_macs))
        nets = {name: subnet_of(supernet, arch).eval() for name, arch in (("macs", by_macs), ("latency", by_latency))}

        def runner(net):
            def run() -> None:
                with torch.no_grad():
                    net(*example)
            return run

        reading = measure({name: runner(net) for name, net in nets.items()}, device=device, time_cap_s=20.0)
        ratio = reading.ratios["macs/latency"].median_ms
        test = {name: score(arch, test_scorer, data.test_inputs) for name, arch in (("macs", by_macs),
                                                                                    ("latency", by_latency))}
        better = latency_value > macs_value if higher else latency_value < macs_value
        wins += better or latency_value == macs_value
        faster_or_equal += ratio >= 0.98
        for name, arch, value in (("MACs", by_macs, macs_value), ("latency", by_latency, latency_value)):
            key = "macs" if name == "MACs" else "latency"
            rows.append(f"| {seed} | {name} | `{arch}` | {macs(arch) / 1e6:.1f}M | {latency(arch):.2f} | "
                        f"{reading.timings[key].median_ms:.2f} | {value:.4g} | {test[key]:.4g} |")
        rows.append(f"| {seed} | | | | | MACs/latency per round: {ratio:.3f} | "
                    f"{latency_value - macs_value:+.3g} | {test['latency'] - test['macs']:+.3g} |")
        print("\n".join(rows[-3:]), flush=True)
    table = latency.table
    height, width = config.size_hw
    text = "\n".join([
        "## Search by latency vs search by MACs, at equal latency",
        "",
        f"Measured by `python benchmarks/latency_search.py --preset {args.preset} --seeds {args.seeds} "
        f"--population {args.population} --generations {args.generations} --ratio {args.ratio:g}` on "
        f"{platform.platform()}, {torch.get_num_threads()} threads, PyTorch {torch.__version__}, CPU, batch 1, "
        f"{width}x{height}. One supernet (run of the `{args.preset}` preset, {config.supernet.steps} steps); the "
        f"reference's evolution ({args.population} x {args.generations + 1} members) under {macs_budget / 1e6:.1f}M "
        f"MACs (teacher {reference / 1e6:.1f}M / {args.ratio:g}) gives student M; the same evolution under M's "
        f"predicted latency gives student L. Latency table: {len(table.layers)} layers, fitted on "
        f"{len(table.calibration)} sub-networks ({table_s:.0f} s, including the split predictor). {metric} "
        f"({'higher' if higher else 'lower'} is better) of the supernet's sub-networks as the search sees them "
        f"(no fine-tuning); {len(cache)} distinct sub-networks scored in all.",
        "",
        f"L scores at least as well as M on the search split in {wins} of {args.seeds} seeds, and is at least as "
        f"fast measured (per-round ratio >= 0.98) in {faster_or_equal} of {args.seeds}.",
        "",
        f"| seed | searched by | sub-network | MACs | predicted (ms) | measured (ms) | {metric} (search) | "
        f"{metric} (test) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    publish(args.output, "latency-search", text)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
