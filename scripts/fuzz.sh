#!/usr/bin/env bash
# Builds and runs a libFuzzer target (clang, ASan+UBSan) in build-fuzz/.
#   ./scripts/fuzz.sh frame_decoder 600     # fuzz/frame_decoder_fuzz.cc for 10 minutes
#   ./scripts/fuzz.sh request_path 600      # fuzz/request_path_fuzz.cc
#   ./scripts/fuzz.sh all 600               # each target in turn, SECONDS each
# Arguments after SECONDS go to libFuzzer (e.g. -jobs=2, -max_len=8192).
# The seed corpus fuzz/corpus/TARGET is copied into build-fuzz/corpus/TARGET,
# where the run adds what it finds; nothing is written back into the repo (to
# keep an input as a regression seed, copy it to fuzz/corpus/TARGET/ by hand).
# Crashes go to build-fuzz/artifacts/TARGET/, the log to build-fuzz/TARGET.log.
# Ends with one summary line per target:
#   fuzz: TARGET seconds=600 execs=... exec/s=... cov=... ft=... corpus=... result=ok
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(frame_decoder request_path)
usage() {
  echo "usage: $0 {${TARGETS[*]// /|}|all} SECONDS [libFuzzer args]" >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
target=$1
seconds=$2
shift 2
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
case "$target" in
  all) run_targets=("${TARGETS[@]}") ;;
  frame_decoder | request_path) run_targets=("$target") ;;
  *) usage ;;
esac

# clang and its runtimes (libFuzzer, ASan, UBSan), besides the usual packages.
./scripts/deps.sh
fuzz_packages=(clang libclang-rt-14-dev)
missing=()
for p in "${fuzz_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "idem: installing missing packages: ${missing[*]}" >&2
  SUDO=()
  [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_DIR=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DIDEM_FUZZ=ON -DIDEM_WERROR=OFF -DIDEM_BUILD_TESTS=OFF -DIDEM_BUILD_BENCH=OFF >/dev/null
for t in "${run_targets[@]}"; do
  cmake --build "$BUILD_DIR" --target "${t}_fuzz" -j"$(nproc)"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summaries=()
status=0
for t in "${run_targets[@]}"; do
  corpus="$BUILD_DIR/corpus/$t"
  artifacts="$BUILD_DIR/artifacts/$t"
  log="$BUILD_DIR/$t.log"
  mkdir -p "$corpus" "$artifacts"
  cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  echo "fuzz: running $t for ${seconds}s (log: $log)" >&2
  # libFuzzer 14's entropic schedule spends most of a request_path run updating
  # feature frequencies (its inputs hit thousands of features): off, it runs
  # about 7x faster. A later -entropic=1 in the arguments overrides this.
  defaults=(-print_final_stats=1 -timeout=25)
  [[ "$t" == request_path ]] && defaults+=(-entropic=0)
  rc=0
  "$BUILD_DIR/bin/${t}_fuzz" -max_total_time="$seconds" "${defaults[@]}" \
    -artifact_prefix="$artifacts/" "$@" "$corpus" >"$log" 2>&1 || rc=$?
  # The last status line ("#N DONE cov: C ft: F corp: K/..."), and the final stats.
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -1)
  result=ok
  if [[ $rc -ne 0 ]]; then
    result="FAILED(rc=$rc; see $log and $artifacts/)"
    status=1
  fi
  summaries+=("fuzz: $t seconds=$seconds execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} result=$result")
done
printf '%s\n' "${summaries[@]}"
exit $status
