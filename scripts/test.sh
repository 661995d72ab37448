#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test twice: in the normal
# build and in a Debug build with AddressSanitizer and UndefinedBehaviorSanitizer.
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
