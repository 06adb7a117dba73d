"""The store and the workbench at the paper's scale: fill a store with synthetic runs through the real write
path, then measure what a user waits for, and write the figures into docs/benchmarks.md.

    python benchmarks/store_scale.py [--runs 10] [--candidates 100000] [--steps 400000] [--log-every 10]
                                     [--workspace DIR] [--output docs/benchmarks.md]

The store gets ``--runs`` runs of ``--candidates`` scored candidates each (written as the search writes them:
``Store.add_candidates`` in the batches of ``engine.recorder.StoreRecorder``), and one run whose supernet trained
``--steps`` steps with 6 loss series recorded every ``--log-every`` steps (``Store.record_metrics``, as a
stage does). Then, on this machine, in one process:

- store: ``list_runs`` (the runs list refresh), ``candidate_table`` (opening a run's candidates),
  ``runs --json`` (the CLI, in process), one candidate by arch, write cost per candidate batched vs one by one;
- GUI (Qt offscreen): opening the Pareto view on one run, GUI-thread CPU per arriving candidate at 20 per
  second, hover/click lookup, overlays of 3 runs, the monitor's loss curves, and the main window's longest
  event-loop gap while candidates arrive at 20 per second and the runs list refreshes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from sections import write_section  # noqa: E402

CHOICES = (8, 16, 24, 32, 40, 48, 56, 64)
LOSSES = ("G_gan", "G_distill", "G_recon", "D_real", "D_fake", "G_total")


def _median_ms(function, repeats: int) -> tuple[float, float]:
    """(median, max) wall time of ``function()`` in ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def _archs(rng: random.Random, count: int) -> list[str]:
    seen: set[str] = set()
    while len(seen) < count:
        seen.add("_".join(str(rng.choice(CHOICES)) for _ in range(8)))
    return list(seen)


def _records(rng: random.Random, archs: list[str]):
    from engine.store import CandidateRecord

    records = []
    for arch in archs:
        widths = [int(w) for w in arch.split("_")]
        macs = int(sum(w * w for w in widths) * 40_000 + rng.randrange(1_000_000))
        # A front that flattens towards large sub-networks, with the spread of a real search around it.
        fid = 25.0 + 80.0 * math.exp(-macs / 4e8) + abs(rng.gauss(0, 8))
        records.append(CandidateRecord(arch, macs, sum(widths) * 1000, {"fid": fid, "psnr_to_teacher": 40 - fid / 10}))
    return records


def fill(store, runs: int, candidates: int, steps: int, log_every: int) -> dict:
    from engine.recorder import StoreRecorder

    batch = StoreRecorder.__init__.__kwdefaults__["batch"]  # the batch the store records candidates in
    rng = random.Random(0)
    run_ids, written, seconds = [], 0, 0.0
    for index in range(runs):
        run_id = store.create_run(name=f"search-{index}", family="cyclegan", dataset="synthetic", config={},
                                  stages=["teacher", "supernet", "search", "finetune", "export"])
        records = _records(rng, _archs(rng, candidates))
        start = time.perf_counter()
        for offset in range(0, len(records), batch):
            store.add_candidates(run_id, records[offset:offset + batch], metric="fid")
        seconds += time.perf_counter() - start
        written += len(records)
        run_ids.append(run_id)
        print(f"  run {run_id}: {len(records)} candidates", flush=True)
    loss_run = store.create_run(name="long-training", family="cyclegan", dataset="synthetic", config={},
                                stages=["teacher", "supernet", "search", "finetune", "export"])
    start = time.perf_counter()
    for step in range(log_every, steps + 1, log_every):
        decay = 1.0 / (1.0 + step / 50_000)
        store.record_metrics(loss_run, "supernet", step, {name: decay * (1 + k) + rng.random() * 0.1
                                                           for k, name in enumerate(LOSSES)})
    loss_seconds = time.perf_counter() - start
    print(f"  run {loss_run}: {steps} steps x {len(LOSSES)} series", flush=True)
    return {"run_ids": run_ids, "loss_run": loss_run, "batch": batch,
            "write_candidates_per_s": written / seconds, "record_metrics_per_s": (steps // log_every) / loss_seconds}


def measure_store(store, settings, filled: dict) -> dict:
    from engine.cli import main as cli_main
    from engine.store import CandidateRecord

    big = filled["run_ids"][0]
    results = {}
    results["list_runs_ms"] = _median_ms(store.list_runs, 30)
    results["candidate_table_ms"] = _median_ms(lambda: store.candidate_table(big), 5)
    arch = store.list_runs()[-1].best_arch

    def cli() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            cli_main(["--workspace", str(settings.workspace), "runs", "--json"])

    results["cli_runs_json_ms"] = _median_ms(cli, 5)
    results["candidate_by_arch_ms"] = _median_ms(lambda: store.candidate(big, arch), 50)
    results["curves_full_ms"] = _median_ms(lambda: store.curves(filled["loss_run"], "supernet"), 10)
    results["curves_zoomed_ms"] = _median_ms(
        lambda: store.curves(filled["loss_run"], "supernet", start=200_000, stop=210_000), 10)
    # The search's write path on a run that already holds 10^5 candidates: batched vs one commit each.
    rng = random.Random(1)
    fresh = [r for r in _records(rng, _archs(rng, 4000)) if store.candidate(big, r.arch) is None][:1280]
    start = time.perf_counter()
    for offset in range(0, 640, filled["batch"]):
        store.add_candidates(big, fresh[offset:offset + filled["batch"]], metric="fid")
    batched = (time.perf_counter() - start) / 640
    start = time.perf_counter()
    for record in fresh[640:1280]:
        store.add_candidates(big, [CandidateRecord(record.arch, record.macs, record.params, record.metrics)],
                             metric="fid")
    single = (time.perf_counter() - start) / 640
    results["write_ms_per_candidate"] = {"batched": batched * 1000, "one_by_one": single * 1000}
    return results


def _wait(app, condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the view did not finish reading")
        app.processEvents()
        time.sleep(0.001)


def _feed(app, sinks, run_id: int, seconds: float, rate: float, rng: random.Random) -> dict:
    """Send candidates to ``sinks`` at ``rate`` per second for ``seconds``, on the GUI thread as the
    process reader does; returns the GUI thread's CPU time and the event loop's longest gap."""
    from PySide6.QtCore import QTimer

    from engine.events import CandidateScored

    # Archs the store does not hold (a new candidate, not a rescore).
    records = [dataclasses.replace(r, arch=f"{r.arch}_live{i}")
               for i, r in enumerate(_records(rng, _archs(rng, int(seconds * rate) + 1)))]
    sent, gaps, last = [0], [], [time.perf_counter()]

    def send() -> None:
        if sent[0] < len(records):
            r = records[sent[0]]
            event = CandidateScored(run_id=run_id, arch=r.arch, macs=r.macs, params=r.params, metrics=r.metrics)
            for sink in sinks:
                sink(event)
            sent[0] += 1

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    ticker, feeder = QTimer(), QTimer()
    ticker.setInterval(10)
    ticker.timeout.connect(tick)
    feeder.setInterval(int(1000 / rate) if rate else 1000)
    feeder.timeout.connect(send)
    cpu = time.thread_time()
    start = time.perf_counter()
    last[0] = start
    ticker.start()
    if rate:
        feeder.start()
    while time.perf_counter() - start < seconds:
        app.processEvents()
        time.sleep(0.002)
    ticker.stop()
    feeder.stop()
    return {"cpu_s": time.thread_time() - cpu, "sent": sent[0], "max_gap_ms": max(gaps) * 1000,
            "wall_s": time.perf_counter() - start}


def _hover_ms(view, spots) -> tuple[float, float]:
    """(median, max) time of finding the candidate under the mouse, over scene positions ``spots``."""
    times = []
    for spot in spots:
        start = time.perf_counter()
        view.nearest(spot)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def measure_gui(store, settings, filled: dict) -> dict:
    from PySide6.QtCore import QPointF, Qt

    from workbench.app import freeze_startup_heap, make_application
    from workbench.main_window import MainWindow
    from workbench.views.monitor_view import MonitorView
    from workbench.views.pareto_view import ParetoView

    app = make_application()
    results = {}
    big, others = filled["run_ids"][0], filled["run_ids"][1:3]

    view = ParetoView(store)
    view.resize(1200, 800)
    view.show()
    app.processEvents()
    start = time.perf_counter()
    view.set_run(big)
    _wait(app, lambda: not view.is_loading())
    view.plot.viewport().repaint()
    results["pareto_open_ms"] = (time.perf_counter() - start) * 1000

    rng = random.Random(2)
    seconds = 10.0
    idle = _feed(app, [], big, seconds, 0, rng)  # the same loop with no candidates: what the loop itself costs
    live = _feed(app, [view.handle_event], big, seconds, 20, rng)
    view.flush()
    results["pareto_cpu_ms_per_candidate"] = max(0.0, live["cpu_s"] - idle["cpu_s"]) * 1000 / live["sent"]
    results["pareto_live_max_gap_ms"] = live["max_gap_ms"]

    box = view.plot.getViewBox().sceneBoundingRect()
    spots = [QPointF(box.left() + rng.random() * box.width(), box.top() + rng.random() * box.height())
             for _ in range(200)]
    results["hover_ms"] = _hover_ms(view, spots)

    view.set_runs([(r, f"r{r}") for r in [big, *others]])
    start = time.perf_counter()
    for i in range(1, view.overlays.count()):
        view.overlays.item(i).setCheckState(Qt.CheckState.Checked)
    _wait(app, lambda: not view.is_loading())
    view.plot.viewport().repaint()
    results["overlay_open_ms"] = (time.perf_counter() - start) * 1000
    results["hover_overlays_ms"] = _hover_ms(view, spots)
    results["points_overlaid"] = sum(view.count(r) for r in [big, *others])
    view.close()

    monitor = MonitorView(store)
    monitor.resize(1200, 800)
    monitor.show()
    app.processEvents()
    start = time.perf_counter()
    monitor.set_run(filled["loss_run"])
    _wait(app, lambda: len(monitor.curves) == len(LOSSES) and not monitor.reader.busy())
    monitor.plot.viewport().repaint()
    results["loss_curves_ms"] = (time.perf_counter() - start) * 1000
    results["loss_curve_points"] = sum(len(c.getData()[0]) for c in monitor.curves.values())
    monitor.close()

    window = MainWindow(settings, store)
    window.resize(1400, 850)
    window.show()
    _wait(app, window.idle)
    window.select_run(big)
    window.tabs.setCurrentWidget(window.pareto)
    _wait(app, window.idle)
    freeze_startup_heap()
    loop = _feed(app, [window.pareto.handle_event, window.monitor.handle_event], big, 15.0, 20, rng)
    results["window_max_gap_ms"] = loop["max_gap_ms"]
    results["window_candidates_sent"] = loop["sent"]
    window.close()
    return results


def render(info: dict, filled: dict, store_figures: dict, gui: dict) -> str:
    s, g = store_figures, gui
    ms = lambda pair: f"{pair[0]:.1f} ms (max {pair[1]:.1f})"  # noqa: E731
    rows = [
        ("Runs list refresh (`Store.list_runs`)", "≤ 50 ms", ms(s["list_runs_ms"])),
        ("`runs --json` (CLI, in process, incl. opening the store)", "fast", ms(s["cli_runs_json_ms"])),
        ("Opening a run's candidates (`Store.candidate_table`, background thread)", "-", ms(s["candidate_table_ms"])),
        ("One candidate by arch (`Store.candidate`: export dialog, `export --arch`)", "fast",
         ms(s["candidate_by_arch_ms"])),
        ("Pareto view: open a run (read + draw)", "< 1 s", f"{g['pareto_open_ms']:.0f} ms"),
        ("Pareto view: GUI-thread CPU per arriving candidate (20/s)", "≤ 20 ms",
         f"{g['pareto_cpu_ms_per_candidate']:.2f} ms"),
        ("Pareto view: hover/click lookup, one run", "instant", ms(g["hover_ms"])),
        (f"Pareto view: overlay 2 more runs ({g['points_overlaid']} points in all)", "-", f"{g['overlay_open_ms']:.0f} ms"),
        ("Pareto view: hover/click lookup, 3 runs overlaid", "instant", ms(g["hover_overlays_ms"])),
        (f"Monitor: loss curves of {info['steps']} steps x {len(LOSSES)} series (read + draw)", "< 200 ms",
         f"{g['loss_curves_ms']:.0f} ms ({g['loss_curve_points']} points drawn)"),
        ("Loss curves query: whole training / a 10,000-step zoom", "-",
         f"{ms(s['curves_full_ms'])} / {ms(s['curves_zoomed_ms'])}"),
        ("Main window: longest event-loop gap, candidates at 20/s + runs list refresh", "< 100 ms",
         f"{g['window_max_gap_ms']:.0f} ms ({g['window_candidates_sent']} candidates in 15 s)"),
        (f"Search write path: per candidate, batches of {filled['batch']} vs one commit each", "no slowdown",
         f"{s['write_ms_per_candidate']['batched']:.3f} ms vs {s['write_ms_per_candidate']['one_by_one']:.3f} ms "
         f"({s['write_ms_per_candidate']['one_by_one'] / s['write_ms_per_candidate']['batched']:.0f}x)"),
    ]
    lines = ["## The store and the workbench at scale", "",
             f"Measured by `python benchmarks/store_scale.py --runs {info['runs']} --candidates {info['candidates']} "
             f"--steps {info['steps']} --log-every {info['log_every']}` on {info['platform']}, {info['cores']} CPU "
             f"cores, Python {info['python']}; SQLite store in WAL mode, Qt offscreen; every figure from that one run. "
             f"The store held {info['runs']} runs x {info['candidates']:,} candidates written through "
             f"`Store.add_candidates` ({filled['write_candidates_per_s']:,.0f} candidates/s) and one training of "
             f"{info['steps']:,} steps with {len(LOSSES)} series every {info['log_every']} steps "
             f"(`Store.record_metrics`, {filled['record_metrics_per_s']:.0f} calls/s). "
             "Times are medians over repeats (max in brackets); GUI-thread CPU is `time.thread_time()` of the GUI "
             "thread while candidates arrive, minus the same loop idle.", "",
             "| what | target | measured |", "|---|---|---|"]
    lines += [f"| {what} | {target} | {value} |" for what, target, value in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=400_000)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--workspace", type=Path, help="(default: a fresh temporary folder)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    from engine.settings import Settings
    from engine.store import open_store

    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="gcw-scale-"))
    settings = Settings(workspace=workspace, device="cpu")
    store = open_store(settings.resolved_store_url)
    print(f"filling {settings.resolved_store_url}", flush=True)
    filled = fill(store, args.runs, args.candidates, args.steps, args.log_every)
    print("measuring the store", flush=True)
    store_figures = measure_store(store, settings, filled)
    print("measuring the workbench", flush=True)
    gui = measure_gui(store, settings, filled)
    store.close()
    info = {"runs": args.runs, "candidates": args.candidates, "steps": args.steps, "log_every": args.log_every,
            "platform": platform.platform(), "cores": os.cpu_count(), "python": platform.python_version()}
    text = render(info, filled, store_figures, gui)
    print(text)
    write_section(args.output, "store-scale", text)
    args.output.with_name("store-scale.json").write_text(json.dumps(
        {"info": info, "fill": {k: v for k, v in filled.items() if k != "run_ids"}, "store": store_figures,
         "gui": gui}, indent=1))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
