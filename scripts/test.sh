#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test twice: in the normal
# build and in a Debug build with AddressSanitizer and UndefinedBehaviorSanitizer;
# then the sync tests (the server's threads in one process) under ThreadSanitizer,
# and a short libFuzzer run of each fuzz target on its committed corpus
# (TRAMSYNC_FUZZ_SECONDS each, default 20; the long run is scripts/fuzz.sh 3600).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"

run() {
  local dir=$1 type=$2
  echo "== build ($type) in $dir" >&2
  bash "$root/scripts/build.sh" "$dir" "$type"
  echo "== tests ($type)" >&2
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j "$(nproc)")
}

run "$root/build" RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run "$root/build-asan" Debug

# ThreadSanitizer: the sync tests only (core and e2e are single-threaded per
# process). -O1, as TSan's documentation advises; halt on the first report.
echo "== build (ThreadSanitizer, sync tests) in $root/build-tsan" >&2
bash "$root/scripts/build.sh" "$root/build-tsan" RelWithDebInfo -DTRAMSYNC_TSAN=ON -DTRAMSYNC_SANITIZE=OFF \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -- --target sync_tests
echo "== tests (ThreadSanitizer)" >&2
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 "$root/build-tsan/tests/sync_tests"

# libFuzzer (clang): the change-batch decoder, the push endpoint and merge.
bash "$root/scripts/fuzz.sh" "${TRAMSYNC_FUZZ_SECONDS:-20}"
