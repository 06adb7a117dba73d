"""The engine's command line: ``python main.py <command>`` (or ``gcw <command>``).

Every command works headless; the workbench runs the same commands in child processes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.exc import SQLAlchemyError

from engine import api
from engine.api import RunResult, describe_kept, describe_latency, describe_prediction, describe_variant, faster, speedup
from engine.errors import ConfigError, UserError
from engine.events import EventSink, JsonLinesRenderer, TerminalRenderer
from engine.settings import Settings

log = logging.getLogger("engine")

Handler = Callable[[argparse.Namespace, Settings], int]


def _image_size(text: str) -> tuple[int, int]:
    """``256`` or ``WIDTHxHEIGHT`` (e.g. ``512x256``) -> (height, width)."""
    from engine.config import check_image_size, parse_image_size

    try:
        height, width = parse_image_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size is N or WIDTHxHEIGHT, not {text!r}") from None
    try:
        check_image_size((height, width), text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return height, width


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


def _event_sink(args: argparse.Namespace) -> EventSink:
    return JsonLinesRenderer(sys.stdout) if getattr(args, "json_events", False) else TerminalRenderer(sys.stderr)


# --- datasets ---------------------------------------------------------------------------------------

def _cmd_datasets_list(args: argparse.Namespace, settings: Settings) -> int:
    params = api.SampleParams()
    rows = [{"name": info.name, "layout": info.layout, "family": info.family,
             "cached": "yes" if info.built else "no (made on first use)",
             "description": info.description, "path": str(info.path)} for info in api.list_samples(settings, params)]
    if args.json:
        print(json.dumps(rows))
    else:
        print(f"Built-in sample datasets (default {params.size}px, {params.n_train} train / {params.n_test} test images),"
              f" cached under {settings.datasets_dir}:")
        _print_table(rows, ["name", "layout", "family", "cached", "description"])
    return 0


def _cmd_datasets_build(args: argparse.Namespace, settings: Settings) -> int:
    params = api.SampleParams(size=args.size, n_train=args.train, n_test=args.test, seed=args.seed)
    sample = api.build_sample(args.name, settings, params, events=_event_sink(args))
    print(json.dumps({"name": sample.name, "layout": sample.layout, "path": str(sample.path)}) if args.json
          else f"{sample.name} ({sample.layout}): {sample.path}")
    return 0


def _cmd_datasets_check(args: argparse.Namespace, settings: Settings) -> int:
    # Every file decoded, as a run reads it: what a run would skip or refuse is reported here first.
    check = api.check_dataset(args.path, args.layout, args.phase)
    if args.json:
        print(json.dumps(check.as_dict()))
    elif check.skipped:
        print(f"{args.path}: layout {check.layout}, {check.items} {args.phase} items; a run skips these "
              f"{len(check.skipped)} file(s) (replace or remove them):")
        for _, reason in check.skipped:
            print(f"  {reason}")
    elif not check.problems:
        print(f"{args.path}: layout {check.layout}, {check.items} {args.phase} items, every image decoded; it can be "
              "used as it is")
    for problem in check.problems if not args.json else []:
        print(f"problem: {problem}")
    return 1 if check.problems else 0


# --- profile ----------------------------------------------------------------------------------------

def _cmd_profile(args: argparse.Namespace, settings: Settings) -> int:
    try:
        raw = json.loads(args.model) if args.model else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--model must be a JSON object of model options, e.g. '{{\"ngf\": 32}}': {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError("--model must be a JSON object of model options, e.g. '{\"ngf\": 32}'")
    if args.input_nc is not None:
        raw["input_nc"] = args.input_nc
    if args.output_nc is not None:
        raw["output_nc"] = args.output_nc
    profile = api.profile_network(args.family, raw, args.arch, args.image_size)
    if args.json:
        print(json.dumps(profile.as_dict()))
    else:
        print(f"{profile.what} at {profile.width}x{profile.height}: {profile.macs / 1e9:.3f} G MACs, "
              f"{profile.params / 1e6:.4f} M params")
    return 0


# --- runs -------------------------------------------------------------------------------------------

def _cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "runs_command", None):
        print(api.act_on_run(settings, args.runs_command, args.run_id, keep_files=getattr(args, "keep_files", False)))
        return 0
    listed = api.list_runs(settings)
    runs = [item.run for item in listed]
    silent = {item.run.id: item.not_responding for item in listed}
    rows = [{"id": r.id, "name": r.name, "family": r.family, "dataset": r.dataset,
             "status": "damaged" if r.damaged else f"{r.status} (not responding)" if silent.get(r.id) else r.status,
             "stage": r.stage or "-",
             "progress": f"{r.step}/{r.total_steps}" if r.total_steps else "-",
             "candidates": r.candidates,
             "best_macs": f"{r.best_macs / 1e9:.3f}G" if r.best_macs else "-",
             "created": r.created_at.strftime("%Y-%m-%d %H:%M")} for r in runs]
    if args.json:
        print(json.dumps([{**row, "status": r.status, "not_responding": silent.get(r.id), "best_macs": r.best_macs,
                           "best_metric": r.best_metric, "best_arch": r.best_arch, "error": r.error,
                           "damaged": r.damaged,
                           "created": r.created_at.isoformat()} for row, r in zip(rows, runs)]))
    elif not rows:
        print(f"no runs yet in {settings.resolved_store_url}")
    else:
        _print_table(rows, ["id", "name", "family", "dataset", "status", "stage", "progress", "candidates",
                            "best_macs", "created"])
        for run in runs:
            if run.damaged:
                print(f"run {run.id} is damaged: {run.damaged}; delete it (python main.py runs delete {run.id}) "
                      "or restore its record from a backup of the store")
    return 0


# --- compress / resume -------------------------------------------------------------------------------

def _cancel_flag() -> Callable[[], bool]:
    """SIGINT/SIGTERM ask the run to stop at its next checkpoint; a second SIGINT stops at once."""
    import signal
    import threading

    requested = threading.Event()

    def on_signal(signum, frame):
        if requested.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested.set()
        print("stopping at the next checkpoint (press Ctrl-C again to stop at once)", file=sys.stderr)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return requested.is_set


#: Width of the summary on a pipe or in a log, where there is no terminal to fit.
PLAIN_WIDTH = 120


def format_summary(summary: RunResult, terminal: bool = False, width: int | None = None) -> str:
    """The closing summary: a table of teacher vs student (rich: it fits ``width``, by default the terminal's;
    on a pipe or in a log plain text, no colours, no box), then the files and how the numbers were taken."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table

    teacher, student = summary.teacher, summary.student
    table = Table(box=box.SIMPLE_HEAD if terminal else None, show_edge=False, pad_edge=False,
                  header_style="bold" if terminal else None)
    table.add_column("")
    table.add_column("teacher", justify="right")
    table.add_column("student", justify="right")
    table.add_column("student vs teacher", overflow="fold")

    def row(label: str, t: float | None, s: float, fmt: str, ratio: str = "") -> None:
        table.add_row(label, "" if t is None else format(t, fmt), format(s, fmt), ratio)

    row("MACs (G)", teacher.macs / 1e9, student.macs / 1e9, ".4f", f"{summary.macs_ratio:.1f}x fewer")
    row("params (M)", teacher.params / 1e6, student.params / 1e6, ".4f", f"{summary.params_ratio:.1f}x fewer")
    split = summary.metrics_split
    for name, value in teacher.metrics.items():
        note = f", {summary.metric_notes[name]}" if name in summary.metric_notes else ""
        row(f"{name} ({split} split{note})", value, student.metrics[name], ".4g")
    if "psnr_to_teacher" in student.metrics:
        row(f"psnr to teacher ({split})", None, student.metrics["psnr_to_teacher"], ".4g")
    readings = summary.latency
    for backend in (b for b in ("pytorch", "pytorch-compiled", "onnxruntime", "openvino") if b in teacher.latency_ms):
        t, s = teacher.latency_ms[backend], student.latency_ms[backend]
        ratio = speedup(readings[backend]) if backend in readings else t / s
        row(f"latency {backend} (ms)", t, s, ".2f", faster(ratio))
    buffer = io.StringIO()
    width = width or (shutil.get_terminal_size().columns if terminal else PLAIN_WIDTH)
    Console(file=buffer, width=width, force_terminal=terminal, no_color=not terminal, highlight=False,
            color_system="standard" if terminal else None).print(table)
    busy = [backend for backend, reading in readings.items() if reading.get("busy")]
    trained_on = f"trained on {summary.run_device}, " if summary.run_device else ""
    lines = [*(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines()),
             f"run {summary.run_id}, {summary.image_size}px, {trained_on}CPU latency with {summary.threads} threads "
             "(medians of interleaved rounds; speed-ups are per-round ratios)"
             + (f"; the machine was busy while timing {', '.join(busy)}: wide spread" if busy else ""),
             *([f"student weights: {student.weights}"] if student.weights else []),
             f"ONNX: {summary.onnx_path} (max |diff| vs PyTorch {summary.onnx_max_abs_diff:.2g})",
             *('  ' + describe_variant(name, variant) for name, variant in summary.onnx_variants.items()),
             *(f"  {name}: not built ({reason})" for name, reason in summary.onnx_variants_skipped.items()),
             *([describe_prediction(summary.predicted_latency)] if summary.predicted_latency else []),
             *_search_lines(summary.search),
             *([f"protocol: {summary.protocol['words']} (the model card lists each departure)"]
               if summary.protocol else []),
             f"model card: {summary.model_card_path}",
             f"{' | '.join(summary.grid_columns)}: {summary.grid_path}"]
    return "\n".join(lines)


def _search_lines(search: dict[str, Any]) -> list[str]:
    """How the search scored its candidates and, under a measured latency budget, how the kept student was
    measured."""
    lines = [f"search scoring: {search['scoring_backend']}"] if search.get("scoring_backend") else []
    if search.get("set_up_ahead"):
        lines.append(f"search scoring: {search['set_up_ahead']} of {search['scored']} candidates set up in OpenVINO "
                     "while the one before was scored")
    measured = search.get("latency_measured")
    if measured:
        lines.append(f"latency budget: the kept student {describe_kept(measured)}")
    return lines


def _execute(run_id: int, args: argparse.Namespace, settings: Settings, store, world) -> int:
    try:
        summary = api.execute(run_id, settings, store, _event_sink(args), _cancel_flag(),
                          stop_after=getattr(args, "stop_after", None), redo=getattr(args, "redo", None), world=world)
    except api.Cancelled as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except (UserError, SQLAlchemyError):
        raise
    except Exception as exc:
        log.debug("run %s failed", run_id, exc_info=True)
        print(f"error: run {run_id} failed: {type(exc).__name__}: {exc}\n"
              f"finished stages are kept; resume with: python main.py resume {run_id}", file=sys.stderr)
        return 1
    if not getattr(args, "json_events", False):
        stream = sys.stderr if args.json else sys.stdout
        print(format_summary(RunResult.from_dict(summary), terminal=stream.isatty()), file=stream)
    if args.json:
        print(json.dumps(summary))
    return 0


def _worker(settings: Settings, world) -> int:
    """Ranks 1 and up of a torchrun launch: no store, no output of their own; rank 0 reports for all."""
    try:
        api.execute_worker(settings, world, _cancel_flag())
    except api.Cancelled:
        return 3
    return 0


def _run_in_group(args: argparse.Namespace, settings: Settings, start: Callable[[Any, Any], int]) -> int:
    """``start(store, world)`` gives the run to execute (creating it, for ``compress``), on rank 0 only; under
    torchrun the other ranks join it (``engine.distributed``)."""
    world = api.join_group(settings.device)
    try:
        if not world.is_main:
            return _worker(settings, world)
        store = api.open_store(settings.resolved_store_url)
        try:
            return _execute(start(store, world), args, settings, store, world)
        finally:
            store.close()
    finally:
        api.leave_group(world)


def _overrides(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--name`` and every ``--set KEY=VALUE`` (dotted keys, YAML values: ``--set supernet.steps=100``,
    ``--set dataset.path=~/data/maps``) as a configuration layer over the preset and the file."""
    from engine.config import merge

    layer: dict[str, Any] = {"name": args.name} if getattr(args, "name", None) else {}
    for item in getattr(args, "set", None) or []:
        key, equals, text = item.partition("=")
        if not equals or not key.strip() or any(not part for part in key.strip().split(".")):
            raise ConfigError(f"--set {item!r}: give KEY=VALUE with a dotted key, e.g. --set supernet.steps=100")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not YAML ({exc})") from None
        for part in reversed(key.strip().split(".")):
            value = {part: value}
        layer = merge(layer, value)  # type: ignore[arg-type]
    return layer or None


def _cmd_compress(args: argparse.Namespace, settings: Settings) -> int:
    from engine.config import load_config

    config = load_config(args.preset, args.config, _overrides(args))  # every rank checks it: a bad one fails them all
    def start(store, world) -> int:
        # torchrun says how many processes each machine runs; the pre-flight checks the batch and GPUs for it.
        per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", world.size))
        return api.create_run(config, store, settings, per_machine, max(1, world.size // per_machine))

    return _run_in_group(args, settings, start)


def _cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    from engine.config import config_lines, explain_config

    if args.preset is None and args.config is None and args.family is None:
        raise ConfigError("give --preset NAME, --config FILE or --family NAME")
    config, resolved, sources = explain_config(args.preset, args.config, _overrides(args), args.family)
    checked = None
    if args.check:
        checked = api.preflight(config, settings, args.processes_per_node, args.nodes)
    if args.json:
        print(json.dumps({"config": resolved, "sources": sources,
                          **({"preflight": checked.to_dict()} if checked else {})}))
    else:
        print("\n".join(config_lines(resolved, sources)))
        if checked is not None:
            print(f"\npre-flight on this machine ({checked.device}, {checked.processes} process(es) on "
                  f"{checked.machines} machine(s)): {checked.describe()}")
            print("\n".join(f"problem: {p.sentence}" for p in checked.problems) or "no problems: it can start")
            if config.protocol is not None:
                count = len(config.departures)
                print(f"protocol: {config.protocol}" + (" (paper protocol: no departures)" if count == 0 else
                      f", departing in {count}: " + ", ".join(config.departures)))
        if checked is not None and args.estimate:
            devices = ["cpu"] + [d for d in api.available_devices() if d.startswith("cuda")][:1]
            for device in devices:
                print(api.estimate_time(config, device).describe())
            if len(devices) == 1:
                print("on one GPU: no GPU on this machine; run the same command where the run will train")
    return 1 if checked is not None and not checked.ok else 0


def _cmd_launch_script(args: argparse.Namespace, settings: Settings) -> int:
    from engine.config import load_config

    config = load_config(args.preset, args.config, _overrides(args))
    launch = api.Launch(args.processes_per_node, args.nodes)
    paths = api.write_launch_files(config, args.out, launch, settings)
    print(f"{config.name}: {launch.processes} processes on {launch.nodes} machine(s); wrote " + ", ".join(map(str, paths)))
    return 0


def _cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    return _run_in_group(args, settings, lambda store, world: args.run_id)


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    result = api.export_run(settings, args.run_id, args.arch, args.out)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"{result.arch}: {result.macs / 1e6:.1f}M MACs, {result.params / 1e6:.4f}M params; "
              f"ONNX {result.onnx_path} (max |diff| vs PyTorch {result.max_abs_diff:.2g}); "
              f"card {result.model_card_path}")
        for reading in result.latency.values():
            print(f"latency: {describe_latency(reading)}")
        for name, variant in result.onnx_variants.items():
            print('  ' + describe_variant(name, variant))
        for name, reason in result.onnx_variants_skipped.items():
            print(f"  {name}: not built ({reason})")
    return 0


# --- parser -----------------------------------------------------------------------------------------

class _VersionAction(argparse.Action):
    """``--version``: the versions this installation runs on and what it found (GPU, FID weights)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            print(api.describe_environment(api.environment()))
        except UserError as exc:  # a bad setting in the environment must not hide the versions
            print(f"GAN Compression Workbench {api.VERSION}\n(settings: {exc})")
        parser.exit()


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(description="GAN Compression Workbench: compress conditional-GAN generators.")
    parser.add_argument("--version", action=_VersionAction,
                        help="show the version, the versions of PyTorch, ONNX Runtime and Qt, and what was found")
    parser.add_argument("--workspace", help="folder for the store, datasets, checkpoints and exports "
                                            "(default: $GCW_WORKSPACE or the user data folder)")
    parser.add_argument("--store-url", help="SQLAlchemy URL of the run store (default: $GCW_STORE_URL or "
                                            "store.sqlite in the workspace)")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_datasets, _add_profile, _add_compress, _add_config, _add_launch_script, _add_resume,
                _add_export, _add_runs):
        add(commands)
    return parser, commands


def _add_datasets(commands: argparse._SubParsersAction) -> None:
    datasets = commands.add_parser("datasets", help="list, build or check datasets")
    datasets.add_argument("--json", action="store_true", help="print JSON")
    datasets.set_defaults(handler=_cmd_datasets_list)
    dataset_commands = datasets.add_subparsers(dest="datasets_command", metavar="ACTION")
    defaults = api.SampleParams()
    build = dataset_commands.add_parser("build", help="make a built-in sample dataset now")
    build.add_argument("name", choices=api.SAMPLES.names())
    build.add_argument("--size", type=int, default=defaults.size, help="image side in pixels")
    build.add_argument("--train", type=int, default=defaults.n_train, help="number of training images")
    build.add_argument("--test", type=int, default=defaults.n_test, help="number of test images")
    build.add_argument("--seed", type=int, default=defaults.seed)
    build.add_argument("--json", action="store_true")
    build.add_argument("--json-events", action="store_true", help="progress as JSON lines on stdout")
    build.set_defaults(handler=_cmd_datasets_build)
    check = dataset_commands.add_parser("check", help="check that a folder is a usable dataset")
    check.add_argument("path", type=lambda p: Path(p).expanduser())
    check.add_argument("--layout", choices=api.LAYOUTS.names(), help="(default: detected)")
    check.add_argument("--phase", default="train")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_cmd_datasets_check)


def _add_profile(commands: argparse._SubParsersAction) -> None:
    profile = commands.add_parser("profile", help="MACs and parameters of a family's teacher or a sub-network")
    profile.add_argument("--family", required=True, choices=api.FAMILIES.names())
    profile.add_argument("--image-size", type=_image_size, default=(256, 256), metavar="N|WxH")
    profile.add_argument("--arch", help="a sub-network's config string, e.g. 16_16_24_16_32_64_16_24 "
                                        "(default: the teacher)")
    profile.add_argument("--model", help='the family\'s model options as JSON, e.g. \'{"ngf": 32}\'')
    profile.add_argument("--input-nc", type=int, help="input channels (a model option)")
    profile.add_argument("--output-nc", type=int, help="output channels (a model option)")
    profile.add_argument("--json", action="store_true", help='print {"macs": ..., "params": ...}')
    profile.set_defaults(handler=_cmd_profile)


def _add_run_source(command: argparse.ArgumentParser, preset_help: str | None = None) -> None:
    """Where a command's run configuration comes from: a preset, a YAML file, a name and single settings."""
    from engine.config import PRESETS

    command.add_argument("--preset", choices=sorted(PRESETS), help=preset_help)
    command.add_argument("--config", type=Path, help="a YAML run configuration (may name a preset to extend)")
    command.add_argument("--name", help="the run's name")
    command.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="set one setting over the preset and the file (dotted key, YAML value; repeatable), "
                              "e.g. --set dataset.path=~/data/maps --set supernet.steps=1000")


def _add_compress(commands: argparse._SubParsersAction) -> None:
    from engine.config import STAGES

    compress = commands.add_parser("compress", help="run the whole pipeline: teacher, supernet, search, "
                                                    "finetune, export")
    _add_run_source(compress, "a built-in configuration: a *-sample on built-in data, or a paper-* experiment")
    compress.add_argument("--json", action="store_true", help="print the summary as JSON on the last line")
    compress.add_argument("--json-events", action="store_true", help="progress as JSON lines on stdout")
    compress.add_argument("--stop-after", choices=list(STAGES), metavar="STAGE",
                          help="stop once this stage has finished (e.g. teacher: only train the teacher); "
                               "resume continues")
    compress.set_defaults(handler=_cmd_compress)


def _add_config(commands: argparse._SubParsersAction) -> None:
    show = commands.add_parser(
        "config", help="print a run's configuration fully resolved (every default filled in, the family's recipe "
                       "included) and where each value comes from, without starting anything")
    _add_run_source(show, "a built-in configuration")
    show.add_argument("--family", help="a family's defaults alone (on a placeholder dataset path)")
    show.add_argument("--json", action="store_true", help='print {"config": ..., "sources": ...}')
    show.add_argument("--check", action="store_true",
                      help="also run the pre-flight on this machine (the budgets resolved, the search space's extremes, "
                           "every problem with its field and fix; exit status 1 when there is one): what compress "
                           "checks before it creates the run")
    show.add_argument("--estimate", action="store_true",
                      help="with --check: also estimate the run's time on this machine (and on a GPU where there is "
                           "one) from a distillation step and a generated image measured here (seconds to minutes)")
    show.add_argument("--processes-per-node", type=int, default=1, help="with --check: the processes per machine")
    show.add_argument("--nodes", type=int, default=1, help="with --check: the machines")
    show.set_defaults(handler=_cmd_config)


def _add_launch_script(commands: argparse._SubParsersAction) -> None:
    launch = commands.add_parser(
        "launch-script", help="write a run's configuration with a torchrun script and a Slurm batch file for "
                              "several processes or machines (torchrun --nproc_per_node N main.py compress ... "
                              "runs the same by hand)")
    _add_run_source(launch)
    launch.add_argument("--processes-per-node", type=int, default=2, help="one per GPU on GPU machines")
    launch.add_argument("--nodes", type=int, default=1)
    launch.add_argument("--out", type=Path, default=Path("."), help="the folder to write the files to")
    launch.set_defaults(handler=_cmd_launch_script)


def _add_resume(commands: argparse._SubParsersAction) -> None:
    from engine.config import STAGES

    resume = commands.add_parser("resume", help="continue a stopped or failed run from its checkpoints")
    resume.add_argument("run_id", type=int)
    resume.add_argument("--json", action="store_true")
    resume.add_argument("--json-events", action="store_true")
    resume.add_argument("--redo", choices=list(STAGES), metavar="STAGE",
                        help="redo this stage (and the stages after it) even if it has finished")
    resume.add_argument("--stop-after", choices=list(STAGES), metavar="STAGE",
                        help="stop once this stage has finished; resume continues")
    resume.set_defaults(handler=_cmd_resume)


def _add_export(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="export any candidate of a run (or its final student) to ONNX")
    export.add_argument("run_id", type=int)
    export.add_argument("--arch", help="a sub-network of the run's supernet (default: the run's final student)")
    export.add_argument("--out", type=Path, help="output folder (default: the run's exports folder)")
    export.add_argument("--json", action="store_true")
    export.set_defaults(handler=_cmd_export)


def _add_runs(commands: argparse._SubParsersAction) -> None:
    runs = commands.add_parser("runs", help="list the runs in the store (runs cancel / delete / mark-failed: act on one)")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=_cmd_runs)
    run_commands = runs.add_subparsers(dest="runs_command", metavar="{cancel,delete,mark-failed}")
    cancel = run_commands.add_parser(
        "cancel", help="ask a running run on this machine to stop at its next checkpoint (whoever started it)")
    cancel.add_argument("run_id", type=int)
    delete = run_commands.add_parser("delete", help="delete a run from the store and its folder from the disk")
    delete.add_argument("run_id", type=int)
    delete.add_argument("--keep-files", action="store_true", help="keep the run's folder (checkpoints, exports)")
    failed = run_commands.add_parser(
        "mark-failed", help="mark failed a run listed as running whose process is gone (refused while it is alive)")
    failed.add_argument("run_id", type=int)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(workspace=args.workspace, store_url=args.store_url)
        return args.handler(args, settings)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # the store refused a read or write after it opened (disk full, server gone)
        log.debug("store error", exc_info=True)
        print(f"error: {api.store_error(exc, settings.resolved_store_url)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): nothing more to say, and nowhere to say it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 1
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
