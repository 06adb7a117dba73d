"""The main window: the runs list from the store and the details of the selected run."""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QMainWindow, QMessageBox, QSplitter,
                               QTableView, QVBoxLayout, QWidget)

from engine import __version__
from engine.errors import UserError
from engine.settings import Settings
from engine.store import Store
from workbench.runs_model import RunsTableModel

log = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 2000


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, store: Store):
        super().__init__()
        self.settings, self.store = settings, store
        self.setWindowTitle("GAN Compression Workbench")
        self.runs_model = RunsTableModel(self)

        self.runs_view = QTableView()
        self.runs_view.setModel(self.runs_model)
        self.runs_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_view.verticalHeader().hide()
        self.runs_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.runs_view.horizontalHeader().setStretchLastSection(True)
        self.runs_view.selectionModel().selectionChanged.connect(self._show_selected)

        self.empty_label = QLabel()
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setText(
            "<h3>No runs yet</h3><p>Start one from a terminal, e.g. on a built-in sample dataset:</p>"
            "<pre>python main.py datasets</pre>")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.runs_view)
        left_layout.addWidget(self.empty_label)

        self.detail = QLabel()
        self.detail.setObjectName("runDetail")
        self.detail.setWordWrap(True)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setMargin(12)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.setCentralWidget(splitter)

        self._build_menus()
        self.statusBar().showMessage(f"Workspace: {settings.workspace}   Store: {settings.resolved_store_url}")

        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self.refresh_timer.timeout.connect(self.refresh)
        self.refresh_timer.start()
        self._restore_geometry()
        self.refresh()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        refresh = QAction("&Refresh", self, shortcut=QKeySequence.StandardKey.Refresh, triggered=self.refresh)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        file_menu.addActions([refresh, quit_action])
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(QAction("&About", self, triggered=self._about))

    def _about(self) -> None:
        QMessageBox.about(self, "About GAN Compression Workbench",
                          f"GAN Compression Workbench {__version__}<br>Compresses conditional-GAN generators with "
                          "the method of Li et al., <i>GAN Compression</i>, CVPR 2020.")

    def refresh(self) -> None:
        selected = self.selected_run_id()
        try:
            runs = self.store.list_runs()
        except Exception as exc:  # a store that went away must not close the window
            log.warning("cannot read the store: %s", exc)
            self.statusBar().showMessage(f"Cannot read the store {self.settings.resolved_store_url}: {exc}")
            return
        self.runs_model.set_runs(runs)
        self.runs_view.setVisible(bool(runs))
        self.empty_label.setVisible(not runs)
        if selected is not None and (row := self.runs_model.row_of(selected)) is not None:
            self.runs_view.selectRow(row)
        elif runs and selected is None:
            self.runs_view.selectRow(0)
        self._show_selected()

    def selected_run_id(self) -> int | None:
        rows = self.runs_view.selectionModel().selectedRows()
        return self.runs_model.run_at(rows[0].row()).id if rows else None

    def _show_selected(self, *_: object) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            self.detail.setText("<p>Select a run to see its stages.</p>")
            return
        try:
            run = self.store.get_run(run_id)
        except UserError as exc:
            self.detail.setText(html.escape(str(exc)))
            return
        stages = "".join(
            f"<tr><td>{html.escape(s.name)}</td><td>{s.status.value}</td>"
            f"<td>{f'{s.step}/{s.total_steps}' if s.total_steps else '-'}</td></tr>" for s in run.stages)
        error = f"<p style='color:#b00020'><b>Error:</b> {html.escape(run.error)}</p>" if run.error else ""
        self.detail.setText(
            f"<h3>{html.escape(run.name)}</h3>"
            f"<p><b>Family:</b> {html.escape(run.family)}<br><b>Dataset:</b> {html.escape(run.dataset)}<br>"
            f"<b>Status:</b> {run.status.value}</p>{error}"
            f"<table cellspacing='6'><tr><th align='left'>Stage</th><th align='left'>Status</th>"
            f"<th align='left'>Steps</th></tr>{stages}</table>")

    def _restore_geometry(self) -> None:
        geometry = QSettings().value("main_window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 650)

    def closeEvent(self, event) -> None:
        QSettings().setValue("main_window/geometry", self.saveGeometry())
        self.refresh_timer.stop()
        super().closeEvent(event)
