"""A window that cannot start says in one line what to install or set (Qt alone aborts with a message that
can blame the wrong library), and that the commands work without a display."""

import os
import subprocess
import sys
from pathlib import Path

from workbench.platform.platform_check import (
    XCB_LIBRARIES,
    explain,
    missing_libraries,
    requested_platform,
)

ROOT = Path(__file__).resolve().parents[2]


def test_an_unknown_platform_plugin_ends_in_one_clear_line_not_an_abort(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "gcw-no-such-platform", "GCW_WORKSPACE": str(tmp_path)}
    env.pop("GCW_STORE_URL", None)
    child = subprocess.run([sys.executable, str(ROOT / "main.py"), "gui", "--check"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == 2  # not -6 (SIGABRT), Qt's own ending
    lines = child.stderr.strip().splitlines()
    assert len(lines) == 1, child.stderr
    assert lines[0].startswith("error: the window cannot open: there is no Qt platform plugin 'gcw-no-such-platform'")
    assert "unset QT_QPA_PLATFORM or set it to one of:" in lines[0] and "offscreen" in lines[0]
    assert "every command works without a display" in lines[0] and "compress" in lines[0]
    assert "window opened" not in child.stdout


def test_missing_xcb_libraries_are_named_with_the_packages_that_hold_them():
    missing = missing_libraries(loads=lambda name: name not in {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"})
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    # What Qt says on such a machine blames libxcb-cursor0, which is present: the line names what is missing.
    line = explain("xcb", ["From 6.5.0, xcb-cursor0 or libxcb-cursor0 is needed to load the Qt xcb platform plugin.",
                           "This application failed to start because no Qt platform plugin could be initialized."],
                   missing)
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1 (" in line and "cursor" not in line
    assert "\n" not in line and "every command works without a display" in line


def test_the_readme_apt_line_installs_every_library_the_xcb_plugin_loads():
    readme = (ROOT / "README.md").read_text()
    apt = next(line for line in readme.splitlines() if line.startswith("sudo apt-get install") and "libxcb" in line)
    assert set(apt.split()[3:]) == set(XCB_LIBRARIES.values())


def test_the_platform_qt_tries_first():
    assert requested_platform({"QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert requested_platform({"QT_QPA_PLATFORM": "xcb:dpi=96;offscreen"}) == "xcb"
    if sys.platform.startswith("linux"):
        assert requested_platform({"DISPLAY": ":0"}) == "xcb"
        assert requested_platform({"WAYLAND_DISPLAY": "wayland-0"}) == "wayland"


def test_a_missing_display_is_named_as_such(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    line = explain("xcb", ['qt.qpa.xcb: could not connect to display', "no Qt platform plugin could be initialized"], [])
    assert "no display to connect to (DISPLAY is not set)" in line and "QT_QPA_PLATFORM=offscreen" in line
