#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test twice: a normal build with
# -Werror, and a build with AddressSanitizer + UBSan. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

echo "== build (-Werror) =="
scripts/build.sh build -DSIGFLOW_WERROR=ON -DSIGFLOW_SANITIZE=OFF
echo "== tests (-Werror build) =="
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build (-Werror, ASan + UBSan) =="
scripts/build.sh build-asan -DSIGFLOW_WERROR=ON -DSIGFLOW_SANITIZE=ON
echo "== tests (ASan + UBSan build) =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
SIGFLOW_SANITIZED=1 ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== fuzz targets (clang, libFuzzer; 20 s each) =="
scripts/fuzz.sh 20
