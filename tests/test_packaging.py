"""The wheel is what a user installs: build it, install it (not editable) into a fresh environment, and
run the installed commands from outside the checkout."""

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.patience import REAL_WORK_S

ROOT = Path(__file__).resolve().parents[1]


def _packages_in_pyproject() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_every_package_folder_is_listed_for_the_wheel():
    folders = {".".join(p.parent.relative_to(ROOT).parts) for top in ("engine", "workbench")
               for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts}
    assert folders <= set(_packages_in_pyproject())
    assert "gcw_resources" in _packages_in_pyproject()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh virtual environment with the wheel installed; the dependencies (torch, Qt...) come from
    this environment's site-packages through a .pth file, so nothing heavy is installed twice."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"), str(ROOT)],
                   check=True, cwd=tmp)
    wheel = next((tmp / "dist").glob("gan_compression_workbench-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "_workbench_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)], check=True)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "GCW_WORKSPACE": str(tmp / "workspace"),
           "PYTHONPATH": ""}
    return {"wheel": wheel, "venv": venv, "env": env, "cwd": tmp}


def _run(installed, *command):
    return subprocess.run(command, cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True,
                          timeout=REAL_WORK_S)


@pytest.mark.slow
def test_the_wheel_carries_migrations_icons_and_presets(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    for required in ("engine/store/migrations/env.py", "engine/store/migrations/script.py.mako",
                     "engine/store/migrations/versions/0001_initial_schema.py", "gcw_resources/icons/gcw.svg",
                     "gcw_resources/icons/gcw-256.png", "gcw_resources/presets.json", "gcw_resources/gcw.desktop",
                     "workbench/entry.py"):
        assert required in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()
    assert "gcw = workbench.entry:main" in text and "gcw-gui = workbench.entry:gui_main" in text


@pytest.mark.slow
def test_installed_commands_run_from_the_installed_package(installed):
    bin_dir = installed["venv"] / "bin"
    where = _run(installed, str(bin_dir / "python"), "-c", "import engine, gcw_resources; print(engine.__file__)")
    assert where.returncode == 0 and str(installed["venv"]) in where.stdout, where.stderr
    help_ = _run(installed, str(bin_dir / "gcw"), "--help")
    assert help_.returncode == 0 and "compress" in help_.stdout
    version = _run(installed, str(bin_dir / "gcw"), "--version")
    assert version.returncode == 0 and "PyTorch" in version.stdout and "ONNX Runtime" in version.stdout
    profile = _run(installed, str(bin_dir / "gcw"), "profile", "--family", "cyclegan", "--arch",
                   "16_16_24_16_32_64_16_24", "--json")
    assert profile.returncode == 0 and '"params": 355235' in profile.stdout, profile.stderr
    runs = _run(installed, str(bin_dir / "gcw"), "runs", "--json")  # the store migrates from the wheel's files
    assert runs.returncode == 0 and runs.stdout.strip() == "[]", runs.stderr
    window = _run(installed, str(bin_dir / "gcw-gui"), "--check")
    assert window.returncode == 0 and "window opened" in window.stdout and "icon True" in window.stdout, window.stderr
    child = next(line for line in window.stdout.splitlines() if line.startswith("child runs:"))
    assert str(installed["venv"]) in child and "GAN Compression Workbench" in child


def test_desktop_entry_installs_with_its_icons(tmp_path):
    executable = tmp_path / "bundle" / "gcw"
    executable.parent.mkdir()
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    result = subprocess.run([str(ROOT / "packaging" / "install_desktop_entry.sh"), str(executable)], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    entry = (tmp_path / "data" / "applications" / "gcw.desktop").read_text()
    assert f'Exec="{executable}"' in entry and "Icon=gcw" in entry and "Type=Application" in entry
    for size in (16, 48, 256):
        assert (tmp_path / "data" / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "gcw.png").is_file()
