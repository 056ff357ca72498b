#!/usr/bin/env bash
# Builds idem and runs the whole test suite. Exits non-zero if any test fails.
# Arguments starting with -D go to cmake (e.g. -DIDEM_ASAN=ON), the rest to
# ctest (e.g. -R StateMachine).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake_args=()
ctest_args=()
for a in "$@"; do
  if [[ "$a" == -D* ]]; then cmake_args+=("$a"); else ctest_args+=("$a"); fi
done
./scripts/build.sh "${cmake_args[@]}"
cd "${IDEM_BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "${ctest_args[@]}"
