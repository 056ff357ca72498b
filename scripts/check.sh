#!/usr/bin/env bash
# The check to run before each commit: format, build (warnings as errors),
# tests. With --tidy, also clang-tidy over the project's sources (slow).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh

mapfile -t SOURCES < <(git ls-files '*.h' '*.cc')
echo "== format (${#SOURCES[@]} files)"
clang-format --dry-run --Werror "${SOURCES[@]}"

echo "== build and test"
./scripts/test.sh

if [[ "${1:-}" == "--tidy" ]]; then
  echo "== clang-tidy"
  mapfile -t UNITS < <(git ls-files '*.cc' | grep -v '^tests/')
  clang-tidy -p build --quiet "${UNITS[@]}"
fi
echo "== all checks passed"
