"""How long the window's event loop stalls while the compare view's model work runs, in a thread of the window's
process against the model process (``workbench.background.model_process``), side by side on one finished run.

    QT_QPA_PLATFORM=offscreen python benchmarks/window_stall.py WORKSPACE RUN_ID

For each job (the first preview, a latency reading in PyTorch, ONNX Runtime and OpenVINO) it prints the job's time
and the longest gap of a 10 ms timer on the GUI thread meanwhile (a stall the user feels when over 100 ms)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def measure(worker_kind: str, workspace: Path, run_id: int) -> list[tuple[str, float, float]]:
    from PySide6.QtCore import QTimer

    from engine.api import latency_of_run, open_store, preview_of_run, sample_images
    from engine.settings import Settings
    from workbench.app import make_application
    from workbench.background.model_process import ModelProcess
    from workbench.background.worker import Worker

    app = make_application()
    settings = Settings(workspace=workspace, device="cpu")
    store = open_store(settings.resolved_store_url)
    image = sample_images(store, settings, run_id)[0]
    store.close()
    worker = ModelProcess() if worker_kind == "process" else Worker()
    gaps, last = [], [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    jobs = [("first preview", preview_of_run, (settings, run_id, image, None))]
    jobs += [(f"latency {backend}", latency_of_run, (settings, run_id, None, "cpu", backend))
             for backend in ("pytorch", "onnxruntime", "openvino")]
    rows = []
    for name, function, args in jobs:
        outcome: list = []
        worker.done.connect(lambda *a: outcome.append("done"))
        worker.failed.connect(lambda _job, message: outcome.append(message))
        gaps.clear()
        start = last[0] = time.perf_counter()
        worker.submit(function, *args)
        while not outcome:
            app.processEvents()
            time.sleep(0.002)
        worker.done.disconnect()
        worker.failed.disconnect()
        if outcome[0] != "done":
            raise SystemExit(f"{name} failed: {outcome[0]}")
        rows.append((name, time.perf_counter() - start, max(gaps) * 1000))
    timer.stop()
    return rows


def main() -> int:
    workspace, run_id = Path(sys.argv[1]), int(sys.argv[2])
    for kind in ("thread", "process"):
        for name, seconds, gap in measure(kind, workspace, run_id):
            print(f"{kind:8} {name:22} {seconds:6.2f} s   longest GUI gap {gap:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
