#!/usr/bin/env bash
# Installs the Debian packages Trellis builds and tests with, when any is missing.
# Quick when everything is present: one dpkg-query, no apt.
set -euo pipefail

packages=(
  cmake ninja-build g++ make pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-filesystem1.81-dev
  qt6-base-dev qt6-charts-dev libqt6opengl6-dev xvfb
  libbson-dev
  libssl-dev openssl zlib1g-dev
  libtomlplusplus-dev libutf8proc-dev
  libc-ares-dev dnsmasq
  python3 python3-pymongo python3-mockupdb
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
