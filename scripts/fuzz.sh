#!/usr/bin/env bash
# Fuzzes every target in fuzz/ (cargo fuzz: libFuzzer + AddressSanitizer)
# for SECONDS each (default 60), starting from fuzz/seeds/<target> and the
# corpus earlier runs left in fuzz/corpus/<target>. Fails on the first
# finding (panic, sanitizer error, timeout, memory limit); its reproducer is
# in fuzz/artifacts/<target>/ — replay with `cargo fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
version=0.13.2

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $version" ]; then
  echo "==> cargo install cargo-fuzz $version"
  cargo install cargo-fuzz --version "$version" --locked
fi
# libFuzzer itself is C++, built by libfuzzer-sys.
if ! command -v c++ >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq g++
fi
# Only a stable toolchain here: cargo fuzz's sanitizer flags are -Z flags.
export RUSTC_BOOTSTRAP=1
# cargo fuzz has no --locked: check fuzz/Cargo.lock is up to date first.
cargo fetch --locked --manifest-path fuzz/Cargo.toml
echo "==> cargo fuzz build"
cargo fuzz build

for target in $(cargo fuzz list); do
  echo "==> fuzz $target for ${seconds}s"
  mkdir -p "fuzz/corpus/$target" fuzz/artifacts
  seeds=()
  [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
  # -timeout: one input running 30 s is a hang (the slowest legitimate
  # input, a 100 Hz resampler set-up, takes ~2 s instrumented).
  if ! cargo fuzz run "$target" "fuzz/corpus/$target" "${seeds[@]}" -- \
      -max_total_time="$seconds" -timeout=30 -print_final_stats=1 2>"fuzz/artifacts/$target.log"; then
    tail -n 60 "fuzz/artifacts/$target.log"
    echo "fuzz FAILED: $target (log fuzz/artifacts/$target.log, reproducer in fuzz/artifacts/$target/)"
    exit 1
  fi
  grep -E '^#[0-9]+ +DONE|^Done|stat::number_of_executed_units' "fuzz/artifacts/$target.log" || true
done
echo "fuzzing found nothing"
