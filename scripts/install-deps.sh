#!/usr/bin/env bash
# Installs the Debian packages Trellis builds and tests with, when any is missing.
# Quick when everything is present: one dpkg-query, no apt.
#   --fuzz   only what the libFuzzer build needs (make fuzz): clang-16, its sanitizer and fuzzer
#            runtimes (libclang-rt-16-dev) and libfuzzer-16-dev; nothing else, no npm.
set -euo pipefail

fuzz=0
for arg in "$@"; do
  case "$arg" in
    --fuzz) fuzz=1 ;;
    *) echo "install-deps: unknown argument $arg (known: --fuzz)" >&2; exit 2 ;;
  esac
done

packages=(
  cmake ninja-build g++ make pkg-config
  dpkg-dev file
  libboost1.81-dev libboost-json1.81-dev libboost-filesystem1.81-dev
  qt6-base-dev qt6-charts-dev libqt6opengl6-dev xvfb
  libbson-dev libmongoc-dev libmongocrypt-dev
  libssl-dev openssl zlib1g-dev libsnappy-dev libzstd-dev
  libtomlplusplus-dev libutf8proc-dev
  libc-ares-dev dnsmasq
  python3 python3-pymongo python3-mockupdb python3-snappy python3-zstandard python3-cryptography
)
if [[ $fuzz -eq 1 ]]; then
  packages=(clang-16 libclang-rt-16-dev libfuzzer-16-dev)
fi

# The official Node.js driver and mongosh for tests/interop/node (npm, into that folder's
# node_modules, which git ignores). Quick when present: two directory tests and a timestamp.
install_node_packages() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/interop/node"
  if [[ -d "$dir/node_modules/mongodb" && -d "$dir/node_modules/mongosh" &&
        ! "$dir/package.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
    return 0
  fi
  command -v npm >/dev/null || { echo "install-deps: npm is needed for $dir (Node.js 20.19+)" >&2; return 1; }
  echo "install-deps: npm install in $dir"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
}

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  [[ $fuzz -eq 1 ]] || install_node_packages
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
[[ $fuzz -eq 1 ]] || install_node_packages
