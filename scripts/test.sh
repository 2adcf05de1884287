#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test twice: a normal build with
# -Werror, and a build with AddressSanitizer + UBSan; then runs each fuzz target for a
# bounded time. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "== build (-Werror) =="
scripts/build.sh build -DSIGFLOW_WERROR=ON -DSIGFLOW_SANITIZE=OFF
echo "== tests (-Werror build) =="
ctest --test-dir build --output-on-failure -j"$jobs" | tee "$logs/plain.log"

echo "== build (-Werror, ASan + UBSan) =="
scripts/build.sh build-asan -DSIGFLOW_WERROR=ON -DSIGFLOW_SANITIZE=ON
echo "== tests (ASan + UBSan build) =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
SIGFLOW_SANITIZED=1 ctest --test-dir build-asan --output-on-failure -V -j"$jobs" > "$logs/asan.log" 2>&1 \
  || { cat "$logs/asan.log"; exit 1; }
grep -E "^[0-9]+/[0-9]+ Test|tests passed|tests failed" "$logs/asan.log" | sed 's/^[0-9]*: //'
# Criterion keeps a test "passed" when LeakSanitizer or UBSan only reports from its
# worker process: the report itself fails the run.
if grep -nE "ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:" "$logs/asan.log"; then
  echo "sanitizer reports above: failing" >&2
  exit 1
fi

echo "== fuzz targets (clang, libFuzzer; 20 s each) =="
scripts/fuzz.sh 20

# One closing line for both runs.
count() { sed -nE 's/.*tests passed, ([0-9]+) tests failed out of ([0-9]+).*/\1 \2/p' "$1"; }
read -r f1 n1 < <(count "$logs/plain.log") || { f1=0; n1=0; }
read -r f2 n2 < <(count "$logs/asan.log") || { f2=0; n2=0; }
echo "tests: $((n1 - f1 + n2 - f2)) passed, $((f1 + f2)) failed"
