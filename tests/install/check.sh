#!/bin/sh
# Installs corio from BUILD_DIR into a scratch prefix, then configures, builds
# and runs a consumer project that finds it with find_package(corio).
#   check.sh BUILD_DIR CONSUMER_SRC
set -eu
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/b" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b" >/dev/null
"$work/b/app"
echo "find_package(corio) consumer built and ran"
