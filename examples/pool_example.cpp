// A connection pool and a batcher on a stand-in database (the README's
// pool example): 100 tasks share 5 connections, and their lookups of the
// same tick go out as one batch call. Exits 1 when a figure is off.
#include <corio/corio.hpp>

#include <cstdio>
#include <span>
#include <string>
#include <vector>

using namespace std::chrono_literals;

struct db_conn {  // stands in for a real client connection
  int id;
  corio::task<int> query(int x) const {
    co_await corio::sleep(2ms);
    co_return x * 2;
  }
};

int opened = 0;
corio::task<db_conn> open_connection() {
  co_await corio::sleep(50ms);
  co_return db_conn{++opened};
}

corio::task<std::vector<std::string>> names_for(std::span<const int> ids) {
  co_await corio::sleep(1ms);  // one query for the whole tick
  std::vector<std::string> out;
  for (int id : ids)
    out.push_back("user" + std::to_string(id));
  co_return out;
}

corio::task<int> handle(corio::pool<db_conn>& db, corio::batcher<int, std::string>& users, int i) {
  auto conn = co_await db.acquire();  // returned when `conn` goes
  int doubled = co_await conn->query(i);
  std::string name = co_await users.load(i % 10);
  co_return doubled + static_cast<int>(name.size());
}

corio::task<int> amain() {
  corio::pool<db_conn> db({.create = open_connection}, {.name = "db", .max_size = 5});
  corio::batcher<int, std::string> users{
      corio::batcher<int, std::string>::batch_function(names_for)};
  std::vector<corio::task<int>> requests;
  for (int i = 0; i < 100; ++i)
    requests.push_back(handle(db, users, i));
  int total = 0;
  for (int r : co_await corio::gather(std::move(requests)))
    total += r;
  const corio::pool_stats s = db.stats();
  std::printf("total %d; %zu connections opened, %llu acquires, %llu waited; %llu batch calls\n",
              total, s.size, static_cast<unsigned long long>(s.acquires),
              static_cast<unsigned long long>(s.waits),
              static_cast<unsigned long long>(users.stats().batches));
  co_await db.close();
  co_return (total == 9900 + 500 && s.creations == 5 && s.acquires == 100) ? 0 : 1;
}

int main() {
  return corio::run(amain());
}
