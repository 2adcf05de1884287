#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz) with clang in build-fuzz/ and run each for
# SECONDS (default 20) on a copy of its seed corpus. Exits non-zero when any finds a crash
# (the reproducer is left in build-fuzz/findings/).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
build=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang cmake -S . -B "$build" -DSIGFLOW_FUZZ=ON -DSIGFLOW_TESTS=OFF -DSIGFLOW_WERROR=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(fuzz_scenario fuzz_bus fuzz_modbus fuzz_record)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
mkdir -p "$build/findings"
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  seeds=tests/fuzz/corpus/$t
  echo "== $t: ${secs}s =="
  if ! ASAN_OPTIONS=detect_leaks=1 "$build/tests/fuzz/$t" -max_total_time="$secs" -timeout=10 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/findings/$t-" \
       "$corpus" "$seeds" 2>"$build/$t.log"; then
    echo "$t: FAILED (see $build/$t.log and $build/findings/)"
    tail -40 "$build/$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$build/$t.log" | tail -2
  fi
done
exit $status
