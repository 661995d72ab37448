#!/usr/bin/env bash
# Configures and builds TramSync into a build directory.
#   scripts/build.sh [BUILD_DIR] [BUILD_TYPE] [extra cmake args...] [-- build args, e.g. --target sync_tests]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$root/build"}
type=${2:-RelWithDebInfo}
shift $(( $# > 2 ? 2 : $# ))
configure=() build=()
while (($#)); do
  if [ "$1" = "--" ]; then shift; build=("$@"); break; fi
  configure+=("$1"); shift
done
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ -f "$dir/CMakeCache.txt" ]; then generator=(); fi
cmake -S "$root" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE="$type" "${configure[@]}" >/dev/null
cmake --build "$dir" --parallel "$(nproc)" "${build[@]}"
