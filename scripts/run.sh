#!/usr/bin/env bash
# Builds idem and runs the daemon with its embedded defaults
# (127.0.0.1:7420, ./idem-data, sync durability). Arguments go to idemd.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh >/dev/null
exec ./build/bin/idemd "$@"
