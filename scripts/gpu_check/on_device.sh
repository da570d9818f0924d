#!/usr/bin/env bash
# Runs on the lent GPU machine (docs/gpu-check.md): verifies and unpacks one
# part made by pack.sh into /tmp/speakrs-gpu (again is a no-op), and with
# --run (on the last part) runs the check, writing $OUT/gpu_check.log.
#
#   bash scripts/gpu_check/on_device.sh gpu-check/partN.tar.xz [--sha256 HEX] [--run]
#
# --run: mode=cpu (16 threads) on the whole set, then mode=cuda on the whole
# set followed by --streams 1,4,16 on a subset sized from the single-stream
# speed (--streams-budget). A failing cuda run leaves the cpu result and
# prints its error. Environment: GPU_CHECK_MODES (default cpu,cuda),
# GPU_CHECK_DIR (default /tmp/speakrs-gpu), CPU_THREADS (16),
# CUDA_THREADS (16), STREAMS (1,4,16), STREAMS_BUDGET (s, default 60),
# CPU_TIMEOUT (100 s), CUDA_TIMEOUT (200 s), TORCH_VENV
# (/opt/torch/.venv/lib/python3.12/site-packages).
set -uo pipefail

DEST=${GPU_CHECK_DIR:-/tmp/speakrs-gpu}
part="" sha="" run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --sha256) sha=${2:-}; shift 2 ;;
        --run) run=1; shift ;;
        -*) echo "on_device.sh: unknown flag $1" >&2; exit 2 ;;
        *) part=$1; shift ;;
    esac
done
[ -n "$part" ] || { echo "usage: on_device.sh PART_FILE [--sha256 HEX] [--run]" >&2; exit 2; }

LOGDIR=${OUT:-$DEST/out}
mkdir -p "$DEST/.gpu-check" "$LOGDIR"
LOG=$LOGDIR/gpu_check.log
RUNLOG=$DEST/.gpu-check/run.log

hash_of() {
    if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
    else python3 -c 'import hashlib,sys; print(hashlib.file_digest(open(sys.argv[1],"rb"),"sha256").hexdigest())' "$1"; fi
}
unpack() { # ARCHIVE DIR
    if command -v xz >/dev/null; then tar -xJf "$1" -C "$2"
    else python3 -c 'import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' "$1" "$2"; fi
}

main() {
# ---- verify and unpack ---------------------------------------------------
t0=$(date +%s.%N)
[ -f "$part" ] || { echo "error: $part is not here (name it in the call's carry)"; exit 1; }
actual=$(hash_of "$part")
if [ -z "$sha" ] && [ -f "$(dirname "$part")/SHA256SUMS" ]; then
    sha=$(awk -v n="$(basename "$part")" '$2 == n { print $1 }' "$(dirname "$part")/SHA256SUMS")
fi
if [ -z "$sha" ]; then
    echo "warning: no sha256 given for $part: not verified"
elif [ "$sha" != "$actual" ]; then
    echo "error: $part has sha256 $actual, expected $sha (a broken transfer, or a part of another pack)"
    exit 1
fi
if [ -e "$DEST/.gpu-check/unpacked-$actual" ]; then
    echo "$part: already unpacked in $DEST"
else
    unpack "$part" "$DEST" || { echo "error: unpacking $part failed"; exit 1; }
    touch "$DEST/.gpu-check/unpacked-$actual"
    echo "$part: sha256 ${actual:0:16}… verified, unpacked into $DEST ($(du -sh "$DEST" | cut -f1) there) in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
fi
[ "$run" = 1 ] || exit 0
: >"$RUNLOG"

# ---- run -------------------------------------------------------------------
missing=0
if [ -f "$DEST/.gpu-check/parts" ]; then
    while read -r h name; do
        [ -e "$DEST/.gpu-check/unpacked-$h" ] || { echo "error: $name (sha256 ${h:0:16}…) is not unpacked here: the machine went cold between calls, or it was never sent. Make the calls again, each within 30 s of the previous."; missing=1; }
    done <"$DEST/.gpu-check/parts"
else
    echo "error: $DEST/.gpu-check/parts is missing: --run belongs on the last part"; missing=1
fi
[ "$missing" = 0 ] || exit 1

TORCH_VENV=${TORCH_VENV:-/opt/torch/.venv/lib/python3.12/site-packages}
nvlibs=$(find "$TORCH_VENV/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | sort | tr '\n' ':')
export LD_LIBRARY_PATH="$DEST/lib:${nvlibs}${LD_LIBRARY_PATH:-}"
export ORT_DYLIB_PATH=$DEST/lib/libonnxruntime.so.1.31.1
BIN=$DEST/bin/gpu_check
SET=$DEST/eval/sim-dev
MODES=${GPU_CHECK_MODES:-cpu,cuda}

echo "=== gpu_check on $(uname -n) at $(date -u +%FT%TZ): $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L
    echo "driver / GPU: $(nvidia-smi --query-gpu=driver_version,name,memory.total,memory.used --format=csv,noheader)"
else
    echo "nvidia-smi: not found"
fi
echo "ONNX Runtime: $(grep -aom1 'VERS_1\.[0-9]*\.[0-9]*' "$ORT_DYLIB_PATH" 2>/dev/null || echo '?') at $ORT_DYLIB_PATH"
echo "CUDA libraries (LD_LIBRARY_PATH=$LD_LIBRARY_PATH):"
for d in ${nvlibs//:/ }; do
    echo "  $d: $(cd "$d" && ls *.so.* 2>/dev/null | grep -E '^lib(cudart|cublas|cublasLt|cudnn|cufft|curand|nvrtc)\.so\.[0-9.]+$' | tr '\n' ' ')"
done
py=$(dirname "$TORCH_VENV")/../../bin/python3
[ -x "$py" ] && "$py" - <<'EOF' 2>/dev/null
import importlib.metadata as m
names = ["nvidia-cuda-runtime", "nvidia-cublas", "nvidia-cudnn-cu13", "nvidia-cufft", "nvidia-curand", "nvidia-cuda-nvrtc", "torch"]
print("  wheels: " + ", ".join(f"{n} {m.version(n)}" for n in names if any(d.metadata["Name"] == n for d in m.distributions())))
EOF
echo "gpu_check needs (ldd): $(ldd "$BIN" | awk '{ print $1 }' | tr '\n' ' ')"
echo "CUDA provider unresolved (ldd): $(ldd "$DEST/lib/libonnxruntime_providers_cuda.so" | grep 'not found' | awk '{ print $1 }' | tr '\n' ' ')"
echo "(empty = all found)"

rc_cpu=skipped rc_cuda=skipped
if [[ ",$MODES," == *",cpu,"* ]]; then
    echo
    echo "=== mode=cpu, ${CPU_THREADS:-16} threads, whole set"
    timeout "${CPU_TIMEOUT:-100}" "$BIN" --set "$SET" --models "$DEST/models" --mode cpu --threads "${CPU_THREADS:-16}" 2>&1 | tee -a "$RUNLOG"
    rc_cpu=${PIPESTATUS[0]}
    [ "$rc_cpu" = 124 ] && echo "error: mode=cpu passed its ${CPU_TIMEOUT:-100} s limit"
fi
if [[ ",$MODES," == *",cuda,"* ]]; then
    echo
    echo "=== mode=cuda, ${CUDA_THREADS:-16} threads, whole set, then --streams ${STREAMS:-1,4,16} (budget ${STREAMS_BUDGET:-60} s)"
    timeout "${CUDA_TIMEOUT:-200}" "$BIN" --set "$SET" --models "$DEST/models" --mode cuda --device-id 0 \
        --threads "${CUDA_THREADS:-16}" --streams "${STREAMS:-1,4,16}" --streams-budget "${STREAMS_BUDGET:-60}" 2>&1 | tee -a "$RUNLOG"
    rc_cuda=${PIPESTATUS[0]}
    [ "$rc_cuda" = 124 ] && echo "error: mode=cuda passed its ${CUDA_TIMEOUT:-200} s limit"
    [ "$rc_cuda" = 0 ] || echo "mode=cuda FAILED (exit $rc_cuda), see the error above; the cpu result stands"
fi
echo
echo "=== summary (exit: cpu $rc_cpu, cuda $rc_cuda; $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s in all)"
grep -E '^\| (mode|cpu|cuda|migraphx) \||^model load|^streams:|^ONNX Runtime [0-9]|^error' "$RUNLOG"
[ "$rc_cpu" = 0 ] || [ "$rc_cpu" = skipped ] || exit 1
exit 0
}

main 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
