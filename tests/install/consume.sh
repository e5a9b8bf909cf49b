#!/bin/sh
# Builds and runs the consumer against corio installed under PREFIX, with
# CMake's find_package and with pkg-config, in WORK.
#   consume.sh PREFIX CONSUMER_SRC WORK
set -eu
prefix=$1
src=$2
work=$3
pc_dir=$(dirname "$(find "$prefix" -name corio.pc | head -n 1)")
[ -f "$pc_dir/corio.pc" ] || { echo "no corio.pc under $prefix"; exit 1; }
declared=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --modversion corio)

cmake -S "$src" -B "$work/b" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/b" >/dev/null
got=$("$work/b/app")
[ "$got" = "$declared" ] || { echo "find_package consumer printed '$got', corio.pc says '$declared'"; exit 1; }
echo "find_package(corio) consumer built and ran: corio $got"

# shellcheck disable=SC2046  # the flags are words
c++ -O1 -o "$work/app-pc" "$src/main.cpp" $(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs corio)
got=$("$work/app-pc")
[ "$got" = "$declared" ] || { echo "pkg-config consumer printed '$got', corio.pc says '$declared'"; exit 1; }
echo "pkg-config consumer built and ran: corio $got"
