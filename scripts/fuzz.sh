#!/usr/bin/env bash
# Fuzzes TramSync's untrusted-input paths with libFuzzer (fuzz/README.md).
#
#   scripts/fuzz.sh [SECONDS]    each target SECONDS (default 30) on its corpus
#   scripts/fuzz.sh 3600         the long run: an hour per target
#
# Installs what is missing (scripts/setup.sh: clang, libFuzzer), builds the
# targets in build-fuzz/ (clang++, -fsanitize=fuzzer,address,undefined), then
# runs tramsync-fuzz-batch, -push and -merge one after the other, each on the
# committed seeds (fuzz/corpus/NAME/) and regressions (fuzz/regressions/NAME/);
# what it finds new goes to build-fuzz/corpus/NAME/, never into the committed
# folders. Exits 1 when a target crashed, leaked, hit undefined behaviour or
# broke a property; the input is saved as build-fuzz/crashes/NAME/crash-* and
# the command to replay it is printed. Each crash fixed becomes a regression:
# the input goes to fuzz/regressions/NAME/, where ctest replays it in every
# build (fuzz/README.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number (got $seconds)" >&2; exit 2 ;; esac
targets=(batch push merge)

bash "$root/scripts/setup.sh"
build="$root/build-fuzz"
# -O1: libFuzzer's usual level; it compiles in about half the time of -O2.
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DTRAMSYNC_FUZZ=ON -DBUILD_TESTING=OFF)
command -v ccache >/dev/null && args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null; then args+=(-G Ninja); fi
echo "== build (clang, libFuzzer + ASan + UBSan) in $build" >&2
CC=clang CXX=clang++ cmake -S "$root" -B "$build" "${args[@]}" >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target "${targets[@]/#/tramsync-fuzz-}"

# The push target's centre is a file; it goes here, in memory when possible.
work=$(mktemp -d /dev/shm/tramsync-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRAMSYNC_FUZZ_TMP="$work"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for s in llvm-symbolizer llvm-symbolizer-14; do
  if command -v "$s" >/dev/null; then export ASAN_SYMBOLIZER_PATH=$(command -v "$s"); break; fi
done

failed=()
for t in "${targets[@]}"; do
  out="$build/corpus/$t" crashes="$build/crashes/$t/"
  mkdir -p "$out" "$crashes" "$root/fuzz/regressions/$t"
  echo "== fuzz $t for ${seconds}s" >&2
  if ! "$build/fuzz/tramsync-fuzz-$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560 \
      -artifact_prefix="$crashes" -print_final_stats=1 \
      "$out" "$root/fuzz/corpus/$t" "$root/fuzz/regressions/$t" 2>"$build/fuzz-$t.log"; then
    failed+=("$t")
    tail -n 60 "$build/fuzz-$t.log" >&2
    echo "fuzz.sh: $t failed; the input is in $crashes (replay: $build/fuzz/tramsync-fuzz-$t FILE)" >&2
  else
    grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$build/fuzz-$t.log" | tail -n 2 >&2 || true
  fi
done
if ((${#failed[@]})); then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${targets[*]}: no crash, leak, undefined behaviour or broken property in ${seconds}s each" >&2
