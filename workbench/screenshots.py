"""Screenshots of every view on a real run: ``python -m workbench.screenshots OUTDIR [--workspace DIR]``.

Without ``--workspace`` it makes a fresh workspace and runs a sample preset (``--preset``) in it first
(about ten minutes on 2 CPU cores), so every view shows a real sample run."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _sample_run(settings, preset: str) -> int:
    from engine.api import create_run, execute, load_config, open_store

    config = load_config(preset)
    store = open_store(settings.resolved_store_url)
    try:
        run_id = create_run(config, store, settings)
        execute(run_id, settings, store, lambda event: None)
    finally:
        store.close()
    return run_id


def capture(out_dir: Path, settings, run_id: int | None = None, size: tuple[int, int] = (1400, 900)) -> list[Path]:

    from engine.api import open_store
    from workbench.app import make_application
    from workbench.dialogs.export_dialog import ExportDialog
    from workbench.main_window import MainWindow
    from workbench.dialogs.new_run_dialog import NewRunDialog
    from workbench.dialogs.settings_dialog import SettingsDialog

    app = make_application()
    out_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.resolved_store_url)
    window = MainWindow(settings, store)
    window.resize(*size)
    window.show()
    run_id = run_id or store.list_runs()[0].id
    shots = []

    def settle(timeout_s: float = 60.0) -> None:
        """Until the window's background reads have been shown."""
        deadline = time.monotonic() + timeout_s
        app.processEvents()
        while not window.idle() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        app.processEvents()

    settle()
    window.select_run(run_id)
    settle()

    def grab(widget, name: str) -> None:
        settle()
        window.pareto.flush()
        path = out_dir / f"{name}.png"
        widget.grab().save(str(path))
        shots.append(path)

    window.tabs.setCurrentWidget(window.summary)
    grab(window, "summary")
    window.tabs.setCurrentWidget(window.monitor)
    grab(window, "monitor")
    window.tabs.setCurrentWidget(window.pareto)
    front = window.pareto.front_points()
    if front:
        window.pareto.select(front[len(front) // 2])
    grab(window, "pareto")
    window.tabs.setCurrentWidget(window.compare)
    window.compare.measure_latency()
    for _ in range(600):
        app.processEvents()
        window.compare.worker.wait(100)
        if window.compare.result is not None and window.compare.latency is not None and not window.compare.state.busy:
            break
    window.compare.fit()
    grab(window, "compare")
    dialog = NewRunDialog(window, settings=window.settings)
    dialog.show()
    for _ in range(300):  # the teacher's MACs and the budget, measured in the background
        app.processEvents()
        if not dialog.preview_pending() and not dialog.checking():
            break
        time.sleep(0.05)
    grab(dialog, "new_run")
    dialog.close()
    selected = window.pareto.selected
    export = ExportDialog(store, settings, run_id, selected["arch"] if selected else None, window,
                          candidates=window.pareto.front_points())
    export.resize(700, 300)
    export.show()
    export.start()
    export.process.waitForFinished(300_000)
    app.processEvents()
    grab(export, "export")
    export.close()
    settings_dialog = SettingsDialog(settings, window)
    settings_dialog.resize(700, 300)
    settings_dialog.show()
    grab(settings_dialog, "settings")
    settings_dialog.close()
    window.close()
    store.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from engine.api import PRESETS, default_preset
    from engine.settings import Settings

    parser = argparse.ArgumentParser(description="Save a screenshot of each workbench view.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--workspace", type=Path,
                        help="show the latest run of this workspace (default: run --preset in a new one first)")
    parser.add_argument("--run", type=int, help="the run to show (default: the latest)")
    parser.add_argument("--size", default="1400x900", help="the main window's size, WxH (1366x768: a laptop)")
    parser.add_argument("--preset", default=default_preset(), choices=sorted(PRESETS),
                        help="the preset to run without --workspace")
    args = parser.parse_args(argv)
    from engine.api import open_store

    if args.workspace:
        settings = Settings(workspace=args.workspace, device="cpu")
        run_id = args.run
        exists = bool(settings.store_url) or (settings.workspace / "store.sqlite").is_file()
        store = open_store(settings.resolved_store_url) if exists else None
        try:
            if store is None or not store.list_runs():
                parser.error(f"the workspace {args.workspace} has no runs to show: run one there first, or leave out "
                             "--workspace to run --preset in a new workspace")
        finally:
            if store is not None:
                store.close()
    else:
        settings = Settings(workspace=Path(tempfile.mkdtemp(prefix="gcw-screens-")), device="cpu")
        run_id = _sample_run(settings, args.preset)
    width, height = (int(v) for v in args.size.lower().split("x"))
    for path in capture(args.out_dir, settings, run_id, (width, height)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
