#!/bin/sh
# Packs BUILD_DIR into a Debian package with CPack (what `make deb` does),
# checks its control fields and contents, that dpkg would install it (as
# root: a dry run, nothing changes), then unpacks it and builds and runs the
# consumer against the unpacked /usr both ways (consume.sh).
#   deb_check.sh BUILD_DIR CONSUMER_SRC
set -eu
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cpack --config "$build/CPackConfig.cmake" -B "$work/pkg" >/dev/null
deb=$(ls "$work"/pkg/*.deb)
[ "$(dpkg-deb --field "$deb" Package)" = libcorio-dev ] || { echo "wrong package name"; exit 1; }
dpkg-deb --field "$deb" Depends | grep -q liburing-dev || { echo "Depends lacks liburing-dev"; exit 1; }
for f in ./usr/include/corio/corio.hpp ./usr/include/corio/version.hpp ./usr/lib/libcorio.a \
         ./usr/lib/pkgconfig/corio.pc ./usr/lib/cmake/corio/corioConfig.cmake; do
  dpkg-deb --contents "$deb" | grep -q " $f\$" || { echo "$deb lacks $f"; exit 1; }
done
if [ "$(id -u)" -eq 0 ]; then
  dpkg --dry-run --install "$deb" >/dev/null
  echo "dpkg would install $(basename "$deb")"
fi
dpkg-deb --extract "$deb" "$work/root"
"$(dirname "$0")/consume.sh" "$work/root/usr" "$src" "$work"
