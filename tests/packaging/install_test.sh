#!/usr/bin/env bash
# Installs the build into a temporary prefix and uses Trellis from outside its tree, through that
# prefix only: the example cursor-manager plugin and the example embedding application are
# configured and built with CMAKE_PREFIX_PATH=<prefix> from copies outside the source tree; the
# application runs against the installed trellis-sim with the plugin loaded from its own folder
# and must see the plugin's policy on the server (the cursor outlives its close by delay_ms, then
# one killCursors); a one-file program is compiled with pkg-config alone; the installed
# `trellis plugins` finds the installed plugins and nothing of the build tree, also after the
# prefix is moved.
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
if grep -q '^TRELLIS_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" ||
   grep -q '^CMAKE_CXX_FLAGS:STRING=.*-fsanitize=' "$build/CMakeCache.txt"; then
  # An instrumented libtrellis (ASan, TSan) cannot be loaded by the uninstrumented programs this builds.
  echo "SKIP: a sanitizer build is not packaged"; exit 77
fi
work=$(mktemp -d /tmp/trellis-install-test.XXXXXX)
sim_pid=""
cleanup() {
  [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "cmake --install into $work/prefix"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
prefix="$work/prefix"
for f in lib/libtrellis.so lib/libtrellis.so.0 include/trellis/client.hpp include/trellis/sdk/cursor_manager.hpp \
         lib/cmake/Trellis/TrellisConfig.cmake lib/cmake/Trellis/TrellisConfigVersion.cmake \
         lib/cmake/Trellis/TrellisTargets.cmake lib/cmake/Trellis/TrellisPlugin.cmake lib/pkgconfig/trellis.pc \
         lib/trellis/plugins/trellis-transport-plain.so bin/trellis bin/trellis-sim bin/trellis-monitor share/doc/trellis/README.md \
         share/doc/trellis/trellis.toml; do
  [[ -e "$prefix/$f" ]] || fail "$f is not installed"
done
[[ -z $(find "$prefix/include" -path '*/src/*' -o -name 'internal*' | head -1) ]] || fail "an internal header is installed"
soname=$(objdump -p "$prefix/lib/libtrellis.so" | awk '/SONAME/ {print $2}')
[[ "$soname" == libtrellis.so.0 ]] || fail "SONAME is '$soname', expected libtrellis.so.0"

step "the examples, copied out of the tree, built against the prefix only"
cp -r "$src/examples/cursor-manager" "$src/examples/embedding" "$work/"
for ex in cursor-manager embedding; do
  cmake -S "$work/$ex" -B "$work/build-$ex" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON >"$work/$ex-configure.log" 2>&1 ||
    { cat "$work/$ex-configure.log"; fail "configuring $ex"; }
  cmake --build "$work/build-$ex" >"$work/$ex-build.log" 2>&1 || { cat "$work/$ex-build.log"; fail "building $ex"; }
  if grep -q -e "$src" -e "$build" "$work/build-$ex/CMakeCache.txt" "$work/build-$ex/build.ninja"; then
    grep -n -e "$src" -e "$build" "$work/build-$ex/build.ninja" | head -3
    fail "$ex refers to the source or build tree"
  fi
done
plugin="$work/build-cursor-manager/plugins/trellis-delayed.so"
[[ -f "$plugin" ]] || fail "the plugin is not at $plugin"
app="$work/build-embedding/inventory-report"
ldd "$app" >"$work/ldd.out"
grep -q "libtrellis.so.0 => $prefix/lib/libtrellis.so.0" "$work/ldd.out" || { cat "$work/ldd.out"; fail "the app does not use the prefix's libtrellis"; }

step "the installed trellis-sim, a standalone on loopback"
"$prefix/bin/trellis-sim" --topology standalone >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 100); do grep -q '^ready ' "$work/sim.out" && break; sleep 0.1; done
uri=$(awk '/^ready / {print $2; exit}' "$work/sim.out")
[[ -n "$uri" ]] || { cat "$work/sim.err"; fail "trellis-sim did not start"; }

step "the embedding app, configured by TOML, with the plugin from its own folder"
cat >"$work/app.toml" <<TOML
[client]
uri = "$uri"
app_name = "inventory-report"

[plugins]
paths = ["$work/build-cursor-manager/plugins"]
cursor_manager = "delayed"

[plugins.delayed]
delay_ms = 1500
log = true
TOML
env -u TRELLIS_PLUGIN_PATH "$app" "$work/app.toml" >"$work/app.out" 2>"$work/app.err" ||
  { cat "$work/app.out" "$work/app.err"; fail "inventory-report failed"; }
cat "$work/app.out" "$work/app.err"
grep -q "server still has the cursor 200 ms later: yes" "$work/app.out" || fail "the cursor was killed before delay_ms"
after=$(sed -n 's/^killCursors sent \([0-9]*\) ms after close.*/\1/p' "$work/app.out")
[[ -n "$after" ]] || fail "no killCursors seen"
(( after >= 1500 && after < 4000 )) || fail "killCursors $after ms after close; delay_ms is 1500 (flush runs once a second)"
grep -q "^delayed: killCursors shop.stock on " "$work/app.err" || fail "the plugin's log line is missing"

step "pkg-config alone compiles and links a program"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion trellis
# shellcheck disable=SC2046
g++ -std=c++20 "$src/tests/packaging/pkgconfig_hello.cpp" -o "$work/hello" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs trellis) -Wl,-rpath,"$prefix/lib"
"$work/hello" | tee "$work/hello.out"
grep -q '"hello" : "pkg-config"' "$work/hello.out" || grep -q '"hello": "pkg-config"' "$work/hello.out" ||
  fail "the pkg-config program printed something else"

check_plugins() {  # the installed trellis plugins: every built-in plugin from $1, nothing else
  local root=$1
  env -u TRELLIS_PLUGIN_PATH "$root/bin/trellis" plugins >"$work/plugins.out"
  env -u TRELLIS_PLUGIN_PATH "$root/bin/trellis" plugins --json >"$work/plugins.json"
  /usr/bin/python3 - "$work/plugins.json" "$root" "$build" <<'PY'
import json, sys
data = json.load(open(sys.argv[1])); root = sys.argv[2]; build = sys.argv[3]
assert data["search_path"] == [root + "/lib/trellis/plugins"], data["search_path"]
names = sorted((p["kind"], p["name"]) for p in data["plugins"] if p["state"] == "loaded")
for p in data["plugins"]:
    assert p["file"].startswith(root + "/lib/trellis/plugins/"), p["file"]
    assert not p["file"].startswith(build), p["file"]
    assert p["state"] == "loaded", p
expected = {("transport", "plain"), ("transport", "tls"), ("topology_strategy", "standalone"),
            ("topology_strategy", "replica_set"), ("topology_strategy", "mongos"), ("topology_strategy", "master_slave"),
            ("cursor_manager", "immediate"), ("cursor_manager", "batched"), ("authenticator", "scram"),
            ("authenticator", "plain"), ("authenticator", "x509"), ("compressor", "snappy"), ("compressor", "zlib"),
            ("compressor", "zstd")}
missing = expected - set(names)
assert not missing, missing
print(len(names), "plugins loaded from", root + "/lib/trellis/plugins")
PY
}
step "the installed trellis plugins"
check_plugins "$prefix"
cat "$work/plugins.out"

step "a moved prefix still finds its own plugins"
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
mv "$prefix" "$work/moved"
check_plugins "$work/moved"
echo "install test: all checks passed"
