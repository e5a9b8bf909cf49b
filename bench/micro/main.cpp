// The shared main of corio-micro: `corio-micro --benchmark_filter=queue`,
// `--benchmark_repetitions=5 --benchmark_report_aggregates_only=true` for
// medians.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
