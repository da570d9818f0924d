#!/usr/bin/env bash
# Side-by-side offline benchmark on the eval sets, in one run on one
# machine: gst-speakrs (the real element, `--threads` inference threads)
# and sherpa-onnx (PyPI) running the same converted models. Prints DER
# and xRT for both (peak RSS for ours), and ours again with the int8
# CAM++ (`precision=int8`). Usage:
#   scripts/bench.sh [THREADS] [SET...]      (defaults: 2, real sim-dev sim-dev-noisy)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}; shift || true
SETS=("${@:-real sim-dev sim-dev-noisy}")
SETS=(${SETS[*]})
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/gst-speakrs"
MODELS="${XDG_DATA_HOME:-$HOME/.local/share}/gst-speakrs/models"
OUT=$(mktemp -d)

SHERPA_VENV="$CACHE/sherpa-venv"
if [ ! -x "$SHERPA_VENV/bin/python" ] || ! "$SHERPA_VENV/bin/python" -c "import sherpa_onnx" 2>/dev/null; then
  python3 -m venv "$SHERPA_VENV"
  "$SHERPA_VENV/bin/pip" install --quiet sherpa-onnx==2.0.1 numpy
fi
cargo build --release --locked --example evaluate

set_args=()
for s in "${SETS[@]}"; do set_args+=(--set "../shared/eval/$s"); done
for s in "${SETS[@]}"; do
  "$SHERPA_VENV/bin/python" tools/bench_sherpa.py --set "../shared/eval/$s" --models "$MODELS" \
    --out "$OUT/sherpa/$s" --threads "$THREADS"
done
echo "## gst-speakrs (element, $THREADS threads)"
target/release/examples/evaluate --mode element --threads "$THREADS" --out "$OUT/speakrs" "${set_args[@]}" 2>/dev/null
echo "## gst-speakrs, precision=int8 (element, $THREADS threads)"
target/release/examples/evaluate --mode element --precision int8 --threads "$THREADS" --out "$OUT/speakrs-int8" "${set_args[@]}" 2>/dev/null
echo "## sherpa-onnx 2.0.1 ($THREADS threads), scored by the same scorer"
target/release/examples/evaluate --score-only "$OUT/sherpa" --label sherpa-onnx "${set_args[@]}" 2>/dev/null
