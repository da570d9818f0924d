#!/usr/bin/env bash
# The test command: prepares everything (scripts/setup.sh, seconds when
# already done), then runs every test suite (the accuracy guard first)
# and checks that each GPU
# provider feature still builds, then fuzzes each fuzz target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "==> docs/speakrsdiarize.md matches the built element"
scripts/element_docs.sh --check

# The accuracy guard first (fp32 and int8), with its DER figures in the log (about 4 min
# on 2 cores), then every other suite.
echo "==> accuracy: the element's DER on ../shared/eval against the README"
cargo test --release --locked --test accuracy -- --nocapture

echo "==> cargo test --release"
cargo test --release --locked -- --skip element_der_on_

echo "==> leak check (LeakSanitizer)"
scripts/leak_check.sh

# GPU modes on this GPU-less machine: each missing piece is an element
# error naming it (stand-in CUDA driver and libraries; the real MIGraphX
# build of ONNX Runtime without ROCm), then every GPU build compiles.
echo "==> GPU modes' failures (cuda build)"
cargo test --release --locked --features cuda --test gpu_element
echo "==> GPU modes' failures (migraphx build, with onnxruntime-migraphx)"
FEATURES=migraphx scripts/setup.sh > /tmp/speakrs-setup-migraphx.log \
  || { cat /tmp/speakrs-setup-migraphx.log; false; }
cargo test --release --locked --features migraphx --test gpu_migraphx
scripts/setup.sh > /dev/null # the default (CPU) plugin installed again
for feature in cuda migraphx coreml; do
  echo "==> cargo check --features $feature"
  cargo check --release --locked --all-targets --features "$feature"
done
# Bounded fuzzing of every cargo-fuzz target (FUZZ_SECONDS each, 0 skips):
# about 11 min on 2 cores (six targets), building included.
fuzz_seconds=${FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then
  echo "==> scripts/fuzz.sh $fuzz_seconds"
  scripts/fuzz.sh "$fuzz_seconds"
fi
echo "all tests passed"
