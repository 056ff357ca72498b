#!/usr/bin/env bash
# Configures (once) and builds idem into build/ (or $IDEM_BUILD_DIR).
# Extra arguments are passed to cmake at configure time, e.g. -DIDEM_ASAN=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh

BUILD_DIR=${IDEM_BUILD_DIR:-build}
# Warnings are errors here (the supported g++ 12); a plain cmake build keeps
# them as warnings for other compilers.
cmake -S . -B "$BUILD_DIR" -G Ninja -DIDEM_WERROR=ON "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
