"""QApplication set-up: application identity for QSettings, the store, and the main window."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication

from engine.errors import UserError
from engine.settings import Settings
from engine.api import Store, open_store
from workbench.platform.binding_check import problem as binding_problem
from workbench.platform.platform_check import platform_failure_explained
from workbench.platform.resources import app_icon

ORGANIZATION = "GAN Compression Workbench"
APPLICATION = "workbench"


def make_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        with platform_failure_explained():
            app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("GAN Compression Workbench")
    app.setDesktopFileName("gcw")  # matches resources/gcw.desktop, so desktops group the window under it
    # Every window and dialog takes this icon.
    app.setWindowIcon(app_icon())
    return app  # type: ignore[return-value]


def freeze_startup_heap() -> None:
    """Move the objects alive after start-up (torch, Qt, the engine's modules: some 400k) out of the
    garbage collector's view. They live as long as the process, and traversing them in full collections
    paused the event loop for 100-400 ms (measured while a run and a latency measurement went)."""
    gc.collect()
    gc.freeze()


def open_store_or_fallback(settings: Settings) -> tuple[Settings, Store, list[str]]:
    """The store of these settings or, where it cannot be opened, the first of these that can: the
    workspace's own SQLite store, the default workspace's, a temporary workspace. The window then opens on
    it and says what was wrong, so that a bad setting never keeps the user from the Settings dialog."""
    candidates = [settings]
    if settings.store_url:
        candidates.append(settings.with_(store_url=None))
    default = Settings(device=settings.device, threads=settings.threads, inception_weights=settings.inception_weights)
    if default.resolved_store_url != candidates[-1].resolved_store_url:
        candidates.append(default)
    problems = []
    for candidate in candidates:
        try:
            store = open_store(candidate.resolved_store_url)
        except UserError as exc:
            problems.append(str(exc))
            continue
        if problems:
            problems.append(f"showing the store {candidate.resolved_store_url} instead; fix the setting in Settings")
        return candidate, store, problems
    temporary = default.with_(workspace=Path(tempfile.mkdtemp(prefix="gcw-workspace-")))
    problems.append(f"showing an empty temporary workspace {temporary.workspace} (deleted by the system in time); "
                    "fix the workspace or store URL in Settings")
    return temporary, open_store(temporary.resolved_store_url), problems


def run_app(settings: Settings, check: bool = False) -> int:
    """Open the window and run the event loop; ``check`` quits as soon as the window is up, after
    printing its title and the store it opened (used by the install and bundle smoke tests)."""
    from workbench.main_window import MainWindow
    from workbench.platform.settings import load_settings

    app = make_application()
    # A binding that corrupts reference counts aborts the window minutes later: refused now, in one line.
    if (defect := binding_problem()) is not None:
        print(defect, file=sys.stderr)
        return 2
    # Stored choices of the Settings dialog apply unless the command line or environment set them.
    stored, problems = load_settings()
    if not any(k in os.environ for k in ("GCW_WORKSPACE", "GCW_STORE_URL")) and settings == Settings.from_env():
        settings = stored
    else:
        problems = []
    settings, store, store_problems = open_store_or_fallback(settings)
    window = MainWindow(settings, store, problems=problems + store_problems)
    window.show()
    freeze_startup_heap()
    if check:
        from PySide6.QtCore import QTimer

        def report() -> None:
            import subprocess

            from workbench.background.children import child_command

            print(f"window opened: {window.windowTitle()!r}, icon {not app.windowIcon().isNull()}, "
                  f"store {settings.resolved_store_url}", flush=True)
            # Runs are child processes: show which program they would be and that it answers.
            program, arguments = child_command(["--version"])
            child = subprocess.run([program, *arguments], capture_output=True, text=True, timeout=300)
            first = child.stdout.splitlines()[0] if child.stdout else child.stderr.strip()[-200:]
            print(f"child runs: {' '.join([program, *arguments[:-1]])} -> {first}", flush=True)
            app.quit()

        QTimer.singleShot(0, report)
    try:
        return app.exec()
    finally:
        store.close()
