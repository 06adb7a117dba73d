"""The main window: the runs list from the store across the top, and below it, for the selected run, the
monitor, the Pareto plot and the teacher/student comparison; runs start and resume as child processes of
the engine."""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

import yaml
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.api import (
    STAGES,
    default_preset,
    RunConfig,
    RunResult,
    RunSummary,
    SearchBudget,
    Store,
    TeacherReference,
    cancel_run,
    delete_run,
    mark_failed,
    not_responding,
    run_dir,
    run_result,
    search_budget,
    search_teacher,
)
from engine.errors import UserError
from engine.events import Event, StageFinished, StepProgress
from engine.settings import Settings
from workbench.views.compare_view import CompareView
from workbench.dialogs.export_dialog import ExportDialog
from workbench.dialogs.getting_started import DOCS, GettingStartedDialog
from workbench.views.monitor_view import MonitorView
from workbench.dialogs.new_run_dialog import NewRunDialog
from workbench.widgets.open_location import open_location
from workbench.views.pareto_view import ParetoView
from workbench.background.process import RunProcess
from workbench.background.reader import StoreReader
from workbench.views.runs_model import RunsTableModel
from workbench.session.state import Selection, Session
from workbench.session.watched_runs import WatchedRuns
from workbench.platform.settings import save_settings
from workbench.dialogs.settings_dialog import SettingsDialog
from workbench.views.summary_view import SummaryView

REFRESH_INTERVAL_MS = 2000


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (0 where it is not there); a file removed while it is summed
    counts nothing."""
    total = 0
    try:
        for path in folder.rglob("*") if folder.is_dir() else ():
            try:
                total += path.stat().st_size if path.is_file() else 0
            except OSError:
                pass
    except OSError:  # a folder that cannot be listed: the question says what was counted
        pass
    return total


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, store: Store, problems: list[str] | None = None):
        super().__init__()
        #: The settings and the store every view reads from (``workbench.session.state.Session``): views follow it.
        self.session = Session(settings, store)
        #: The runs this window started and what follows from them (Qt-free: workbench.session.watched_runs).
        self.watched: WatchedRuns[RunProcess] = WatchedRuns()
        self.reader = StoreReader(self, threads=1)
        # The one selection every view shows (Qt-free: workbench.session.state); views that let the user choose set it.
        self.selection = Selection()
        self.selection.subscribe(self._show_selection)
        self.reader.failed.connect(self._store_unreadable)
        self.setWindowTitle("GAN Compression Workbench")

        left = self._make_runs_list()

        self.monitor = MonitorView(store)
        self.monitor.cancel_requested.connect(self.ask_cancel)
        self.monitor.resume_requested.connect(self.resume_run)
        self.pareto = ParetoView(store)
        self.compare = CompareView(store, settings)
        for view in (self.monitor, self.pareto, self.compare):
            view.follow(self.session)
        self.pareto.candidate_selected.connect(self._candidate_selected)
        self.compare.candidate_changed.connect(self._compare_moved)
        self.summary = SummaryView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.summary, "Summary")
        self.tabs.addTab(self.monitor, "Monitor")
        self.tabs.addTab(self.pareto, "Pareto")
        self.tabs.addTab(self.compare, "Compare")
        self.tabs.setCurrentWidget(self.monitor)
        self._tray = None

        # The runs list across the top, the views of the selected run below: every column of the list and
        # the side-by-side images of the compare view both get the window's whole width.
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 4)
        splitter.setSizes([200, 650])
        splitter.setChildrenCollapsible(False)
        # What was wrong with the saved settings or the store at start-up, until the user fixes it.
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setTextFormat(Qt.TextFormat.RichText)
        self.problems.setStyleSheet("background: #fff3cd; color: #5c4400; padding: 6px; border: 1px solid #e0c36a")
        self.problems.linkActivated.connect(lambda _: self.open_settings())
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.addWidget(self.problems)
        central_layout.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self.show_problems(problems or [])
        self._build_actions()
        self._show_status()

        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self.refresh_timer.timeout.connect(self.refresh)
        self.refresh_timer.start()
        self._restore_geometry()
        self.refresh()

    def _make_runs_list(self) -> QWidget:
        """The runs table (one row a run, selection by row, a menu of actions on each) and its empty-list note."""
        self.runs_model = RunsTableModel(self)
        self.runs_view = QTableView()
        self.runs_view.setModel(self.runs_model)
        self.runs_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_view.verticalHeader().hide()
        self.runs_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Spare width goes to the task (where long dataset paths are shortened), not to the start date.
        self.runs_view.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.runs_view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.runs_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.runs_view.customContextMenuRequested.connect(self._runs_menu)
        self.empty_label = QLabel("<h3>No runs yet</h3><p>Start one with <b>New run…</b> (Ctrl+N): the presets "
                                  "run the whole method on built-in sample data in minutes on a CPU.</p>")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.runs_view)
        left_layout.addWidget(self.empty_label)
        return left

    # --- chrome -----------------------------------------------------------------------------------
    def _build_actions(self) -> None:
        toolbar = self.addToolBar("Run")
        toolbar.setObjectName("runToolbar")
        self.new_action = QAction("New run…", self, shortcut=QKeySequence.StandardKey.New, triggered=self.new_run)
        self.cancel_action = QAction("Cancel", self, triggered=lambda: self.ask_cancel(self.selected_run_id()))
        self.resume_action = QAction("Resume", self, triggered=lambda: self.resume_run(self.selected_run_id()))
        self.export_action = QAction("Export…", self, triggered=self.export_selected)
        self.settings_action = QAction("Settings…", self, triggered=self.open_settings)
        refresh = QAction("Refresh", self, shortcut=QKeySequence.StandardKey.Refresh, triggered=self.refresh)
        self.rename_action = QAction("Rename…", self, shortcut="F2",
                                     triggered=lambda: self.rename_run(self.selected_run_id()))
        self.delete_action = QAction("Delete…", self, shortcut=QKeySequence.StandardKey.Delete,
                                     triggered=lambda: self.delete_run(self.selected_run_id()))
        self.mark_failed_action = QAction("Mark failed", self,
                                          triggered=lambda: self.mark_run_failed(self.selected_run_id()))
        self.open_folder_action = QAction("Open run folder", self,
                                          triggered=lambda: self.open_run_folder(self.selected_run_id()))
        for action in (self.new_action, self.cancel_action, self.resume_action, self.export_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.settings_action)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions([self.new_action, self.export_action, self.settings_action, refresh])
        run_menu = self.menuBar().addMenu("&Run")
        run_menu.addActions(self.run_actions())
        file_menu.addAction(QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close))
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(QAction("&Getting started", self, triggered=self._getting_started))
        if DOCS.is_dir():
            help_menu.addAction(QAction("&Documentation folder", self,
                                        triggered=lambda: open_location(self, str(DOCS))))
        help_menu.addAction(QAction("&About", self, triggered=self._about))

    def run_actions(self) -> list[QAction]:
        """What can be done to the selected run (the Run menu and the runs list's context menu)."""
        return [self.cancel_action, self.resume_action, self.export_action, self.rename_action,
                self.open_folder_action, self.mark_failed_action, self.delete_action]

    def _runs_menu(self, position) -> None:
        index = self.runs_view.indexAt(position)
        if not index.isValid():
            return
        self.runs_view.selectRow(index.row())
        menu = QMenu(self)
        menu.addActions(self.run_actions())
        menu.exec(self.runs_view.viewport().mapToGlobal(position))

    def _getting_started(self) -> None:
        GettingStartedDialog(self).open()

    def _about(self) -> None:
        from workbench.dialogs.about_dialog import AboutDialog

        AboutDialog(self.settings, self).exec()

    def show_problems(self, problems: list[str]) -> None:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
        self.problems.setText(f"<b>Check the settings:</b><ul style='margin: 2px'>{items}</ul>"
                              "<a href='settings'>Open Settings…</a>")
        self.problems.setVisible(bool(problems))

    def _show_status(self) -> None:
        self.statusBar().showMessage(f"Workspace: {self.settings.workspace}   Store: {self.settings.resolved_store_url}")

    # --- runs list --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the runs list in the background (its cost grows with the store); shown when it arrives."""
        store = self.store

        def read() -> list[RunSummary]:
            # Read only: a run whose process seems gone is shown as not responding, and failed only by the user
            # (Mark failed) or by a resume, so a window never fails a live run on another machine.
            return store.list_runs()

        self.reader.read("runs", read, self._show_runs)

    def idle(self) -> bool:
        """No store read of the window or its views is pending (tests wait for this)."""
        return not any(reader.busy() for reader in (self.reader, self.monitor.reader, self.pareto.reader,
                                                    self.compare.reader))

    def _store_unreadable(self, key: str, message: str) -> None:
        if key.startswith("cancel-"):
            QMessageBox.information(self, "Cannot cancel the run from here", message)
            self.refresh()
            return
        if key.startswith("delete-"):
            QMessageBox.warning(self, "Cannot delete the run", message)
        if key.startswith("mark-failed-"):
            QMessageBox.warning(self, "Cannot mark the run failed", message)
            self.refresh()
            return
        # A store that went away must not close the window.
        self.statusBar().showMessage(f"Cannot read the store {self.settings.resolved_store_url}: {message}")

    def _show_runs(self, runs: list[RunSummary]) -> None:
        selected = self.selected_run_id()
        self.runs_model.set_runs(runs)
        for words in self.watched.stopped(runs):  # a stop asked for is said once it happened
            self.statusBar().showMessage(words)
        self.runs_view.setVisible(bool(runs))
        self.empty_label.setVisible(not runs)
        # Other runs are overlaid for comparison once they are finished (a running one's front still moves).
        self.pareto.set_runs([(r.id, r.name) for r in runs if r.status == "finished"],
                             {r.id: r.image_size for r in runs})
        if selected is not None and (row := self.runs_model.row_of(selected)) is not None:
            self.runs_view.selectRow(row)
        elif runs:  # nothing was selected, or the selected run is gone (deleted)
            self.runs_view.selectRow(0)
        chosen = self.watched.to_select(lambda run_id: self.runs_model.row_of(run_id) is not None)
        if chosen is not None:
            self.runs_view.selectRow(self.runs_model.row_of(chosen))
        self._update_views()
        if words := self.watched.words_when_listed():
            self.statusBar().showMessage(words)
        shown = self.selected_run_id()
        listed = self.runs_model.run_at(self.runs_model.row_of(shown)) if shown is not None else None
        if listed is not None and listed.status == "running" and shown not in self.watched.processes:
            self.pareto.catch_up(shown, listed.candidates)  # a run elsewhere: its candidates from the store

    @property
    def processes(self) -> dict[int, RunProcess]:
        """This window's processes, by run."""
        return self.watched.processes

    @property
    def notifications(self) -> list[tuple[str, str]]:
        """(title, text) of each run-end notification given."""
        return self.watched.notifications

    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def store(self) -> Store:
        return self.session.store

    def selected_run_id(self) -> int | None:
        rows = self.runs_view.selectionModel().selectedRows()
        return self.runs_model.run_at(rows[0].row()).id if rows else None

    def select_run(self, run_id: int) -> None:
        row = self.runs_model.row_of(run_id)
        if row is not None:
            self.runs_view.selectRow(row)

    def _selection_changed(self, *_: object) -> None:
        self._update_views(reload=True)
        self.selection.select_run(self.selected_run_id())
        # A finished run opens on its outcome, a live one on its progress (a tab the user chose otherwise stays).
        run_id = self.selected_run_id()
        row = self.runs_model.row_of(run_id) if run_id is not None else None
        status = self.runs_model.run_at(row).status if row is not None else None
        if status == "finished" and self.tabs.currentWidget() is self.monitor:
            self.tabs.setCurrentWidget(self.summary)
        elif status == "running" and self.tabs.currentWidget() is self.summary:
            self.tabs.setCurrentWidget(self.monitor)

    def _update_views(self, reload: bool = False) -> None:
        run_id = self.selected_run_id()
        running = self.watched.is_running(run_id)
        listed = self.runs_model.run_at(self.runs_model.row_of(run_id)) if run_id is not None else None
        status = listed.status if listed else None
        # Any live run can be cancelled, whoever started it (this window, an earlier one, a terminal); one on
        # another machine too, where Cancel says how (a signal cannot reach it from here).
        cancellable = running or bool(listed and status == "running" and not not_responding(listed))
        self.monitor.set_process_running(cancellable)
        self.monitor.set_run(run_id)
        self.cancel_action.setEnabled(cancellable)
        self.resume_action.setEnabled(run_id is not None and not running and status in ("failed", "cancelled"))
        self.rename_action.setEnabled(run_id is not None)
        self.open_folder_action.setEnabled(run_id is not None)
        self.delete_action.setEnabled(run_id is not None and not running and status != "running")
        self.mark_failed_action.setEnabled(bool(listed and not running and not_responding(listed)))
        # best_macs is set as soon as the run has a scored candidate: something to export.
        self.export_action.setEnabled(status == "finished" or bool(listed and listed.best_macs is not None))
        if self.watched.summary_changed(listed, reload):
            self._show_summary(run_id, listed, status)
        if reload or run_id != self.pareto.run_id:
            self.pareto.set_run(run_id)  # its candidates are read at once; its references when they come
            self.compare.set_run(run_id)
            self._read_references(run_id)
        elif run_id is not None and not self.pareto.references.knows_teacher(run_id):
            # The search writes its teacher reference as it starts: picked up by the next refresh.
            self._read_references(run_id)

    def _show_summary(self, run_id: int | None, listed: RunSummary | None, status: str | None) -> None:
        """The selected run's summary: a finished run's result is read off the GUI thread and shown when it comes
        (the run shown meanwhile stays as it was, never a half of each)."""
        folder = run_dir(self.settings, run_id) if run_id is not None else None
        if run_id is None or status != "finished":
            self.reader.forget("summary")
            self.summary.show_summary(listed, None, folder)
            return
        settings = self.settings

        def show(result: RunResult | None) -> None:
            if self.selected_run_id() == run_id:
                self.summary.show_summary(listed, result, folder)

        self.reader.read("summary", lambda: run_result(settings, run_id), show)

    def _read_references(self, run_id: int | None) -> None:
        """The Pareto plot's references of a run (its teacher on the search split, its budgets), read off the GUI
        thread and drawn when they come."""
        if run_id is None:
            self.reader.forget("references")
            return
        settings, store = self.settings, self.store

        def read() -> tuple[TeacherReference | None, SearchBudget | None]:
            return search_teacher(settings, run_id), search_budget(store, settings, run_id)

        def show(found: tuple[TeacherReference | None, SearchBudget | None]) -> None:
            teacher, budget = found
            latency = (budget.latency_ms, budget.latency_on) if budget and budget.latency_ms else None
            self.pareto.set_references(run_id, budget.macs if budget else None, teacher, latency,
                                       measured=bool(budget and budget.measured))

        self.reader.read("references", read, show)

    # --- processes --------------------------------------------------------------------------------
    def _watch(self, process: RunProcess) -> None:
        process.event.connect(lambda event, p=process: self._on_event(p, event))
        process.finished.connect(lambda code, p=process: self._on_finished(p, code))

    def start_config(self, config: RunConfig, processes: int = 1) -> RunProcess:
        folder = self.settings.workspace / "configs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{config.name}.yaml"
        path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        process = RunProcess(self.settings, self)
        self._watch(process)
        self.watched.started(process)
        process.compress(path, processes)
        return process

    def new_run(self) -> None:
        taken = {self.runs_model.run_at(row).name for row in range(self.runs_model.rowCount())}
        dialog = NewRunDialog(self, QSettings().value("new_run/preset", default_preset()), taken_names=taken,
                              settings=self.settings)
        if dialog.exec() and dialog.config is not None:
            QSettings().setValue("new_run/preset", dialog.preset.currentText())
            processes = dialog.processes.value()
            self.start_config(dialog.config, processes)
            self.statusBar().showMessage(f"started {dialog.config.name}"
                                         + (f" on {processes} processes" if processes > 1 else ""))

    def resume_run(self, run_id: int | None) -> None:
        if run_id is None or self.watched.is_running(run_id):
            return
        process = RunProcess(self.settings, self)
        self._watch(process)
        self.watched.resumed(run_id, process)
        process.resume(run_id)
        self.statusBar().showMessage(f"run {run_id} resumed")
        self._update_views()

    def ask_cancel(self, run_id: int | None) -> None:
        """Cancel after the user confirms (the toolbar's and the Monitor's Cancel)."""
        if run_id is None:
            return
        answer = QMessageBox.question(
            self, "Cancel run", f"Stop run {run_id} at its next checkpoint?\n\nFinished work is kept: Resume "
            "continues from there.", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.cancel_run(run_id)

    def cancel_run(self, run_id: int | None) -> None:
        """Ask the run to stop at its next checkpoint: this window's own process directly, any other live run
        of the store through the engine (a signal to its process on this machine; refused with what to do for
        a run on another machine)."""
        if run_id is None:
            return
        if self.watched.is_running(run_id):
            self.watched.processes[run_id].cancel()
            self.watched.cancel_asked(run_id)
            self.statusBar().showMessage(f"run {run_id} stops at its next checkpoint")
            return
        store = self.store

        def done(message: object) -> None:
            self.watched.cancel_asked(run_id)
            self.statusBar().showMessage(str(message))
            self.refresh()

        self.reader.read(f"cancel-{run_id}", lambda: cancel_run(store, run_id), done)

    def _on_event(self, process: RunProcess, event: Event) -> None:
        if self.watched.identified(process, event.run_id):  # selected once the refreshed list holds it
            self.refresh()
        self.monitor.handle_event(event)
        self.pareto.handle_event(event)
        if isinstance(event, StepProgress) and event.run_id is not None and event.stage in STAGES:
            self.runs_model.live_progress(event.run_id, event.stage, event.step, event.total_steps)
        if isinstance(event, StageFinished) and event.run_id == self.compare.run_id and self.compare.result is None:
            # A running run's compare view had nothing to show (no teacher, no supernet yet): it tries again.
            self.compare.retry()

    def _on_finished(self, process: RunProcess, code: int) -> None:
        self.watched.ended(process)
        run_id = process.run_id
        if code not in (0, 3):
            message = process.last_error() or f"exit code {code}"
            self.statusBar().showMessage(f"run {run_id or ''} failed: {message}")
            self.notify(f"Run {run_id or ''} failed", message)
        elif code == 0 and run_id is not None:
            # Its result file read off the GUI thread, the notification given when it comes.
            settings = self.settings
            self.reader.read(f"outcome {run_id}", lambda: run_result(settings, run_id),
                             lambda result: self.notify(f"Run {run_id} finished", self._outcome(result)))
            # Its summary up front: the run selected, the Summary tab shown once the list has it finished.
            self.watched.select_once_listed(run_id)
            self.tabs.setCurrentWidget(self.summary)
        self.refresh()
        self.compare.reload_candidates()

    @staticmethod
    def _outcome(result: RunResult | None) -> str:
        """A finished run's result in one line for its notification."""
        if not result:
            return "finished"
        metric = result.metric
        return (f"{result.macs_ratio:.1f}x fewer MACs; {metric} {result.student.metrics[metric]:.4g} vs "
                f"teacher {result.teacher.metrics[metric]:.4g} ({result.metrics_split} split)")

    def notify(self, title: str, text: str) -> None:
        """A desktop notification where the desktop has a tray, else the taskbar entry asks for attention;
        the status bar says it either way."""
        from PySide6.QtWidgets import QApplication, QSystemTrayIcon

        self.watched.notified(title, text)
        self.statusBar().showMessage(f"{title}: {text}")
        if QSystemTrayIcon.isSystemTrayAvailable():
            if self._tray is None:
                self._tray = QSystemTrayIcon(self.windowIcon(), self)
                self._tray.show()
            self._tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 10_000)
        else:
            QApplication.alert(self)

    # --- managing runs ----------------------------------------------------------------------------
    def rename_run(self, run_id: int | None) -> None:
        if run_id is None:
            return
        current = self.runs_model.run_at(self.runs_model.row_of(run_id)).name
        name, ok = QInputDialog.getText(self, "Rename run", f"New name of run {run_id}:", text=current)
        if not ok or name.strip() == current:
            return
        try:
            self.store.rename_run(run_id, name)
        except UserError as exc:
            QMessageBox.warning(self, "Cannot rename the run", str(exc))
            return
        self.refresh()

    def open_run_folder(self, run_id: int | None) -> None:
        if run_id is None:
            return
        folder = run_dir(self.settings, run_id)
        if not folder.is_dir():
            self.statusBar().showMessage(f"run {run_id} has no folder yet ({folder})")
            return
        open_location(self, str(folder))

    def delete_run(self, run_id: int | None) -> None:
        """Delete the run from the store and its folder from the disk, after asking (naming both)."""
        if run_id is None:
            return
        if self.watched.is_running(run_id):
            QMessageBox.information(self, "Run is running", f"Run {run_id} is running: cancel it before deleting it.")
            return
        run = self.runs_model.run_at(self.runs_model.row_of(run_id))
        folder = run_dir(self.settings, run_id)
        # A run's folder can hold thousands of files on a network disk: its size is summed off the GUI thread.
        self.reader.read(f"size-{run_id}", lambda: folder_bytes(folder),
                         lambda size: self._confirm_delete(run_id, run, folder, size))

    def _confirm_delete(self, run_id: int, run: RunSummary, folder: Path, size: int) -> None:
        files = f"its folder {folder} ({size / 1e6:.1f} MB: checkpoints, weights, ONNX files)" if size else "no files"
        answer = QMessageBox.question(
            self, "Delete run", f"Delete run {run_id} ({run.name}) with its candidates, series and log from the "
            f"store, and {files}?\n\nThis cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return
        store = self.store

        def done(result: object) -> None:
            self.watched.forget(run_id)
            # Said once the list without it is shown (the new selection's words would cover it otherwise).
            self.watched.say_once_listed(f"{result} ({run.name})")
            self.refresh()

        self.reader.read(f"delete-{run_id}", lambda: delete_run(store, run_id, folder), done)

    def mark_run_failed(self, run_id: int | None) -> None:
        """The user's explicit "mark failed" of a run whose process is gone (the engine refuses a live one)."""
        if run_id is None:
            return
        store = self.store

        def done(message: object) -> None:
            self.statusBar().showMessage(str(message))
            self.refresh()

        folder = run_dir(self.settings, run_id)
        self.reader.read(f"mark-failed-{run_id}", lambda: mark_failed(store, run_id, folder=folder), done)

    # --- dialogs ----------------------------------------------------------------------------------
    def _candidate_selected(self, run_id: int, arch: str) -> None:
        self.selection.select(run_id, arch, "pareto")

    def _compare_moved(self, run_id: int, arch: str | None) -> None:
        self.selection.select(run_id, arch, "compare")

    def _show_selection(self) -> None:
        """One selection: what the Pareto plot highlights, the compare view shows and the status bar names,
        whichever view chose it (a view is not told again of its own choice)."""
        chosen = self.selection.current
        if chosen.run_id is None:
            return
        if chosen.source != "pareto":
            self.pareto.show_selected(chosen.run_id, chosen.arch)
        if chosen.source == "pareto":
            self.compare.select_candidate(chosen.run_id, chosen.arch)
        row = self.runs_model.row_of(chosen.run_id)
        listed = self.runs_model.run_at(row) if row is not None else None
        self.statusBar().showMessage(self.selection.describe(listed.status if listed else None,
                                                             listed.stage if listed else None))

    def export_selected(self) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            return
        arch = self.selection.candidate_of(run_id)
        selected = self.pareto.row_of(run_id, arch) if arch is not None else None
        # The candidates worth exporting, from what the Pareto view holds: no store read of 10^5 rows here.
        offered = self.pareto.front_points() if self.pareto.run_id == run_id else []
        if selected is not None and all(row["arch"] != selected["arch"] for row in offered):
            offered.append(selected)
        ExportDialog(self.store, self.settings, run_id, arch, self, candidates=offered).exec()

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() and dialog.result_settings is not None:
            new = dialog.result_settings
            if dialog.result_store is not None:  # the dialog opened it: it replaces the current one
                self.store.close()
            save_settings(new)
            self.show_problems([])
            self.session.use(new, dialog.result_store)  # the views follow it
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
        for process in self.watched.all_processes():
            # Stop at a checkpoint rather than orphan the process: the run resumes later from there.
            process.cancel()
            process.process.waitForFinished(10_000)
        super().closeEvent(event)
