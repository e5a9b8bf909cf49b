#!/bin/sh
# Installs corio from BUILD_DIR into a scratch prefix, then builds and runs a
# consumer project against it twice: found with CMake's find_package(corio),
# and compiled with the flags of `pkg-config corio`. Both must print the
# version the package declares.
#   check.sh BUILD_DIR CONSUMER_SRC
set -eu
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
exec "$(dirname "$0")/consume.sh" "$work/prefix" "$src" "$work"
