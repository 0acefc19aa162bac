#!/usr/bin/env bash
# Builds the packages with CPack (as `make package` does) into a temporary folder and checks the
# .deb files' contents (dpkg-deb -c) and Depends (dpkg-deb -f), and the .tar.gz's contents.
#   deb_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
if grep -q '^TRELLIS_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  # An ASan-instrumented libtrellis cannot be loaded by the uninstrumented programs this builds.
  echo "SKIP: a sanitizer build is not packaged"; exit 77
fi
work=$(mktemp -d /tmp/trellis-deb-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v dpkg-shlibdeps >/dev/null || { echo "SKIP: dpkg-shlibdeps (dpkg-dev) is not installed"; exit 77; }
(cd "$build" && cpack -B "$work" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
ls -1 "$work"/*.deb "$work"/*.tar.gz
lib="$work/libtrellis0_${version}_amd64.deb"
dev="$work/libtrellis-dev_${version}_amd64.deb"
tools="$work/trellis-tools_${version}_amd64.deb"
monitor="$work/trellis-monitor_${version}_amd64.deb"
for f in "$lib" "$dev" "$tools" "$monitor"; do [[ -f "$f" ]] || fail "$(basename "$f") was not built"; done
contains() {  # contains DEB PATH...
  local deb=$1; shift
  dpkg-deb -c "$deb" | awk '{print $6}' >"$work/list"
  for p in "$@"; do grep -qx "\./usr/$p" "$work/list" || fail "$(basename "$deb") lacks /usr/$p"; done
}
contains "$lib" lib/libtrellis.so.0 lib/libtrellis.so.${version} lib/trellis/plugins/trellis-transport-plain.so \
  lib/trellis/plugins/trellis-transport-tls.so lib/trellis/plugins/trellis-auth-scram.so \
  lib/trellis/plugins/trellis-topology-replica-set.so lib/trellis/plugins/trellis-cursor-batched.so
contains "$dev" lib/libtrellis.so include/trellis/client.hpp include/trellis/sdk/plugin.hpp \
  include/trellis/bson/document.hpp lib/cmake/Trellis/TrellisConfig.cmake lib/cmake/Trellis/TrellisTargets.cmake \
  lib/cmake/Trellis/TrellisConfigVersion.cmake lib/cmake/Trellis/TrellisPlugin.cmake lib/pkgconfig/trellis.pc \
  share/doc/trellis/README.md share/doc/trellis/examples/cursor-manager/delayed.cpp
contains "$tools" bin/trellis bin/trellis-sim
contains "$monitor" bin/trellis-monitor
# Depends: Debian's runtime packages from dpkg-shlibdeps, and the packages' own order.
deps_lib=$(dpkg-deb -f "$lib" Depends); deps_dev=$(dpkg-deb -f "$dev" Depends); deps_tools=$(dpkg-deb -f "$tools" Depends)
echo "libtrellis0 Depends: $deps_lib"; echo "libtrellis-dev Depends: $deps_dev"; echo "trellis-tools Depends: $deps_tools"
for d in libc6 libstdc++6 libssl3 libc-ares2 libtomlplusplus3 zlib1g libsnappy1v5 libzstd1 libutf8proc2; do
  [[ "$deps_lib" == *"$d"* ]] || fail "libtrellis0 does not depend on $d"
done
[[ "$deps_dev" == *"libtrellis0 (= ${version})"* && "$deps_dev" == *libboost1.81-dev* ]] || fail "libtrellis-dev Depends: $deps_dev"
[[ "$deps_tools" == *"libtrellis0 (= ${version})"* ]] || fail "trellis-tools Depends: $deps_tools"
[[ "$deps_tools" != *libqt6* ]] || fail "trellis-tools should not need Qt: $deps_tools"
deps_monitor=$(dpkg-deb -f "$monitor" Depends); echo "trellis-monitor Depends: $deps_monitor"
[[ "$deps_monitor" == *"libtrellis0 (= ${version})"* && "$deps_monitor" == *libqt6charts6* ]] ||
  fail "trellis-monitor Depends: $deps_monitor"
tarball=$(ls "$work"/*.tar.gz)
tar -tzf "$tarball" >"$work/tar.list"
grep -q '/lib/libtrellis.so.0$' "$work/tar.list" || fail "the .tar.gz lacks lib/libtrellis.so.0"
grep -q '/bin/trellis-sim$' "$work/tar.list" || fail "the .tar.gz lacks bin/trellis-sim"
echo "deb test: all checks passed"
