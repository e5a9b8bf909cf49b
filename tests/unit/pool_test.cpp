// pool<T>: leases, limits, creation failures, checks, eviction, leaks,
// close and resize, on the virtual clock with a fake connection whose
// faults the tests choose.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "corio/corio.hpp"
#include "unit/test_support.hpp"

using namespace std::chrono_literals;
using corio_test::run_virtual;

namespace {

// What the fake database did, shared by a test and its hooks.
struct fake_db {
  int live = 0;     // connections that exist now (constructed, not destroyed)
  int created = 0;  // successful creations
  int closed = 0;   // close hook calls
  int validated = 0;
  int resets = 0;
  int fail_next_creations = 0;  // the next N creations throw
  bool validate_says = true;
  bool reset_throws = false;
  std::chrono::nanoseconds connect_time = 1ms;
};

class fake_conn {
 public:
  fake_conn(fake_db* db, int id) : m_db(db), m_id(id) { ++m_db->live; }
  fake_conn(fake_conn&& o) noexcept : m_db(std::exchange(o.m_db, nullptr)), m_id(o.m_id) {}
  fake_conn& operator=(fake_conn&&) = delete;
  fake_conn(const fake_conn&) = delete;
  fake_conn& operator=(const fake_conn&) = delete;
  ~fake_conn() {
    if (m_db != nullptr) --m_db->live;
  }
  [[nodiscard]] int id() const { return m_id; }
  bool broken = false;
  int uses = 0;

 private:
  fake_db* m_db;
  int m_id;
};

corio::task<fake_conn> connect(fake_db* db) {
  co_await corio::sleep(db->connect_time);
  if (db->fail_next_creations > 0) {
    --db->fail_next_creations;
    throw std::runtime_error("connection refused");
  }
  ++db->created;
  co_return fake_conn(db, db->created);
}

corio::task<bool> check(fake_db* db, fake_conn&) {
  ++db->validated;
  co_await corio::sleep(1ms);
  co_return db->validate_says;
}

corio::task<> reset(fake_db* db, fake_conn&) {
  ++db->resets;
  co_await corio::sleep(1ms);
  if (db->reset_throws) throw std::runtime_error("reset failed");
}

corio::task<> close_conn(fake_db* db, fake_conn&) {
  co_await corio::sleep(1ms);
  ++db->closed;
}

corio::pool_hooks<fake_conn> hooks(fake_db& db) {
  corio::pool_hooks<fake_conn> h;
  h.create = [&db] { return connect(&db); };
  h.close = [&db](fake_conn& c) { return close_conn(&db, c); };
  return h;
}

corio::pool_hooks<fake_conn> validating_hooks(fake_db& db) {
  corio::pool_hooks<fake_conn> h = hooks(db);
  h.validate = [&db](fake_conn& c) { return check(&db, c); };
  return h;
}

// Closes the pool; then no connection of the fake database may be left.
corio::task<> close_leaving_nothing(corio::pool<fake_conn>& p, const fake_db& db) {
  co_await p.close();
  EXPECT_EQ(db.live, 0) << "a connection outlived close()";
}

corio::pool_options options(std::size_t max_size) {
  corio::pool_options o;
  o.name = "db";
  o.max_size = max_size;
  return o;
}

// Borrows a connection for `hold`, counting its use.
corio::task<int> borrow(corio::pool<fake_conn>& p, std::chrono::nanoseconds hold) {
  auto lease = co_await p.acquire();
  ++lease->uses;
  co_await corio::sleep(hold);
  co_return lease->id();
}

TEST(Pool, ReusesAConnectionAndCreatesOnDemand) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(4));
    EXPECT_EQ(co_await borrow(p, 1ms), 1);
    EXPECT_EQ(co_await borrow(p, 1ms), 1);  // the same one, idle meanwhile
    EXPECT_EQ(db.created, 1);
    const corio::pool_stats s = p.stats();
    EXPECT_EQ(s.size, 1U);
    EXPECT_EQ(s.idle, 1U);
    EXPECT_EQ(s.in_use, 0U);
    EXPECT_EQ(s.acquires, 2U);
    EXPECT_EQ(s.creations, 1U);
    co_await p.close();
    EXPECT_EQ(db.closed, 1);
    EXPECT_EQ(db.live, 0);
  });
}

TEST(Pool, NeverMoreThanMaxSizeAndWaitersAreServedInOrder) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(3));
    // The sanitizer runs shuffle the order in which same-tick tasks start, so
    // the order to keep is the order in which they asked.
    std::vector<int> asked;
    std::vector<int> served;
    auto user = [](corio::pool<fake_conn>& pl, std::vector<int>& in, std::vector<int>& out,
                   int i) -> corio::task<> {
      in.push_back(i);
      auto lease = co_await pl.acquire();
      out.push_back(i);
      co_await corio::sleep(10ms);
    };
    std::vector<corio::task<>> users;
    for (int i = 0; i < 12; ++i)
      users.push_back(user(p, asked, served, i));
    co_await corio::gather(std::move(users));
    EXPECT_EQ(db.created, 3);
    EXPECT_EQ(p.stats().size, 3U);
    EXPECT_EQ(served, asked) << "waiters must be served FIFO";
    EXPECT_GE(p.stats().waits, 9U);
    EXPECT_EQ(p.wait_times().count(), p.stats().waits);
    co_await close_leaving_nothing(p, db);
  });
}

corio::task<> fail_while_holding(corio::pool<fake_conn>& p) {
  auto lease = co_await p.acquire();
  co_await corio::sleep(1ms);
  throw std::runtime_error("query failed");
}

TEST(Pool, ABorrowerThatFailedHasItsConnectionValidatedFirst) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(validating_hooks(db), options(2));
    EXPECT_THROW(co_await fail_while_holding(p), std::runtime_error);
    EXPECT_EQ(db.validated, 0);
    EXPECT_EQ(co_await borrow(p, 1ms), 1);  // validated, then lent
    EXPECT_EQ(db.validated, 1);
    EXPECT_EQ(co_await borrow(p, 1ms), 1);  // used just now: no check
    EXPECT_EQ(db.validated, 1);

    db.validate_says = false;  // the next failure's check says no: replaced
    EXPECT_THROW(co_await fail_while_holding(p), std::runtime_error);
    EXPECT_EQ(co_await borrow(p, 1ms), 2);
    EXPECT_EQ(p.stats().validation_failures, 1U);
    EXPECT_EQ(p.stats().evictions.validation, 1U);
    co_await close_leaving_nothing(p, db);
  });
}

TEST(Pool, ValidatesOnlyAfterIdlingLongerThanTheThreshold) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    auto o = options(2);
    o.validate_after_idle = 1s;
    corio::pool<fake_conn> p(validating_hooks(db), o);
    co_await borrow(p, 1ms);
    co_await corio::sleep(500ms);
    co_await borrow(p, 1ms);
    EXPECT_EQ(db.validated, 0);
    co_await corio::sleep(2s);
    co_await borrow(p, 1ms);
    EXPECT_EQ(db.validated, 1);
    co_await p.close();
  });
}

TEST(Pool, DiscardAndHasBrokenCloseTheConnection) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    auto h = hooks(db);
    h.has_broken = [](const fake_conn& c) { return c.broken; };
    corio::pool<fake_conn> p(std::move(h), options(2));
    {
      auto lease = co_await p.acquire();
      lease.discard();
      EXPECT_FALSE(lease);
    }
    {
      auto lease = co_await p.acquire();
      EXPECT_EQ(lease->id(), 2);
      lease->broken = true;
    }
    EXPECT_EQ(co_await borrow(p, 1ms), 3);
    EXPECT_EQ(p.stats().evictions.broken, 2U);
    co_await corio::sleep(10ms);  // the close jobs run
    EXPECT_EQ(db.closed, 2);
    co_await close_leaving_nothing(p, db);
  });
}

corio::task<int> throw_broken(fake_conn&) {
  co_await corio::sleep(1ms);
  throw corio::connection_broken("protocol error");
}
corio::task<int> use_conn(fake_conn& c) {
  co_await corio::sleep(1ms);
  co_return c.id();
}

TEST(Pool, WithDiscardsOnConnectionBroken) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(2));
    EXPECT_EQ(co_await corio::with(p, use_conn), 1);
    EXPECT_THROW(co_await corio::with(p, throw_broken), corio::connection_broken);
    EXPECT_EQ(co_await corio::with(p, use_conn), 2);
    EXPECT_EQ(p.stats().evictions.broken, 1U);
    co_await close_leaving_nothing(p, db);
  });
}

TEST(Pool, AcquireTimesOutWithANamedError) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    auto o = options(1);
    o.acquire_timeout = 2s;
    corio::pool<fake_conn> p(hooks(db), o);
    auto holder = corio::spawn(borrow(p, 10s));
    co_await corio::sleep(10ms);
    const auto start = corio::now();
    std::string message;
    try {
      co_await p.acquire();
    } catch (const corio::timeout_error& e) {
      message = e.what();
    }
    EXPECT_GE(corio::now() - start, 2s);
    EXPECT_LT(corio::now() - start, 2s + 10ms);
    EXPECT_NE(message.find("'db'"), std::string::npos) << message;
    EXPECT_NE(message.find("1 waited"), std::string::npos) << message;
    EXPECT_EQ(p.stats().timeouts, 1U);
    co_await holder;
    co_await p.close();
  });
}

TEST(Pool, AFailedCreationReachesTheWaiterAndIsRetriedWithBackOff) {
  fake_db db;
  db.fail_next_creations = 1;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(1));
    const auto start = corio::now();
    auto a = corio::spawn(borrow(p, 1ms));
    auto b = corio::spawn(borrow(p, 1ms));
    // The failure goes to the oldest waiter; the other is served by a
    // retry after a back-off of 10 ms.
    EXPECT_THROW(co_await a, std::runtime_error);
    EXPECT_EQ(co_await b, 1);
    EXPECT_GE(corio::now() - start, 1ms + 10ms + 1ms);
    EXPECT_EQ(p.stats().creation_failures, 1U);
    EXPECT_EQ(p.stats().creations, 1U);
    co_await close_leaving_nothing(p, db);
  });
}

TEST(Pool, WithNobodyWaitingAFailingPoolStopsTrying) {
  fake_db db;
  db.fail_next_creations = 1000;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(2));
    EXPECT_THROW(co_await p.acquire(), std::runtime_error);
    co_await corio::sleep(5s);
    EXPECT_EQ(p.stats().creation_failures, 1U);
    EXPECT_EQ(p.stats().creating, 0U);
    co_await p.close();
  });
}

TEST(Pool, TimeoutNamesTheLastCreationError) {
  fake_db db;
  db.fail_next_creations = 1000;
  db.connect_time = 2s;
  run_virtual([&]() -> corio::task<> {
    auto o = options(1);
    o.acquire_timeout = 3s;
    corio::pool<fake_conn> p(hooks(db), o);
    // The first waiter gets the failure at 2 s; the second waits on the
    // retry, which fails at 4 s, after its 3 s timeout.
    auto first = corio::spawn(borrow(p, 1ms));
    co_await corio::yield_now();
    std::string message;
    try {
      co_await p.acquire();
    } catch (const corio::timeout_error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("connection refused"), std::string::npos) << message;
    EXPECT_THROW(co_await first, std::runtime_error);
    co_await close_leaving_nothing(p, db);
  });
}

TEST(Pool, ACancelledWaiterDuringASlowCreationLeaksNothing) {
  fake_db db;
  db.connect_time = 100ms;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(2));
    auto waiter = corio::spawn(borrow(p, 1ms));
    co_await corio::sleep(50ms);
    EXPECT_EQ(p.stats().creating, 1U);
    waiter.cancel();
    co_await waiter.wait();
    EXPECT_TRUE(waiter.cancelled());
    co_await corio::sleep(100ms);  // the creation finishes: the connection goes idle
    corio::pool_stats s = p.stats();
    EXPECT_EQ(s.size, 1U);
    EXPECT_EQ(s.idle, 1U);
    EXPECT_EQ(s.waiters, 0U);
    auto lease = p.try_acquire();
    EXPECT_TRUE(lease);
    if (!(lease)) co_return;
    EXPECT_EQ(lease->id(), 1);
    lease.release();
    EXPECT_EQ(db.created, 1);
    co_await close_leaving_nothing(p, db);
  });
}

TEST(Pool, AWaiterCancelledAfterBeingHandedAConnectionPassesItOn) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(1));
    auto first = co_await p.acquire();
    auto victim = corio::spawn(borrow(p, 1ms));
    auto bystander = corio::spawn(borrow(p, 1ms));
    co_await corio::yield_now();
    co_await corio::yield_now();
    EXPECT_EQ(p.stats().waiters, 2U);
    first.release();  // handed to the victim, which has not run yet
    EXPECT_EQ(p.stats().in_use, 1U);
    victim.cancel();
    co_await victim.wait();
    EXPECT_TRUE(victim.cancelled());
    EXPECT_EQ(co_await bystander, 1);
    EXPECT_EQ(p.stats().in_use, 0U);
    EXPECT_EQ(p.stats().acquires, 2U);  // the victim's does not count
    co_await close_leaving_nothing(p, db);
  });
}

TEST(Pool, MaxLifetimeReplacesOldConnectionsOnReturn) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    auto o = options(2);
    o.max_lifetime = 1min;
    corio::pool<fake_conn> p(hooks(db), o);
    {
      auto lease = co_await p.acquire();
      co_await corio::sleep(2min);
    }
    EXPECT_EQ(p.stats().evictions.lifetime, 1U);
    EXPECT_EQ(co_await borrow(p, 1ms), 2);
    co_await close_leaving_nothing(p, db);
  });
}

TEST(Pool, IdleConnectionsAreClosedButMinIdleIsKept) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    auto o = options(4);
    o.min_idle = 1;
    o.idle_timeout = 1min;
    o.housekeeping_period = 10s;
    corio::pool<fake_conn> p(hooks(db), o);
    co_await corio::sleep(10ms);
    EXPECT_EQ(p.stats().idle, 1U) << "min_idle is filled in the background";
    std::vector<corio::task<int>> users;
    for (int i = 0; i < 3; ++i)
      users.push_back(borrow(p, 10ms));
    co_await corio::gather(std::move(users));
    // Three lent and one idle beside them, as min_idle asks.
    EXPECT_EQ(p.stats().size, 4U);
    co_await corio::sleep(2min);
    EXPECT_EQ(p.stats().size, 1U);
    EXPECT_EQ(p.stats().idle, 1U);
    EXPECT_EQ(p.stats().evictions.idle, 3U);
    co_await close_leaving_nothing(p, db);
  });
}

TEST(Pool, ResetRunsOnReturnAndAFailedResetClosesTheConnection) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    auto h = hooks(db);
    h.reset = [&db](fake_conn& c) { return reset(&db, c); };
    corio::pool<fake_conn> p(std::move(h), options(1));
    EXPECT_EQ(co_await borrow(p, 1ms), 1);
    EXPECT_EQ(co_await borrow(p, 1ms), 1);  // waits for the first reset
    co_await corio::sleep(10ms);            // the second reset runs
    EXPECT_EQ(db.resets, 2);
    db.reset_throws = true;
    EXPECT_EQ(co_await borrow(p, 1ms), 1);
    co_await corio::sleep(10ms);  // its reset fails: closed
    db.reset_throws = false;
    EXPECT_EQ(p.stats().evictions.broken, 1U);
    EXPECT_EQ(co_await borrow(p, 1ms), 2);
    co_await close_leaving_nothing(p, db);
  });
}

TEST(Pool, LifoLendsTheMostRecentlyReturnedFifoTheLeast) {
  for (const auto order : {corio::pool_options::order::lifo, corio::pool_options::order::fifo}) {
    fake_db db;
    run_virtual([&]() -> corio::task<> {
      auto o = options(2);
      o.idle_order = order;
      corio::pool<fake_conn> p(hooks(db), o);
      auto a = co_await p.acquire();
      auto b = co_await p.acquire();
      const int a_id = a->id();
      const int b_id = b->id();
      a.release();
      b.release();  // b returned last
      auto next = p.try_acquire();
      EXPECT_TRUE(next);
      if (!(next)) co_return;
      EXPECT_EQ(next->id(), order == corio::pool_options::order::lifo ? b_id : a_id);
      next.release();
      co_await p.close();
    });
  }
}

TEST(Pool, TryAcquireNeverWaitsNorCreates) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(1));
    EXPECT_FALSE(p.try_acquire());
    EXPECT_EQ(p.stats().creating, 0U);
    co_await borrow(p, 1ms);
    auto lease = p.try_acquire();
    EXPECT_TRUE(lease);
    EXPECT_FALSE(p.try_acquire());
    lease.release();
    co_await p.close();
  });
}

TEST(Pool, CloseFailsWaitersWaitsForLeasesAndClosesEverything) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(2));
    co_await borrow(p, 1ms);
    auto holder = corio::spawn(borrow(p, 1s));
    auto idle_user = corio::spawn(borrow(p, 1s));  // the first connection, then idle
    auto waiter = corio::spawn(borrow(p, 1ms));
    co_await corio::sleep(10ms);
    EXPECT_EQ(p.stats().waiters, 1U);
    const auto start = corio::now();
    co_await p.close();
    EXPECT_GE(corio::now() - start, 900ms) << "close waits for the leases out";
    EXPECT_THROW(co_await waiter, corio::pool_closed);
    co_await holder;
    co_await idle_user;
    EXPECT_EQ(db.created, 2);
    EXPECT_EQ(db.closed, 2);
    EXPECT_EQ(db.live, 0);
    EXPECT_EQ(p.stats().evictions.closed, 2U);
    EXPECT_THROW(co_await p.acquire(), corio::pool_closed);
  });
}

TEST(Pool, CloseGivesUpOnLeasesAfterTheGrace) {
  fake_db db;
  std::vector<std::string> reports;
  corio::loop_options lo;
  lo.report = [&](const std::string& r) { reports.push_back(r); };
  run_virtual(
      [&]() -> corio::task<> {
        corio::pool<fake_conn> p(hooks(db), options(2));
        auto lease = co_await p.acquire();
        co_await p.close(1s);
        EXPECT_EQ(reports.size(), 1U);
        lease.release();  // closed as it comes back
        co_await corio::sleep(10ms);
        EXPECT_EQ(db.closed, 1);
        EXPECT_EQ(db.live, 0);
      },
      lo);
  ASSERT_FALSE(reports.empty());
  EXPECT_NE(reports[0].find("still out"), std::string::npos) << reports[0];
}

TEST(Pool, ResizeShrinksAndGrows) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(3));
    std::vector<corio::task<int>> users;
    for (int i = 0; i < 3; ++i)
      users.push_back(borrow(p, 5ms));
    co_await corio::gather(std::move(users));
    EXPECT_EQ(p.stats().size, 3U);
    p.resize(1);
    EXPECT_EQ(p.stats().size, 1U);
    EXPECT_EQ(p.stats().evictions.resized, 2U);
    p.resize(2);
    users.clear();
    for (int i = 0; i < 2; ++i)
      users.push_back(borrow(p, 5ms));
    co_await corio::gather(std::move(users));
    EXPECT_EQ(p.stats().size, 2U);
    co_await close_leaving_nothing(p, db);
  });
}

corio::task<> hold_too_long(corio::pool<fake_conn>& p) {
  auto lease = co_await p.acquire();
  co_await corio::sleep(5s);
}

TEST(Pool, ALeaseHeldTooLongIsReportedOnceWithItsHolder) {
  fake_db db;
  std::vector<std::string> reports;
  corio::loop_options lo;
  lo.report = [&](const std::string& r) { reports.push_back(r); };
  run_virtual(
      [&]() -> corio::task<> {
        auto o = options(2);
        o.leak_threshold = 1s;
        corio::pool<fake_conn> p(hooks(db), o);
        co_await corio::spawn(hold_too_long(p), "slow handler");
        EXPECT_EQ(p.stats().leaks_reported, 1U);
        co_await p.close();
      },
      lo);
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_NE(reports[0].find("'db'"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("slow handler"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("hold_too_long"), std::string::npos) << reports[0];
}

TEST(Pool, ADestroyedPoolLeavesLeasesTheirConnections) {
  fake_db db;
  std::vector<std::string> reports;
  corio::loop_options lo;
  lo.report = [&](const std::string& r) { reports.push_back(r); };
  run_virtual(
      [&]() -> corio::task<> {
        corio::pool_lease<fake_conn> kept;
        {
          corio::pool<fake_conn> p(hooks(db), options(2));
          kept = co_await p.acquire();
          auto waiter = corio::spawn(borrow(p, 1ms));  // creating its connection
          co_await corio::yield_now();
        }
        EXPECT_EQ(kept->id(), 1);
        kept.release();
        co_await corio_test::settle();
        EXPECT_EQ(db.live, 0);
      },
      lo);
  ASSERT_FALSE(reports.empty());
  EXPECT_NE(reports[0].find("lease(s) still out"), std::string::npos) << reports[0];
}

TEST(Pool, MetricsExportConnectionPools) {
  fake_db db;
  run_virtual([&]() -> corio::task<> {
    corio::pool<fake_conn> p(hooks(db), options(3));
    co_await borrow(p, 1ms);
    corio::metrics_registry m;
    m.add_pool(p, "db");
    const std::string text = m.prometheus();
    EXPECT_NE(text.find("corio_connection_pool_size{pool=\"db\"} 1"), std::string::npos) << text;
    EXPECT_NE(text.find("corio_connection_pool_acquires_total{pool=\"db\"} 1"), std::string::npos);
    EXPECT_NE(text.find("corio_connection_pool_evictions_total{pool=\"db\",cause=\"broken\"} 0"),
              std::string::npos);
    const std::string json = m.json();
    EXPECT_NE(json.find("\"connection_pools\":{\"db\":{"), std::string::npos) << json;
    co_await p.close();
  });
}

}  // namespace
