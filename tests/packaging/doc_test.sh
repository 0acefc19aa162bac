#!/usr/bin/env bash
# docs/sdk.md's code blocks are real: every ```cpp block, in order, compiles as one translation
# unit; the plugin's blocks are, joined, examples/cursor-manager/delayed.cpp (after its header
# comment); the ```cmake block is that example's CMakeLists.txt; each ```toml block passes
# `trellis config check`.
#   doc_test.sh SOURCE_DIR TRELLIS_CLI
set -euo pipefail
src=$(cd "$1" && pwd)
cli=$2
doc="$src/docs/sdk.md"
work=$(mktemp -d /tmp/trellis-doc-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# blocks LANG: each block of that language to $work/LANG.N, numbered from 1
blocks() {
  awk -v lang="$1" -v out="$work/$1" '
    /^```/ { if (inside) { inside = 0; close(file); next }
             if ($0 == "```" lang) { inside = 1; n++; file = out "." n; printf "" > file; next } }
    inside { print > file }' "$doc"
}
for lang in cpp cmake toml; do blocks "$lang"; done
ls "$work" >/dev/null
cpp=( $(ls "$work"/cpp.* | sort -t. -k2 -n) )
(( ${#cpp[@]} >= 5 )) || fail "expected at least 5 C++ blocks, found ${#cpp[@]}"

cat "${cpp[@]}" >"$work/all.cpp"
g++ -std=c++20 -fPIC -fvisibility=hidden -c "$work/all.cpp" -o "$work/all.o" -I"$src/kernel/include" -I"$src/sdk/include" \
  -Wall -Wextra -Wpedantic -Werror -Wno-mismatched-new-delete || fail "the C++ blocks do not compile"
echo "${#cpp[@]} C++ blocks compile as one translation unit"

# The plugin blocks (all but the last, which is the application's) against the example's source.
plugin_blocks=("${cpp[@]:0:${#cpp[@]}-1}")
: >"$work/plugin.cpp"
for i in "${!plugin_blocks[@]}"; do
  (( i > 0 )) && echo >>"$work/plugin.cpp"
  cat "${plugin_blocks[$i]}" >>"$work/plugin.cpp"
done
sed '1,/^#include <chrono>/{/^#include <chrono>/!d}' "$src/examples/cursor-manager/delayed.cpp" >"$work/example.cpp"
diff -u "$work/example.cpp" "$work/plugin.cpp" || fail "docs/sdk.md's plugin differs from examples/cursor-manager/delayed.cpp"

diff -u "$src/examples/cursor-manager/CMakeLists.txt" "$work/cmake.1" ||
  fail "docs/sdk.md's CMake block differs from examples/cursor-manager/CMakeLists.txt"

for t in "$work"/toml.*; do
  cp "$t" "$work/check.toml"
  "$cli" config check "$work/check.toml" >/dev/null || fail "a TOML block fails trellis config check"
done
echo "doc test: all checks passed"
