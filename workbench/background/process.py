"""A run of the engine's command line in a child process (QProcess), reporting its JSON-line events.

The window never runs models itself: a crash of a run cannot take it down, and what the GUI starts a
user can start headless with the same command."""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from engine.events import event_from_dict
from engine.settings import Settings
from workbench.background.children import child_command

log = logging.getLogger(__name__)



def child_environment(settings: Settings) -> QProcessEnvironment:
    """This process's environment with exactly these settings for the engine: every ``GCW_*`` variable the
    window was started with is replaced, so that a setting changed (or found bad and replaced) in the window
    is the one the child uses, not the one from the command line's environment."""
    environment = QProcessEnvironment.systemEnvironment()
    for key in environment.keys():
        if key.startswith("GCW_"):
            environment.remove(key)
    for key, value in {**settings.as_env(), "PYTHONUNBUFFERED": "1"}.items():
        environment.insert(key, value)
    return environment


class RunProcess(QObject):
    event = Signal(object)  # an engine Event
    finished = Signal(int)  # exit code
    stderr_line = Signal(str)

    def __init__(self, settings: Settings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.process = QProcess(self)
        self.process.setProcessEnvironment(child_environment(settings))
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._finished)
        self._stdout_buffer = b""
        self._stderr_buffer = b""
        self.stderr_tail: deque[str] = deque(maxlen=50)
        self.run_id: int | None = None

    def start(self, *arguments: str, processes: int = 1) -> None:
        """Start ``gcw ARGUMENTS --json-events`` with this same installation (under torchrun with
        ``processes`` > 1: rank 0 reports the events; a cancel reaches every process through torchrun)."""
        self.process.start(*child_command([*arguments, "--json-events"], processes))

    def compress(self, config_path: Path, processes: int = 1) -> None:
        self.start("compress", "--config", str(config_path), processes=processes)

    def resume(self, run_id: int) -> None:
        self.run_id = run_id
        self.start("resume", str(run_id))

    def is_running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def cancel(self) -> None:
        """Ask the run to stop at its next checkpoint (SIGTERM); it keeps all finished work."""
        if self.is_running():
            self.process.terminate()

    def kill(self) -> None:
        if self.is_running():
            self.process.kill()
            self.process.waitForFinished(5000)

    def _read_stdout(self) -> None:
        self._stdout_buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._stdout_buffer = self._stdout_buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                event = event_from_dict(json.loads(line))
            except (ValueError, TypeError) as exc:
                log.debug("not an event line from the run: %r (%s)", line[:200], exc)
                continue
            if event.run_id is not None:
                self.run_id = event.run_id
            self.event.emit(event)

    def _read_stderr(self) -> None:
        self._stderr_buffer += bytes(self.process.readAllStandardError().data())
        *lines, self._stderr_buffer = self._stderr_buffer.split(b"\n")
        for line in lines:
            text = line.decode(errors="replace").rstrip()
            if text:
                self.stderr_tail.append(text)
                self.stderr_line.emit(text)

    def _finished(self, code: int, _status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        self.finished.emit(code)

    def last_error(self) -> str:
        errors = [line for line in self.stderr_tail if line.startswith("error:")]
        return errors[-1] if errors else (self.stderr_tail[-1] if self.stderr_tail else "")
