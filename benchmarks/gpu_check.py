"""Exercise every CUDA path of the program on one GPU, in a few minutes, and print what passed.

    python benchmarks/gpu_check.py [--device cuda:0] [--workspace DIR] [--families pix2pix cyclegan gaugan munit]

Checks: a tiny ``compress`` end to end on the device for each family (``device: auto`` resolving to it; the
pix2pix run also measures its latency table there and predicts every candidate's latency); the latency
protocol with synchronisation (teacher and student interleaved); the compare view's preview and latency
measurement on the device (offscreen Qt); ONNX Runtime's CUDA provider on the exported student when it is
installed. Each check's outcome is a row of the table; the exit status is 1 if any failed. On a machine
without a usable GPU it says so in one line and exits 2: there is nothing to check.

``--device cpu`` runs the same checks on the CPU (the script's own test: the paths, not the GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

#: Runs small enough for seconds; each family's smallest legal size and a two-choice space.
TINY = {
    "pix2pix": {"dataset": {"sample": "edges2photos", "sample_size": 32, "sample_train": 12, "sample_test": 4,
                            "search_images": 4, "test_images": 4},
                "image_size": 32, "model": {"ngf": 8, "n_blocks": 3}, "metric": "psnr",
                "supernet": {"steps": 8, "search_space": [[8, 4]] * 8},
                "search": {"target_ratio": 2, "predict_latency": True, "latency_calibration_nets": 4}},
    "cyclegan": {"dataset": {"sample": "grass2gravel", "sample_size": 32, "sample_train": 12, "sample_test": 4,
                             "search_images": 4, "test_images": 4},
                 "image_size": 32, "model": {"ngf": 8, "n_blocks": 3}, "metric": "rfid",
                 "supernet": {"steps": 8, "search_space": [[8, 4]] * 8}, "search": {"target_ratio": 2}},
    "gaugan": {"dataset": {"sample": "labels2photos", "sample_size": 64, "sample_train": 12, "sample_test": 4,
                           "search_images": 4, "test_images": 4},
               "image_size": 64, "model": {"classes": 8, "instance_edges": False, "ngf": 4, "upsampling": "normal",
                                           "calibration_images": 4},
               "metric": "rfid", "supernet": {"steps": 4, "search_space": [[8, 4]] * 8},
               "search": {"macs_budget": 0.03e9}},
    "munit": {"dataset": {"sample": "gray2tints", "sample_size": 64, "sample_train": 8, "sample_test": 4,
                          "search_images": 4, "test_images": 4},
              "image_size": 64, "model": {"ngf": 4, "mlp_dim": 8, "student_mlp_dim": 8}, "recipe": {"ndf": 8},
              "metric": "rfid", "supernet": {"steps": 4, "search_space": [[4, 2]] * 10},
              "search": {"method": "evolution", "target_ratio": 1.5, "population": 4, "generations": 2}},
}
COMMON = {"batch_size": 2, "teacher": {"steps": 3}, "finetune": {"steps": 2}, "log_every": 1}


def _check(rows: list[tuple[str, bool, str]], name: str, work: Callable[[], str]) -> None:
    started = time.monotonic()
    try:
        detail = work()
        rows.append((name, True, f"{detail} ({time.monotonic() - started:.1f} s)"))
    except Exception as exc:  # a failed check is a row, and the others still run
        traceback.print_exc()
        rows.append((name, False, f"{type(exc).__name__}: {exc}".splitlines()[0][:160]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the GPU to check (cpu: the script's own dry run)")
    parser.add_argument("--workspace", type=Path, help="(default: a fresh temporary folder)")
    parser.add_argument("--families", nargs="+", default=list(TINY), choices=list(TINY))
    args = parser.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        build = "a CPU-only build of PyTorch" if torch.version.cuda is None else "no usable GPU"
        print(f"gpu_check: no GPU to check: this machine has {build} (torch {torch.__version__}); run it where a GPU "
              "and a CUDA build of PyTorch are installed (--device cpu runs the same checks on the CPU)")
        return 2

    from engine import api
    from engine.config import load_config, merge
    from engine.settings import Settings

    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    # The run's own device is auto: this checks that auto resolves to the GPU (the setting would override it).
    settings = Settings(workspace=workspace, device="auto" if args.device != "cpu" else "cpu")
    store = api.open_store(settings.resolved_store_url)
    rows: list[tuple[str, bool, str]] = []
    finished: dict[str, tuple[int, dict]] = {}
    device = args.device

    for family in args.families:
        def compress(family: str = family) -> str:
            overrides = merge(merge(COMMON, TINY[family]), {"name": f"gpu-check-{family}", "family": family,
                                                            "device": "auto"})
            if family == "pix2pix" and device != "cpu":
                overrides["search"]["latency_device"] = device
            config = load_config(overrides=overrides)
            run_id = api.create_run(config, store, settings)
            messages: list[str] = []
            summary = api.execute(run_id, settings, store, lambda e: messages.append(getattr(e, "text", "") or ""))
            said = next((m for m in messages if m.startswith("device")), "")
            if device != "cpu" and not summary.get("run_device", "").startswith("cuda"):
                raise AssertionError(f"device auto ran on {summary.get('run_device')}, not the GPU ({said})")
            finished[family] = (run_id, summary)
            predicted = ", latency predicted" if summary.get("predicted_latency") else ""
            return f"{said}; student {summary['student']['arch']}, {summary['macs_ratio']:.1f}x fewer MACs{predicted}"

        _check(rows, f"compress {family} (device auto)", compress)

    def protocol() -> str:
        run_id, summary = next(iter(finished.values()))
        reading = api.measure_latency(store, settings, run_id, None, device, "pytorch")
        timings = reading.timings
        return (f"teacher {timings['teacher'].median_ms:.2f} ms, student {timings['student'].median_ms:.2f} ms "
                f"on {device} ({timings['teacher'].runs} interleaved rounds, synchronised)")

    _check(rows, "latency protocol", protocol)

    def compare_view() -> str:
        from PySide6.QtWidgets import QApplication

        from workbench.views.compare_view import CompareView

        app = QApplication.instance() or QApplication([])
        run_id, _ = next(iter(finished.values()))
        view = CompareView(store, settings)
        view.device.setCurrentText(device)
        view.set_run(run_id)

        def wait(condition: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
            deadline = time.monotonic() + timeout_s
            while not condition():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the compare view gave no {what} in {timeout_s:.0f} s")
                app.processEvents()
                time.sleep(0.01)

        wait(lambda: view.result is not None, "preview")
        view.measure_latency()
        wait(lambda: view.latency is not None, "latency")
        text = view.readout.text()
        if f"on {device}" not in text:
            raise AssertionError(f"the readout does not name {device}: {text[:200]}")
        return f"preview of {view.result['arch']} and its latency on {device}"

    _check(rows, "compare view (offscreen)", compare_view)

    def onnxruntime_cuda() -> str:
        import numpy as np
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "skipped: this ONNX Runtime has no CUDA provider (pip install onnxruntime-gpu)"
        _, summary = next(iter(finished.values()))
        path = summary["onnx_path"]
        cpu = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        gpu = ort.InferenceSession(path, providers=["CUDAExecutionProvider"])
        feed = {i.name: np.random.default_rng(0).uniform(-1, 1, [d if isinstance(d, int) else 1 for d in i.shape])
                .astype(np.float32) for i in cpu.get_inputs()}
        diff = float(np.abs(cpu.run(None, feed)[0] - gpu.run(None, feed)[0]).max())
        if diff > 1e-3:
            raise AssertionError(f"CUDA provider differs from the CPU by {diff:.2g}")
        return f"CUDA provider runs the student, max |diff| vs CPU {diff:.2g}"

    _check(rows, "ONNX Runtime CUDA provider", onnxruntime_cuda)
    store.close()

    width = max(len(name) for name, _, _ in rows)
    print(f"\ngpu_check on {device} ({torch.cuda.get_device_name(torch.device(device)) if device != 'cpu' else 'CPU'}),"
          f" workspace {workspace}")
    for name, passed, detail in rows:
        outcome = "FAIL" if not passed else "SKIP" if detail.startswith("skipped") else "PASS"
        print(f"{name:<{width}}  {outcome}  {detail}")
    failed = [name for name, passed, _ in rows if not passed]
    print(f"{len(rows) - len(failed)} of {len(rows)} passed" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
