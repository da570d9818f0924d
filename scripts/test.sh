#!/usr/bin/env bash
# The test command: prepares everything (scripts/setup.sh, seconds when
# already done), then runs every test suite and checks that each GPU
# provider feature still builds.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "==> cargo test --release"
cargo test --release --locked

echo "==> leak check (LeakSanitizer)"
scripts/leak_check.sh

for feature in cuda migraphx coreml; do
  echo "==> cargo check --features $feature"
  cargo check --release --locked --all-targets --features "$feature"
done
echo "all tests passed"
