#!/usr/bin/env bash
# Build the standalone folder application with PyInstaller: dist/gcw/gcw runs on a machine without
# Python (same OS and CPU architecture). Run from an environment where the project is installed:
#
#   python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[dev]"
#   packaging/build_app.sh            # then: packaging/smoke_test.sh dist/gcw/gcw
set -euo pipefail
export QT_QPA_PLATFORM=offscreen  # hooks import Qt modules; no display is needed to build
cd "$(dirname "$0")/.."
python -m pip install --quiet "pyinstaller>=6.10"
# The bundle carries the Qt binding installed here: one that corrupts reference counts (PySide6 6.12.0, excluded
# in pyproject.toml) would make the bundled window abort after minutes of use.
python -c "from PySide6.QtCore import QCoreApplication; app = QCoreApplication([])
from workbench.platform.binding_check import problem
defect = problem()
raise SystemExit(defect)"
started=$(date +%s)
python -m PyInstaller --noconfirm --clean --log-level WARN \
  --name gcw --distpath dist --workpath build/pyinstaller --specpath build/pyinstaller \
  --icon "$PWD/resources/icons/gcw-256.png" \
  --paths "$PWD" \
  --add-data "$PWD/resources:gcw_resources" \
  --add-data "$PWD/engine/store/migrations:engine/store/migrations" \
  --collect-submodules engine --collect-submodules workbench \
  --collect-data skimage --collect-submodules skimage.data \
  --collect-submodules fvcore --collect-submodules onnxruntime \
  --copy-metadata onnxruntime --copy-metadata PySide6-Essentials --copy-metadata torch \
  --collect-submodules openvino --collect-binaries openvino --copy-metadata openvino \
  --collect-submodules nncf --copy-metadata nncf \
  --hidden-import pyqtgraph --exclude-module pyqtgraph.examples \
  --exclude-module tkinter --exclude-module matplotlib --exclude-module IPython \
  packaging/gcw_app.py
echo "built dist/gcw in $(( $(date +%s) - started )) s, $(du -sh dist/gcw | cut -f1)"
