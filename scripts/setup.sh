#!/usr/bin/env bash
# Installs what TramSync needs to build and test on Debian 12, and nothing when all is there.
# Runs as root (apt-get); uses sudo when not root and sudo exists.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libsqlite3-dev sqlite3
  libcpp-httplib-dev nlohmann-json3-dev libssl-dev openssl zlib1g-dev
  catch2 libcli11-dev libicu-dev
  faketime
  clang libclang-rt-14-dev llvm-14  # scripts/fuzz.sh: clang++, libFuzzer, llvm-symbolizer
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
