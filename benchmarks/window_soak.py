"""Soak check of the window, for a release: the main window (offscreen) follows live runs and refreshes its views
for ``--minutes`` (default 10), and this reports whether it aborted, how its memory grew and its longest
event-loop stall.

    QT_QPA_PLATFORM=offscreen python benchmarks/window_soak.py [--minutes 10] [--size 1366x768] [--json FILE]

What runs: a real run of a tiny pix2pix configuration whose supernet trains for longer than the soak, started by
the window as a user starts one (a child process of the engine's command line; another is started should it end),
so the window receives its events (a step, with its losses, every few tens of milliseconds), refreshes the runs
list every 2 s, and the user's view changes tab every few seconds (Summary, Monitor, Pareto, Compare). With
``--runs-end`` the runs are short instead (about a minute each, every stage), so the window also sees runs end,
their results and exports. Measured in this process:

- events received from the runs (each went through the views), runs followed;
- the longest gap of a 10 ms timer on the GUI thread (a stall; goal <= 100 ms);
- resident memory sampled every 5 s after the first minute: growth between the first and the last third
  (goal: no growing curve, <= 20 MB), and Python's live object count likewise;
- the reference counts of True, False and None at the start and the end (a binding that corrupts them drives
  them down steadily; the window would then abort, which is reported as the process's exit code).

Exit code 0 when every goal holds, 1 when one is missed (the report says which); an abort ends the process
with the interpreter's own code (134), which a release script treats as failure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

STALL_GOAL_MS = 100.0
GROWTH_GOAL_MB = 20.0

#: A pix2pix run of about a minute on a 2-core CPU: every stage, so every view gets events of each kind
#: (``--runs-end``); by default its supernet trains for LONG_STEPS steps instead, longer than any soak.
LONG_STEPS = 10_000_000
TINY_RUN = {
    "family": "pix2pix",
    "dataset": {"sample": "edges2photos", "sample_size": 32, "sample_train": 12, "sample_test": 4,
                "search_images": 4, "test_images": 4},
    "image_size": 32, "batch_size": 2,
    "model": {"ngf": 8, "n_blocks": 3}, "teacher": {"steps": 30},
    "supernet": {"steps": 120, "search_space": [[8, 4]] * 8},
    "search": {"target_ratio": 2},
    "finetune": {"steps": 30},
    "export": {"latency_time_cap_s": 1, "variants": []},
    "metric": "psnr",
    "log_every": 1,
}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def singleton_counts() -> dict[str, int]:
    return {"True": sys.getrefcount(True), "False": sys.getrefcount(False), "None": sys.getrefcount(None)}


def growth(samples: list[float]) -> float:
    """The median of the last third of ``samples`` minus that of the first third (a steady climb shows; a
    single spike does not)."""
    third = max(1, len(samples) // 3)
    return statistics.median(samples[-third:]) - statistics.median(samples[:third])


def soak(minutes: float, size: tuple[int, int], workspace: Path, runs_end: bool = False) -> dict:
    from PySide6.QtCore import QTimer

    from engine.api import load_config, open_store
    from engine.settings import Settings
    from workbench.app import freeze_startup_heap, make_application
    from workbench.main_window import MainWindow

    app = make_application()
    settings = Settings(workspace=workspace, device="cpu", threads=1)
    store = open_store(settings.resolved_store_url)
    window = MainWindow(settings, store)
    window.resize(*size)
    window.show()
    app.processEvents()
    freeze_startup_heap()

    received = [0]
    handle = window._on_event

    def counting(process, event) -> None:
        received[0] += 1
        handle(process, event)

    window._on_event = counting  # the processes' signals call it through a lambda: this one counts
    started: list[int] = []

    def start_next() -> None:
        running = [p for p in window.watched.all_processes() if p.is_running()]
        if not running and time.monotonic() < deadline:
            overrides = {**TINY_RUN, "name": f"soak-{len(started) + 1}"}
            if not runs_end:
                overrides["supernet"] = {**TINY_RUN["supernet"], "steps": LONG_STEPS}
            config = load_config(overrides=overrides)
            window.start_config(config)
            started.append(len(started) + 1)

    tabs = [window.summary, window.monitor, window.pareto, window.compare]
    turn = [0]

    def switch_tab() -> None:
        turn[0] += 1
        window.tabs.setCurrentWidget(tabs[turn[0] % len(tabs)])

    gaps, last = [], [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    memory: list[tuple[float, float, int]] = []  # (seconds, RSS MB, live objects)
    start = time.monotonic()

    def sample() -> None:
        memory.append((time.monotonic() - start, rss_mb(), len(gc.get_objects())))

    deadline = start + minutes * 60
    counts_before = singleton_counts()
    timers = []
    for interval, slot in ((10, tick), (1000, start_next), (4000, switch_tab), (5000, sample)):
        timer = QTimer()
        timer.setInterval(interval)
        timer.timeout.connect(slot)
        timer.start()
        timers.append(timer)
    start_next()
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.002)
    for timer in timers:
        timer.stop()
    counts_after = singleton_counts()
    window.close()
    store.close()

    settled = [m for m in memory if m[0] >= 60] or memory  # the first minute loads models and caches
    return {
        "minutes": minutes, "window": f"{size[0]}x{size[1]}", "runs_followed": len(started),
        "events_received": received[0],
        "max_stall_ms": max(gaps) * 1000 if gaps else float("nan"),
        "stalls_over_goal": sum(g * 1000 > STALL_GOAL_MS for g in gaps),
        "ticks": len(gaps),
        "rss_mb": [round(m[1], 1) for m in memory],
        "rss_growth_mb": growth([m[1] for m in settled]),
        "objects_growth": growth([m[2] for m in settled]),
        "refcounts_before": counts_before, "refcounts_after": counts_after,
    }


def verdict(report: dict) -> list[str]:
    """The goals a report misses (empty: the soak passed)."""
    missed = []
    if report["max_stall_ms"] > STALL_GOAL_MS:
        missed.append(f"longest stall {report['max_stall_ms']:.0f} ms > {STALL_GOAL_MS:.0f} ms "
                      f"({report['stalls_over_goal']} of {report['ticks']} ticks)")
    if report["rss_growth_mb"] > GROWTH_GOAL_MB:
        missed.append(f"memory grew {report['rss_growth_mb']:.1f} MB > {GROWTH_GOAL_MB:.0f} MB")
    if not report["events_received"]:
        missed.append("no event was received from a run")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--size", default="1366x768", help="window size WxH")
    parser.add_argument("--workspace", type=Path, help="a workspace for the runs (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write the report here too")
    parser.add_argument("--runs-end", action="store_true",
                        help="short runs one after another (the window sees runs end) instead of one long run")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="gcw-soak-"))
    report = soak(args.minutes, size, workspace, args.runs_end)
    report["runs"] = "short, one after another" if args.runs_end else "one long run"
    from workbench.platform.binding_check import binding_version

    report["machine"] = f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, " \
                        f"{binding_version()}"
    report["missed"] = verdict(report)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 1 if report["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
