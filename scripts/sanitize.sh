#!/usr/bin/env bash
# Builds and runs the whole test suite under a sanitizer, in its own build dir.
#   ./scripts/sanitize.sh asan   # AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   ./scripts/sanitize.sh tsan   # ThreadSanitizer (build-tsan/)
# Extra arguments go to ctest (e.g. -R Daemon).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
shift || true
case "$kind" in
  asan)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    IDEM_BUILD_DIR=build-asan exec ./scripts/test.sh -DIDEM_ASAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
    ;;
  tsan)
    # scripts/tsan.supp: false positives from the uninstrumented system RocksDB,
    # each explained there. An absolute path: tests run idemd from other dirs.
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp}
    IDEM_BUILD_DIR=build-tsan exec ./scripts/test.sh -DIDEM_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
    ;;
  *)
    echo "usage: $0 asan|tsan [ctest args]" >&2
    exit 2
    ;;
esac
