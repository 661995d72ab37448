#!/usr/bin/env bash
# Configures and builds TramSync into a build directory.
#   scripts/build.sh [BUILD_DIR] [BUILD_TYPE] [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$root/build"}
type=${2:-RelWithDebInfo}
shift $(( $# > 2 ? 2 : $# ))
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ -f "$dir/CMakeCache.txt" ]; then generator=(); fi
cmake -S "$root" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
cmake --build "$dir" --parallel "$(nproc)"
