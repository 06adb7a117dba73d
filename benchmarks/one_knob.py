"""Which recipe change moved a sample preset's quality: the preset, the same with another seed, and the preset with
one setting changed at a time, each a whole ``compress`` run on this machine, written to docs/benchmarks.md.

    python benchmarks/one_knob.py --preset gaugan-sample --vary recipe.weighted_sample=1 recipe.crop_jitter=true
    python benchmarks/one_knob.py --preset munit-sample --vary recipe.mapping_init=kaiming recipe.crop_jitter=true
    python benchmarks/one_knob.py --preset gaugan-sample --seeds 0 --together --vary recipe.weighted_sample=1 ...

``--together`` makes one run of every ``--vary`` setting at once (changes that may only matter in combination),
written to a section of its own (``one-knob-PRESET-together``).

A knob's effect means something only beside the spread between two seeds of the unchanged preset, which is why
the seed run is part of every table (``--seeds 0 1`` by default; the knob runs use the first seed). Each row also
names the student's architecture and MACs: a knob that changes what the search picks changes quality through it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sample_presets import run_compress  # noqa: E402
from sections import DOCS, write_section  # noqa: E402


def parse_setting(text: str) -> tuple[list[str], object]:
    """``recipe.crop_jitter=true`` -> (["recipe", "crop_jitter"], True): the value read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--vary {text!r}: write SECTION.KEY=VALUE, e.g. recipe.crop_jitter=true")
    return key.split("."), yaml.safe_load(value)


def nested(path: list[str], value: object) -> dict:
    out: dict = {}
    node = out
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return out


def merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = merge(merged.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def row(label: str, result: dict) -> str:
    s = result["summary"]
    metric = s["metric"]
    student, teacher = s["student"], s["teacher"]
    return (f"| {label} | {result['seconds'] / 60:.1f} min | {metric} {teacher['metrics'][metric]:.4g} / "
            f"{student['metrics'][metric]:.4g} | {student['metrics']['psnr_to_teacher']:.2f} dB | "
            f"{s['macs_ratio']:.1f}x | `{student['arch']}` | {s['finetune']['kept']} |")


def render(preset: str, rows: list[tuple[str, dict]], together: bool = False) -> str:
    title = f"Settings together: {preset}" if together else f"One setting at a time: {preset}"
    how = ("the last row has every varied setting at once" if together
           else "the knobs use the first seed")
    lines = [f"## {title}", "",
             f"Measured by `python benchmarks/one_knob.py --preset {preset}{' --together' if together else ''} "
             "--vary ...`: each row one whole `compress` run of the preset on this machine; the first rows are the "
             "unchanged preset at each seed run (their difference is the run-to-run spread a knob must exceed to mean "
             f"anything); {how}, at the first seed.", "",
             "| run | wall time | quality, teacher / student (test split) | fidelity to the teacher | MACs ratio | "
             "student arch | fine-tuning kept |", "|" + "---|" * 7]
    lines += [row(label, result) for label, result in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--vary", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                        help="one run per setting, each on its own over the preset")
    parser.add_argument("--together", action="store_true", help="one run with every --vary setting at once")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--workspace", type=Path, default=Path("/tmp") / "gcw-one-knob")
    parser.add_argument("--output", type=Path, default=DOCS)
    parser.add_argument("--finished-only", action="store_true",
                        help="write the table of the runs already finished in --workspace, run nothing")
    args = parser.parse_args()
    runs = [(f"preset, seed {seed}", {"seed": seed}) for seed in args.seeds]
    settings = [parse_setting(text) for text in args.vary]
    if args.together and settings:
        combined: dict = {"seed": args.seeds[0]}
        for path, value in settings:
            combined = merge(combined, nested(path, value))
        runs.append((" + ".join(f"{'.'.join(path)}: {value!r}" for path, value in settings), combined))
    else:
        for path, value in settings:
            runs.append((f"{'.'.join(path)}: {value!r}", merge({"seed": args.seeds[0]}, nested(path, value))))
    stored = args.workspace / f"{args.preset}.json"
    done = json.loads(stored.read_text()) if stored.is_file() else {}
    rows = []
    for label, overrides in runs:
        key = json.dumps(overrides, sort_keys=True)
        if key not in done and args.finished_only:
            continue
        if key not in done:  # a table of several 10-minute runs survives an interruption
            started = time.perf_counter()
            config = merge({"preset": args.preset, "name": f"{args.preset}-{len(done)}"}, overrides)
            done[key] = run_compress(config, args.workspace)
            print(f"{label}: {(time.perf_counter() - started) / 60:.1f} min", flush=True)
            stored.write_text(json.dumps(done))
        rows.append((label, done[key]))
    section = f"one-knob-{args.preset}" + ("-together" if args.together else "")
    write_section(args.output, section, render(args.preset, rows, args.together))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
