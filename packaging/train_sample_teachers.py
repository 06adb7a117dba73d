"""Train the teachers the sample presets ship with (``resources/teachers/``), with each family's
reference recipe, and write the stored output their test checks.

    python packaging/train_sample_teachers.py [NAME ...]    # default: every resources/teachers/*.yaml

For each ``NAME.yaml`` it runs ``main.py compress --config NAME.yaml --stop-after teacher`` in a fresh
workspace, keeps the generator's weights in half precision as ``NAME.pt`` (``{"G": state_dict}``, loaded
like any checkpoint) and writes ``tests/fixtures/NAME-teacher-check.pt``: a seeded input and the
shipped teacher's output on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from engine.families.capabilities import random_inputs

ROOT = Path(__file__).resolve().parents[1]
TEACHERS = ROOT / "resources" / "teachers"
sys.path.insert(0, str(ROOT))


def check_input(config) -> torch.Tensor:
    """A seeded input of the family's kind at 64 px (an image, or a label map)."""
    return random_inputs(config.family_impl, config.options, (64, 64), torch.Generator().manual_seed(0))


def train(name: str, workspace: Path) -> dict:
    from engine.config import load_config
    from engine.stages.teacher import build_teacher

    config_path = TEACHERS / f"{name}.yaml"
    started = time.perf_counter()
    env = {**os.environ, "GCW_WORKSPACE": str(workspace)}
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "compress", "--config", str(config_path),
                             "--stop-after", "teacher", "--json-events"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 3:  # 3: stopped after the teacher, as asked
        raise SystemExit(f"{name}: training failed:\n{result.stderr[-3000:]}")
    weights = next(workspace.glob("runs/*/teacher/teacher.pt"))
    state = torch.load(weights, map_location="cpu", weights_only=True)["G"]
    TEACHERS.mkdir(parents=True, exist_ok=True)
    torch.save({"G": {k: v.half() if v.is_floating_point() else v for k, v in state.items()}},
               TEACHERS / f"{name}.pt")
    config = load_config(path=config_path)
    teacher = build_teacher(config)
    shipped = torch.load(TEACHERS / f"{name}.pt", map_location="cpu", weights_only=True)["G"]
    teacher.load_state_dict(shipped, strict=True)
    x = check_input(config)
    conditioning = config.family_impl.conditioning(config.options, 1, 0)  # e.g. a style code
    with torch.no_grad():
        y = teacher.eval()(x, *conditioning)
    fixtures = ROOT / "tests" / "fixtures"
    torch.save({"input": x, "conditioning": list(conditioning), "output": y}, fixtures / f"{name}-teacher-check.pt")
    return {"name": name, "seconds": round(seconds), "steps": config.teacher.steps,
            "size_mb": round((TEACHERS / f"{name}.pt").stat().st_size / 1e6, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=sorted(p.stem for p in TEACHERS.glob("*.yaml")))
    args = parser.parse_args()
    for name in args.names:
        with tempfile.TemporaryDirectory(prefix=f"gcw-teacher-{name}-") as tmp:
            print(json.dumps(train(name, Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
