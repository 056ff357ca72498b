#!/usr/bin/env bash
# Builds idem optimized and runs the micro-benchmarks (bench/*_bench.cc, built
# to bin/bench/), writing JSON to <build>/microbench/<name>.json and printing
# each run and a summary table.
#
#   ./scripts/microbench.sh                          # every benchmark
#   ./scripts/microbench.sh store_bench record_bench # only these executables
#   ./scripts/microbench.sh --benchmark_filter=Get   # --flags go to each executable
#
# The build dir is build/ (or $IDEM_BUILD_DIR). It must be Release or
# RelWithDebInfo without sanitizers; a Debug or sanitizer dir is refused rather
# than reconfigured under whoever else uses it.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${IDEM_BUILD_DIR:-build}
MIN_TIME=${MICROBENCH_MIN_TIME:-0.2}  # seconds; 1.7.1 takes a plain number

names=()
flags=()
for a in "$@"; do
  if [[ "$a" == --* ]]; then flags+=("$a"); else names+=("$a"); fi
done

cache_value() {  # cache_value VAR: its value in the build dir's CMakeCache.txt
  sed -n "s/^$1:[A-Z]*=//p" "$BUILD_DIR/CMakeCache.txt" 2>/dev/null
}
if [[ -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  type=$(cache_value CMAKE_BUILD_TYPE)
  if [[ "$type" != Release && "$type" != RelWithDebInfo ]] ||
     [[ "$(cache_value IDEM_ASAN)" == ON || "$(cache_value IDEM_TSAN)" == ON ]]; then
    echo "microbench: $BUILD_DIR is a '$type' build (or has sanitizers); its numbers would be" \
         "meaningless. Use IDEM_BUILD_DIR=build-release $0" >&2
    exit 1
  fi
  ./scripts/build.sh -DIDEM_BUILD_BENCH=ON
else
  ./scripts/build.sh -DIDEM_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi

BIN_DIR="$BUILD_DIR/bin/bench"
OUT_DIR="$BUILD_DIR/microbench"
mkdir -p "$OUT_DIR"
if [[ ${#names[@]} -eq 0 ]]; then
  for exe in "$BIN_DIR"/*_bench; do names+=("$(basename "$exe")"); done
fi

failed=()
for name in "${names[@]}"; do
  exe="$BIN_DIR/$name"
  [[ -x "$exe" ]] || { echo "microbench: no executable $exe" >&2; failed+=("$name"); continue; }
  echo "== $name"
  if ! "$exe" --benchmark_min_time="$MIN_TIME" --benchmark_out="$OUT_DIR/$name.json" \
      --benchmark_out_format=json "${flags[@]}"; then
    failed+=("$name")
  fi
done

# One line per benchmark from the JSON just written.
echo "== summary (JSON in $OUT_DIR/)"
python3 - "$OUT_DIR" "${names[@]}" <<'EOF'
import json, os, sys

out_dir, names = sys.argv[1], sys.argv[2:]
unit_ns = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
print(f"{'benchmark':<58} {'ns/op':>12} {'cpu ns/op':>12} {'items/s':>10} {'MB/s':>9}")
for name in names:
    path = os.path.join(out_dir, name + ".json")
    if not os.path.exists(path):
        continue
    with open(path) as f:
        for b in json.load(f).get("benchmarks", []):
            if b.get("error_occurred"):
                print(f"{b['name']:<58} ERROR: {b.get('error_message', '')}")
                continue
            scale = unit_ns.get(b.get("time_unit", "ns"), 1)
            items = b.get("items_per_second")
            mbs = b.get("bytes_per_second")
            print(f"{b['name']:<58} {b['real_time'] * scale:>12.1f} {b['cpu_time'] * scale:>12.1f}"
                  f" {f'{items:.3g}' if items else '-':>10}"
                  f" {f'{mbs / 1e6:.1f}' if mbs else '-':>9}")
EOF

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "microbench: failed: ${failed[*]}" >&2
  exit 1
fi
