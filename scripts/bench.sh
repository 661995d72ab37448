#!/usr/bin/env bash
# Runs every benchmark and writes one table of figures (bench/README.md).
#
#   scripts/bench.sh            full mode: the sizes issue 7 names, plus the same
#                               figures at 1/100 and 1/10 of them (scaling); minutes,
#                               and the first run builds the reports' 5 GB province file
#   scripts/bench.sh --quick    small data, 3 runs each: about two minutes
#   options: --out DIR (default bench-results/), --data DIR (the reports' cached
#            files, default bench-data/), --skip NAME[,NAME] (local, ingest, sync, reports)
#
# Writes DIR/RESULTS.md and DIR/results.json (the machine, the commit, each
# figure's median, spread, limit and ratio) and each program's own JSON beside
# them. Installs what is missing and builds in build-release/ (Release).
# Nothing here is part of the test command: figures are not assertions.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=full out="$root/bench-results" data="$root/bench-data" skip=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --out) out=$2; shift ;;
    --data) data=$2; shift ;;
    --skip) skip=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

bash "$root/scripts/setup.sh"
build="$root/build-release"
echo "== build (Release) in $build" >&2
bash "$root/scripts/build.sh" "$build" Release -DBUILD_TESTING=OFF
mkdir -p "$out" "$data"
rm -f "$out"/*.json "$out/RESULTS.md"
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi

skipped() { case ",$skip," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# run NAME SCALE ARGS...: one program at one scale ("" = its mode's default).
run() {
  local name=$1 scale=$2; shift 2
  local file="$out/$name${scale:+-scale$scale}.json"
  local args=("$@")
  if [ "$mode" = quick ]; then
    # The reports' quick size (100 stations) takes a minute to build once; seconds here.
    if [ "$name" = reports ]; then args+=(--scale 0.01 --runs 3); else args+=(--quick); fi
  fi
  [ -n "$scale" ] && args+=(--scale "$scale")
  echo "== $name ${scale:+(scale $scale)} ${args[*]}" >&2
  "$build/bench/tramsync-bench-$name" "${args[@]}" --json-out "$file" >"$out/$name${scale:+-scale$scale}.log"
}

scales=("")
[ "$mode" = full ] && scales=(0.01 0.1 1)
for name in local ingest sync reports; do
  skipped "$name" && continue
  [ -x "$build/bench/tramsync-bench-$name" ] || { echo "bench.sh: no tramsync-bench-$name in $build" >&2; exit 1; }
  extra=()
  [ "$name" = reports ] && extra=(--data "$data")
  for s in "${scales[@]}"; do run "$name" "$s" "${extra[@]}"; done
done

"$build/bench/tramsync-bench-table" --commit "$commit" --mode "$mode" --md "$out/RESULTS.md" --json "$out/results.json" \
  "$out"/*.json
echo "== wrote $out/RESULTS.md and $out/results.json" >&2
cat "$out/RESULTS.md"
