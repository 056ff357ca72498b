#!/usr/bin/env bash
# idem vs Redis side by side (see BENCHMARKS.md). Installs redis-server when
# missing, builds idem, runs scripts/compare.py with the given arguments
# (e.g. --rounds 3 --seconds 5).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
if ! command -v redis-server >/dev/null; then
  SUDO=()
  [[ $(id -u) -ne 0 ]] && SUDO=(sudo)
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The package starts a system instance; this script starts its own.
  "${SUDO[@]}" systemctl stop redis-server >/dev/null 2>&1 || true
fi
./scripts/build.sh >/dev/null
exec python3 scripts/compare.py "$@"
