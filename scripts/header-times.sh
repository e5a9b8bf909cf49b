#!/usr/bin/env bash
# Times `g++ -fsyntax-only` of a file that includes each public header alone
# (median of 3), and counts its preprocessed lines.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX:-g++}
for h in $(cd include && find corio -name '*.hpp' -not -path '*/detail/*' | sort); do
  src="#include <$h>"
  lines=$(echo "$src" | $CXX -std=c++20 -Iinclude -x c++ -E - | wc -l)
  ts=()
  for _ in 1 2 3; do
    s=$(date +%s.%N)
    echo "$src" | $CXX -std=c++20 -Iinclude -x c++ -fsyntax-only -
    e=$(date +%s.%N)
    ts+=("$(echo "$e - $s" | bc)")
  done
  med=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n 2p)
  printf '%-40s %6s lines %5.2f s\n' "$h" "$lines" "$med"
done
