#!/usr/bin/env bash
# Installs what is missing, builds, and runs a scenario (default: the Xiantao corridor).
# Extra arguments go to `sigflow run`, e.g. scripts/run.sh --headless --duration 600.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build -DSIGFLOW_TESTS=OFF
exec build/cli/sigflow run "$@"
