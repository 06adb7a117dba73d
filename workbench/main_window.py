"""The main window: the runs list from the store, and for the selected run the monitor, the Pareto
plot and the teacher/student comparison; runs start and resume as child processes of the engine."""

from __future__ import annotations

from datetime import datetime

import yaml
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QMainWindow, QMessageBox, QSplitter,
                               QTableView, QTabWidget, QVBoxLayout, QWidget)

from engine.config import DEFAULT_PRESET, RunConfig
from engine.errors import UserError
from engine.events import Event
from engine.pipeline import fail_dead_runs, run_dir
from engine.settings import Settings
from engine.stages.context import stage_result
from engine.store import RunSummary, Store, open_store
from workbench.compare_view import CompareView
from workbench.export_dialog import ExportDialog
from workbench.monitor_view import MonitorView
from workbench.new_run_dialog import NewRunDialog
from workbench.pareto_view import ParetoView
from workbench.process import RunProcess
from workbench.reader import StoreReader
from workbench.runs_model import RunsTableModel
from workbench.settings import save_settings
from workbench.settings_dialog import SettingsDialog

REFRESH_INTERVAL_MS = 2000


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, store: Store):
        super().__init__()
        self.settings, self.store = settings, store
        self.processes: dict[int, RunProcess] = {}
        self.reader = StoreReader(self, threads=1)
        self.reader.failed.connect(self._store_unreadable)
        self._select_when_listed: int | None = None
        self._starting: list[RunProcess] = []
        self.setWindowTitle("GAN Compression Workbench")

        self.runs_model = RunsTableModel(self)
        self.runs_view = QTableView()
        self.runs_view.setModel(self.runs_model)
        self.runs_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_view.verticalHeader().hide()
        self.runs_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.runs_view.horizontalHeader().setStretchLastSection(True)
        self.runs_view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.empty_label = QLabel("<h3>No runs yet</h3><p>Start one with <b>New run…</b> (Ctrl+N): the presets "
                                  "run the whole method on built-in sample data in minutes on a CPU.</p>")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.runs_view)
        left_layout.addWidget(self.empty_label)

        self.monitor = MonitorView(store)
        self.monitor.cancel_requested.connect(self.cancel_run)
        self.monitor.resume_requested.connect(self.resume_run)
        self.pareto = ParetoView(store)
        self.compare = CompareView(store, settings)
        self.pareto.candidate_selected.connect(self._candidate_selected)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.monitor, "Monitor")
        self.tabs.addTab(self.pareto, "Pareto")
        self.tabs.addTab(self.compare, "Compare")

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 5)
        splitter.setSizes([480, 1000])
        self.setCentralWidget(splitter)
        self._build_actions()
        self._show_status()

        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self.refresh_timer.timeout.connect(self.refresh)
        self.refresh_timer.start()
        self._restore_geometry()
        self.refresh()

    # --- chrome -----------------------------------------------------------------------------------
    def _build_actions(self) -> None:
        toolbar = self.addToolBar("Run")
        toolbar.setObjectName("runToolbar")
        self.new_action = QAction("New run…", self, shortcut=QKeySequence.StandardKey.New, triggered=self.new_run)
        self.cancel_action = QAction("Cancel", self, triggered=lambda: self.cancel_run(self.selected_run_id()))
        self.resume_action = QAction("Resume", self, triggered=lambda: self.resume_run(self.selected_run_id()))
        self.export_action = QAction("Export…", self, triggered=self.export_selected)
        self.settings_action = QAction("Settings…", self, triggered=self.open_settings)
        refresh = QAction("Refresh", self, shortcut=QKeySequence.StandardKey.Refresh, triggered=self.refresh)
        for action in (self.new_action, self.cancel_action, self.resume_action, self.export_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.settings_action)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions([self.new_action, self.export_action, self.settings_action, refresh])
        file_menu.addAction(QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close))
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(QAction("&About", self, triggered=self._about))

    def _about(self) -> None:
        from workbench.about_dialog import AboutDialog

        AboutDialog(self.settings, self).exec()

    def _show_status(self) -> None:
        self.statusBar().showMessage(f"Workspace: {self.settings.workspace}   Store: {self.settings.resolved_store_url}")

    # --- runs list --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the runs list in the background (its cost grows with the store); shown when it arrives."""
        store = self.store

        def read() -> list[RunSummary]:
            fail_dead_runs(store)
            return store.list_runs()

        self.reader.read("runs", read, self._show_runs)

    def idle(self) -> bool:
        """No store read of the window or its views is pending (tests wait for this)."""
        return not any(reader.busy() for reader in (self.reader, self.monitor.reader, self.pareto.reader,
                                                    self.compare.reader))

    def _store_unreadable(self, key: str, message: str) -> None:
        # A store that went away must not close the window.
        self.statusBar().showMessage(f"Cannot read the store {self.settings.resolved_store_url}: {message}")

    def _show_runs(self, runs: list[RunSummary]) -> None:
        selected = self.selected_run_id()
        self.runs_model.set_runs(runs)
        self.runs_view.setVisible(bool(runs))
        self.empty_label.setVisible(not runs)
        self.pareto.set_runs([(r.id, r.name) for r in runs])
        if selected is not None and (row := self.runs_model.row_of(selected)) is not None:
            self.runs_view.selectRow(row)
        elif runs and selected is None:
            self.runs_view.selectRow(0)
        if self._select_when_listed is not None and self.runs_model.row_of(self._select_when_listed) is not None:
            self.runs_view.selectRow(self.runs_model.row_of(self._select_when_listed))
            self._select_when_listed = None
        self._update_views()

    def selected_run_id(self) -> int | None:
        rows = self.runs_view.selectionModel().selectedRows()
        return self.runs_model.run_at(rows[0].row()).id if rows else None

    def select_run(self, run_id: int) -> None:
        row = self.runs_model.row_of(run_id)
        if row is not None:
            self.runs_view.selectRow(row)

    def _selection_changed(self, *_: object) -> None:
        self._update_views(reload=True)

    def _update_views(self, reload: bool = False) -> None:
        run_id = self.selected_run_id()
        running = run_id in self.processes and self.processes[run_id].is_running()
        self.monitor.set_process_running(running)
        self.monitor.set_run(run_id)
        self.cancel_action.setEnabled(running)
        summary = self.runs_model.run_at(self.runs_model.row_of(run_id)) if run_id is not None else None
        status = summary.status if summary else None
        self.resume_action.setEnabled(run_id is not None and not running and status in ("failed", "cancelled"))
        # best_macs is set as soon as the run has a scored candidate: something to export.
        self.export_action.setEnabled(status == "finished" or bool(summary and summary.best_macs is not None))
        if reload or run_id != self.pareto.run_id:
            self.pareto.set_run(run_id, self._budget(run_id))
            self.compare.set_run(run_id)

    def _budget(self, run_id: int | None) -> float | None:
        if run_id is None:
            return None
        search = stage_result(run_dir(self.settings, run_id), "search")
        if search is not None:
            return search["budget_macs"]
        try:
            config = RunConfig.model_validate(self.store.get_run(run_id).config)
        except ValueError:  # a run this version cannot read: show it without a budget line
            return None
        return config.search.macs_budget

    # --- processes --------------------------------------------------------------------------------
    def _watch(self, process: RunProcess) -> None:
        process.event.connect(lambda event, p=process: self._on_event(p, event))
        process.finished.connect(lambda code, p=process: self._on_finished(p, code))

    def start_config(self, config: RunConfig) -> RunProcess:
        folder = self.settings.workspace / "configs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{config.name}.yaml"
        path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        process = RunProcess(self.settings, self)
        self._watch(process)
        self._starting.append(process)
        process.compress(path)
        return process

    def new_run(self) -> None:
        dialog = NewRunDialog(self, QSettings().value("new_run/preset", DEFAULT_PRESET))
        if dialog.exec() and dialog.config is not None:
            QSettings().setValue("new_run/preset", dialog.preset.currentText())
            self.start_config(dialog.config)
            self.statusBar().showMessage(f"started {dialog.config.name}")

    def resume_run(self, run_id: int | None) -> None:
        if run_id is None or (run_id in self.processes and self.processes[run_id].is_running()):
            return
        process = RunProcess(self.settings, self)
        self._watch(process)
        self.processes[run_id] = process
        process.resume(run_id)
        self._update_views()

    def cancel_run(self, run_id: int | None) -> None:
        process = self.processes.get(run_id) if run_id is not None else None
        if process is not None and process.is_running():
            process.cancel()
            self.statusBar().showMessage(f"run {run_id} stops at its next checkpoint")

    def _on_event(self, process: RunProcess, event: Event) -> None:
        if event.run_id is not None and process in self._starting:
            self._starting.remove(process)
            self.processes[event.run_id] = process
            self._select_when_listed = event.run_id  # selected once the refreshed list holds it
            self.refresh()
        self.monitor.handle_event(event)
        self.pareto.handle_event(event)

    def _on_finished(self, process: RunProcess, code: int) -> None:
        if process in self._starting:  # it failed before it had a run id (bad config, missing data)
            self._starting.remove(process)
        if code not in (0, 3):
            message = process.last_error() or f"exit code {code}"
            self.statusBar().showMessage(f"run {process.run_id or ''} failed: {message}")
        self.refresh()
        self.compare.reload_candidates()

    # --- dialogs ----------------------------------------------------------------------------------
    def _candidate_selected(self, run_id: int, arch: str) -> None:
        self.compare.select_candidate(run_id, arch)
        self.statusBar().showMessage(f"selected {arch} of run {run_id}")

    def export_selected(self) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            return
        selected = self.pareto.selected if self.pareto.selected and self.pareto.selected["run_id"] == run_id else None
        # The candidates worth exporting, from what the Pareto view holds: no store read of 10^5 rows here.
        offered = self.pareto.front_points() if self.pareto.run_id == run_id else []
        if selected is not None and all(row["arch"] != selected["arch"] for row in offered):
            offered.append(selected)
        ExportDialog(self.store, self.settings, run_id, selected["arch"] if selected else None, self,
                     candidates=offered).exec()

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() and dialog.result_settings is not None:
            new = dialog.result_settings
            if new.resolved_store_url != self.settings.resolved_store_url:
                # The new store must open before it replaces the current one, which stays on failure.
                try:
                    store = open_store(new.resolved_store_url)
                except UserError as exc:
                    QMessageBox.warning(self, "Cannot open the run store", f"{exc}\n\nThe current store is kept.")
                    return
                self.store.close()
                self.store = store
                for view in (self.monitor, self.pareto, self.compare):
                    view.store = self.store
            save_settings(new)
            self.settings = new
            self.compare.settings = new
            self._show_status()
            self.refresh()

    # --- window state -----------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        geometry = QSettings().value("main_window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 850)

    def closeEvent(self, event) -> None:
        QSettings().setValue("main_window/geometry", self.saveGeometry())
        self.refresh_timer.stop()
        self.compare.worker.wait(10_000)
        for reader in (self.reader, self.monitor.reader, self.pareto.reader, self.compare.reader):
            reader.wait(10_000)
        for process in [*self.processes.values(), *self._starting]:
            # Stop at a checkpoint rather than orphan the process: the run resumes later from there.
            process.cancel()
            process.process.waitForFinished(10_000)
        super().closeEvent(event)
