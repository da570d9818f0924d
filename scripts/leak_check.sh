#!/usr/bin/env bash
# Leak check (issue #6): runs examples/leak_lifecycle.rs — pipelines played
# to EOS and stopped mid-inference, repeatedly — under LeakSanitizer, and
# fails on any leak not listed in scripts/lsan.supp (one-time globals of
# GLib / GStreamer / ONNX Runtime, each entry says why). LSan is gcc's
# runtime (Debian package liblsan0) preloaded into the release binary: no
# sanitizer rebuild, so it runs at near-native speed.
set -euo pipefail
cd "$(dirname "$0")/.."

LSAN=/usr/lib/x86_64-linux-gnu/liblsan.so.0
if [ ! -e "$LSAN" ]; then
  echo "==> installing liblsan0 (LeakSanitizer runtime)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq liblsan0
fi

echo "==> cargo build --release --example leak_lifecycle"
cargo build --release --locked --example leak_lifecycle
BIN=target/release/examples/leak_lifecycle

# Refresh GStreamer's plugin registry outside LSan: the scanner is a child
# process that would inherit the preload.
gst-inspect-1.0 coreelements >/dev/null

echo "==> leak_lifecycle under LeakSanitizer"
LOG=$(mktemp)
set +e
GST_REGISTRY_FORK=no GST_REGISTRY_UPDATE=no G_SLICE=always-malloc G_DEBUG=gc-friendly \
  LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=1:fast_unwind_on_malloc=0:exitcode=23" \
  LD_PRELOAD="$LSAN" "$BIN" "$@" >"$LOG" 2>&1
rc=$?
set -e
cat "$LOG"
if [ $rc -eq 23 ] || grep -q "ERROR: LeakSanitizer" "$LOG"; then
  echo "leak check FAILED: leaks above (not covered by scripts/lsan.supp)" >&2
  exit 1
elif [ $rc -ne 0 ]; then
  echo "leak check FAILED: leak_lifecycle exited with $rc" >&2
  exit 1
fi
grep -q "round 2 to EOS: Ok" "$LOG" || { echo "leak check FAILED: lifecycle did not run" >&2; exit 1; }
echo "leak check passed: no leaks outside scripts/lsan.supp"
