"""When Qt cannot load a platform plugin it aborts the process with a message that often blames the wrong
library (on a fresh Debian it names libxcb-cursor0 while libxcb-icccm4 is what is missing). Here the start of
the window is watched: Qt's fatal message is replaced by one line that names the system packages to install,
or the setting to change, and says that every command works without a display."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from PySide6.QtCore import QtMsgType, qInstallMessageHandler

#: What Qt's xcb plugin (Qt 6.5 and later, as PySide6 ships it) loads from the system, and the Debian/Ubuntu
#: package that holds each. README "The window on Linux" gives the same packages as one apt-get line.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}

HEADLESS = ("every command works without a display (python main.py compress, resume, runs, "
            "export ...; python main.py --help lists them)")


def missing_libraries(libraries: dict[str, str] = XCB_LIBRARIES,
                      loads: Callable[[str], bool] | None = None) -> list[str]:
    """The libraries of ``libraries`` that the dynamic loader cannot find on this machine."""
    def can_load(name: str) -> bool:
        try:
            ctypes.CDLL(name)
        except OSError:
            return False
        return True

    return [name for name in libraries if not (loads or can_load)(name)]


def requested_platform(environ: dict[str, str] | None = None) -> str:
    """The platform plugin Qt will try first: QT_QPA_PLATFORM's first choice, else the system's default."""
    environ = os.environ if environ is None else environ
    chosen = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    if sys.platform.startswith("linux"):
        return "wayland" if environ.get("WAYLAND_DISPLAY") and not environ.get("DISPLAY") else "xcb"
    return {"darwin": "cocoa", "win32": "windows"}.get(sys.platform, "")


def explain(platform: str, messages: list[str], missing: list[str]) -> str:
    """One line for a user whose window could not start: what failed and what to do."""
    if missing:
        packages = " ".join(dict.fromkeys(XCB_LIBRARIES.get(name, name) for name in missing))
        return (f"error: the window cannot open: Qt's {platform} platform plugin needs system libraries that are "
                f"missing ({', '.join(missing)}); on Debian/Ubuntu: sudo apt-get install {packages} (elsewhere, "
                f"your system's packages of these libraries; README 'The window on Linux'); {HEADLESS}")
    text = " ".join(messages)
    available = ""
    if "Available platform plugins are:" in text:
        available = text.split("Available platform plugins are:", 1)[1].strip().rstrip(".")
    if "could not connect to display" in text or (platform == "xcb" and not os.environ.get("DISPLAY")):
        return (f"error: the window cannot open: no display to connect to (DISPLAY is "
                f"{os.environ.get('DISPLAY') or 'not set'}); run it on a desktop or under Xvfb, or set "
                f"QT_QPA_PLATFORM=offscreen for a window nobody sees; {HEADLESS}")
    if "Could not find the Qt platform plugin" in text:
        return (f"error: the window cannot open: there is no Qt platform plugin '{platform}' (QT_QPA_PLATFORM="
                f"{os.environ.get('QT_QPA_PLATFORM', '')}); unset QT_QPA_PLATFORM or set it to one of: "
                f"{available or 'the plugins of your PySide6'}; {HEADLESS}")
    reason = next((m for m in messages if "Could not load" in m or "needed" in m), messages[0] if messages else "")
    return (f"error: the window cannot open: Qt's {platform or 'default'} platform plugin did not load "
            f"({reason.strip()}); run with QT_DEBUG_PLUGINS=1 to see why, or set QT_QPA_PLATFORM to one of: "
            f"{available or 'the plugins of your PySide6'}; {HEADLESS}")


@contextmanager
def platform_failure_explained(write: Callable[[str], None] | None = None,
                               leave: Callable[[int], None] = os._exit) -> Iterator[None]:
    """Around the creation of the QApplication: should Qt fail to load a platform plugin, print one line
    saying what to install or set and leave the process (Qt would abort it with a core dump). Qt's own
    messages of the start are held back and passed on only if the start succeeds."""
    held: list[tuple[QtMsgType, str, str]] = []

    def out(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    write = write or out

    def handler(kind: QtMsgType, context, message: str) -> None:
        held.append((kind, context.category or "", message))
        if kind == QtMsgType.QtFatalMsg:
            platform = requested_platform()
            missing = missing_libraries() if platform == "xcb" and sys.platform.startswith("linux") else []
            write(explain(platform, [m for _, _, m in held], missing))
            leave(2)

    qInstallMessageHandler(handler)
    try:
        yield
    finally:
        qInstallMessageHandler(None)  # Qt's default handler again
        for kind, category, message in held:
            if kind != QtMsgType.QtDebugMsg:
                write(f"{category}: {message}" if category and category != "default" else message)
