#!/usr/bin/env bash
# Install the desktop entry and icons for the current user (Linux, freedesktop.org menus).
#
#   packaging/install_desktop_entry.sh [EXECUTABLE]
#
# EXECUTABLE: what the entry starts; default: gcw-gui on PATH (pip install), or give the bundled
# dist/gcw/gcw of packaging/build_app.sh (it opens the window when given no command).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
exe="${1:-$(command -v gcw-gui || true)}"
if [ -z "$exe" ]; then
  echo "gcw-gui is not on PATH: pip install the workbench, or give the executable to start" >&2
  exit 2
fi
exe="$(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
for size in 16 24 32 48 64 128 256; do
  install -D -m 644 "$here/resources/icons/gcw-$size.png" "$data/icons/hicolor/${size}x${size}/apps/gcw.png"
done
install -D -m 644 "$here/resources/icons/gcw.svg" "$data/icons/hicolor/scalable/apps/gcw.svg"
mkdir -p "$data/applications"
sed "s|^Exec=.*|Exec=\"$exe\"|" "$here/resources/gcw.desktop" > "$data/applications/gcw.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
echo "installed $data/applications/gcw.desktop (starts $exe)"
