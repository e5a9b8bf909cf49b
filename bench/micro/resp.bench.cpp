// RESP readers on RESP2 replies: corio's (which also reads RESP3) against
// hiredis 0.14's redisReader (Debian 12's libhiredis-dev, RESP2 only), on
// the two shapes the Redis workloads read: 100 replies of a 64-byte value
// in one buffer (GETs pipelined), and one array of 100 of them (an MGET).
// Each iteration feeds the buffer and takes every reply; items = replies
// (values, for the array).
#include <hiredis/hiredis.h>

#include <string>

#include "micro.hpp"

namespace {

constexpr int k_values = 100;

std::string values_as_replies() {
  std::string s;
  for (int i = 0; i < k_values; ++i)
    s += "$64\r\n" + std::string(64, 'v') + "\r\n";
  return s;
}

std::string values_as_array() {
  return "*100\r\n" + values_as_replies();
}

void corio_reader(benchmark::State& state, const std::string& input, int replies) {
  corio::redis::resp_reader r;
  std::size_t sum = 0;
  for (auto _ : state) {
    if (r.feed(input) != input.size()) state.SkipWithError("input not taken");
    for (int i = 0; i < replies; ++i) {
      auto x = r.next();
      sum += x->is_aggregate() ? x->size() : x->str().size();
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * k_values);
}

void hiredis_reader(benchmark::State& state, const std::string& input, int replies) {
  redisReader* r = redisReaderCreate();
  std::size_t sum = 0;
  for (auto _ : state) {
    if (redisReaderFeed(r, input.data(), input.size()) != REDIS_OK) {
      state.SkipWithError("feed failed");
    }
    for (int i = 0; i < replies; ++i) {
      void* reply = nullptr;
      if (redisReaderGetReply(r, &reply) != REDIS_OK || reply == nullptr) {
        state.SkipWithError("no reply");
        break;
      }
      auto* x = static_cast<redisReply*>(reply);
      sum += x->type == REDIS_REPLY_ARRAY ? x->elements : x->len;
      freeReplyObject(reply);
    }
  }
  redisReaderFree(r);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * k_values);
}

void resp_gets_corio(benchmark::State& s) {
  corio_reader(s, values_as_replies(), k_values);
}
void resp_gets_hiredis(benchmark::State& s) {
  hiredis_reader(s, values_as_replies(), k_values);
}
void resp_mget_corio(benchmark::State& s) {
  corio_reader(s, values_as_array(), 1);
}
void resp_mget_hiredis(benchmark::State& s) {
  hiredis_reader(s, values_as_array(), 1);
}
BENCHMARK(resp_gets_corio);
BENCHMARK(resp_gets_hiredis);
BENCHMARK(resp_mget_corio);
BENCHMARK(resp_mget_hiredis);

}  // namespace
