#!/usr/bin/env bash
# Builds the HTTP parser fuzz target with clang's libFuzzer (+ ASan/UBSan)
# and runs it for a bounded time from the seed corpus; new inputs go to a
# scratch directory, never into the tree. Usage: run_libfuzzer.sh SRC_DIR BUILD_DIR [SECONDS]
set -euo pipefail
src=$1
out=$2/fuzz
seconds=${3:-20}
mkdir -p "$out/corpus"
clang++ -std=c++20 -O1 -g -DCORIO_LIBFUZZER -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I"$src/include" \
  "$src/tests/fuzz/http_parser_fuzz.cpp" "$src/src/net/http_parser.cpp" -o "$out/http_parser_fuzz"
"$out/http_parser_fuzz" -max_total_time="$seconds" -max_len=2048 -timeout=10 \
  -print_final_stats=1 "$out/corpus" "$src/tests/fuzz/http_corpus"
