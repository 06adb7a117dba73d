#!/usr/bin/env bash
# Smoke test of a built application (default dist/gcw/gcw), run without Python on PATH: it starts,
# answers --help and --version, opens the window (offscreen) and runs a tiny compression whose child
# processes are the bundled executable itself. Prints the start-up time.
#
#   packaging/smoke_test.sh [EXECUTABLE]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
exe="$(cd "$(dirname "${1:-$here/dist/gcw/gcw}")" && pwd)/$(basename "${1:-gcw}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GCW_WORKSPACE="$work/workspace" QT_QPA_PLATFORM=offscreen
# No Python, no checkout: only the bundle and the system's basic tools.
export PATH=/usr/bin:/bin PYTHONPATH= PYTHONHOME=
cd "$work"
"$exe" --help | grep -q compress && echo "ok: --help"
"$exe" --version | tee "$work/version.txt" | head -3
start=$(date +%s.%N)
"$exe" gui --check
echo "window start-up (process start to window shown and closed): $(echo "$(date +%s.%N) - $start" | bc) s"
cat > "$work/tiny.yaml" <<'YAML'
preset: pix2pix-sample
name: smoke
dataset: {sample_size: 32, sample_train: 12, sample_test: 4, search_images: 4, test_images: 4}
image_size: 32
train_crop: 32
batch_size: 2
model: {ngf: 8, n_blocks: 3}
teacher: {checkpoint: null, steps: 6}
supernet: {steps: 8, search_space: [[8, 4], [8, 4], [8, 4], [8, 4], [8, 4], [8, 4], [8, 4], [8, 4]]}
search: {target_ratio: 2}
finetune: {steps: 4}
YAML
start=$(date +%s.%N)
"$exe" compress --config "$work/tiny.yaml" --json | tail -1 > "$work/summary.json"
echo "tiny compression: $(echo "$(date +%s.%N) - $start" | bc) s"
grep -q '"onnx_path"' "$work/summary.json" && echo "ok: compress finished, ONNX exported"
"$exe" runs | tail -2
