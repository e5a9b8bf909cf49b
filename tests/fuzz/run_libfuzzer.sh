#!/usr/bin/env bash
# Builds a fuzz target with clang's libFuzzer (+ ASan/UBSan) and runs it for
# a bounded time; new inputs go to a scratch directory, never into the tree.
#   run_libfuzzer.sh SRC_DIR BUILD_DIR [SECONDS] [TARGET]
# TARGET: http_parser (default; seeded from tests/fuzz/http_corpus), resp
# (seeded from tests/fuzz/resp_corpus), pg_field (tests/fuzz/pg_field_corpus),
# pg_wire (tests/fuzz/pg_wire_corpus) or
# buffered_reader (compiles the layers the reader needs with clang too: a
# coroutine frame from gcc's libcorio.a is not laid out as clang's).
set -euo pipefail
src=$1
out=$2/fuzz
seconds=${3:-20}
target=${4:-http_parser}
mkdir -p "$out/corpus-$target"
flags=(-std=c++20 -O1 -g -DCORIO_LIBFUZZER -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"$src/include")
case "$target" in
  http_parser)
    clang++ "${flags[@]}" "$src/tests/fuzz/http_parser_fuzz.cpp" "$src/src/net/http_parser.cpp" \
      -o "$out/http_parser_fuzz"
    "$out/http_parser_fuzz" -max_total_time="$seconds" -max_len=2048 -timeout=10 \
      -print_final_stats=1 "$out/corpus-$target" "$src/tests/fuzz/http_corpus"
    ;;
  resp)
    clang++ "${flags[@]}" "$src/tests/fuzz/resp_fuzz.cpp" "$src/src/redis/resp.cpp" \
      -o "$out/resp_fuzz"
    "$out/resp_fuzz" -max_total_time="$seconds" -max_len=1024 -timeout=10 \
      -print_final_stats=1 "$out/corpus-$target" "$src/tests/fuzz/resp_corpus"
    ;;
  pg_field)
    clang++ "${flags[@]}" -I"$src/src" "$src/tests/fuzz/pg_field_fuzz.cpp" \
      "$src/src/pg/result.cpp" -o "$out/pg_field_fuzz"
    "$out/pg_field_fuzz" -max_total_time="$seconds" -max_len=512 -timeout=10 \
      -print_final_stats=1 "$out/corpus-$target" "$src/tests/fuzz/pg_field_corpus"
    ;;
  pg_wire)
    clang++ "${flags[@]}" -I"$src/src" "$src/tests/fuzz/pg_wire_fuzz.cpp" "$src/src/pg/wire.cpp" \
      "$src/src/pg/result.cpp" -o "$out/pg_wire_fuzz"
    "$out/pg_wire_fuzz" -max_total_time="$seconds" -max_len=1024 -timeout=10 \
      -print_final_stats=1 "$out/corpus-$target" "$src/tests/fuzz/pg_wire_corpus"
    ;;
  buffered_reader)
    # clang 14's -fsanitize=function cannot compile coroutines ("Cannot
    # represent a difference across sections"); the rest of UBSan can.
    sources=("$src"/src/errors.cpp "$src"/src/detail/*.cpp "$src"/src/loop/*.cpp
             "$src"/src/loop/detail/*.cpp "$src"/src/io/*.cpp "$src"/src/io/detail/*.cpp
             "$src"/src/task/*.cpp "$src"/src/net/detail/input_buffer.cpp)
    clang++ "${flags[@]}" -fno-sanitize=function -I"$src/src" \
      "$src/tests/fuzz/buffered_reader_fuzz.cpp" "${sources[@]}" -luring -o "$out/buffered_reader_fuzz"
    "$out/buffered_reader_fuzz" -max_total_time="$seconds" -max_len=1024 -timeout=10 \
      -print_final_stats=1 "$out/corpus-$target"
    ;;
  *) echo "run_libfuzzer.sh: unknown target $target" >&2; exit 2 ;;
esac
