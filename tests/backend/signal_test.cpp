// signal_set on both backends: signals sent to the process (as kill and
// Ctrl-C send them) arrive as values, none is lost to a cancelled wait, and
// the thread's signal mask is restored afterwards.
#include <signal.h>
#include <unistd.h>

#include "backend/io_support.hpp"

namespace {

using corio_test::io_test;

bool blocked_here(int sig) {
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return sigismember(&now, sig) == 1;
}

class Signal : public io_test {};
CORIO_BOTH_BACKENDS(Signal);

TEST_P(Signal, ASignalSentWhileWaitingIsReturned) {
  run_io([]() -> corio::task<> {
    corio::signal_set set{SIGUSR1, SIGUSR2};
    auto waiting = corio::spawn(set.wait());
    co_await corio::yield_now();  // the read is pending now
    EXPECT_EQ(::kill(::getpid(), SIGUSR2), 0);
    EXPECT_EQ(co_await waiting, SIGUSR2);
  });
}

TEST_P(Signal, SignalsSentBeforeTheWaitAreKept) {
  run_io([]() -> corio::task<> {
    corio::signal_set set{SIGUSR1, SIGUSR2};
    EXPECT_EQ(::kill(::getpid(), SIGUSR2), 0);
    EXPECT_EQ(::kill(::getpid(), SIGUSR1), 0);
    const int first = co_await set.wait();
    const int second = co_await set.wait();
    EXPECT_EQ(first + second, SIGUSR1 + SIGUSR2);
    EXPECT_NE(first, second);
  });
}

TEST_P(Signal, ACancelledWaitConsumesNoSignal) {
  run_io([]() -> corio::task<> {
    corio::signal_set set{SIGUSR1};
    auto h = corio::spawn(set.wait());
    co_await corio::yield_now();
    EXPECT_TRUE(h.cancel());
    EXPECT_THROW(co_await h, corio::cancelled_error);
    EXPECT_EQ(::kill(::getpid(), SIGUSR1), 0);
    EXPECT_EQ(co_await set.wait(), SIGUSR1);
  });
}

TEST_P(Signal, ASignalStillPendingWhenTheSetGoesIsDiscardedNotDelivered) {
  run_io([]() -> corio::task<> {
    {
      corio::signal_set set{SIGUSR2};
      EXPECT_EQ(::kill(::getpid(), SIGUSR2), 0);
      EXPECT_EQ(co_await set.wait(), SIGUSR2);
      // A second one during "the shutdown": nobody waits for it. Delivered
      // after the set, its default action would end this test process.
      EXPECT_EQ(::kill(::getpid(), SIGUSR2), 0);
    }
    sigset_t pending;
    sigpending(&pending);
    EXPECT_EQ(sigismember(&pending, SIGUSR2), 0);
    EXPECT_FALSE(blocked_here(SIGUSR2));
  });
}

TEST_P(Signal, TheMaskIsRestoredAndUncatchableSignalsAreRefused) {
  run_io([]() -> corio::task<> {
    EXPECT_FALSE(blocked_here(SIGUSR1));
    {
      corio::signal_set set{SIGUSR1};
      EXPECT_TRUE(blocked_here(SIGUSR1));
    }
    EXPECT_FALSE(blocked_here(SIGUSR1));
    EXPECT_THROW(corio::signal_set({SIGKILL}), std::system_error);
    EXPECT_FALSE(blocked_here(SIGKILL));
    co_return;
  });
}

TEST_P(Signal, ASignalEndsAServerGracefully) {
  // The shape of every server's main: serve until SIGTERM, then clean up.
  run_io([]() -> corio::task<> {
    corio::signal_set stop{SIGTERM};
    auto l = corio::tcp_listener::bind(corio::socket_address::loopback(0));
    int served = 0;
    auto server = corio::spawn([](corio::tcp_listener& l, int& served) -> corio::task<> {
      for (;;) {
        auto s = co_await l.accept();
        ++served;
      }
    }(l, served));
    auto c = co_await corio::tcp_stream::connect(l.local_address());
    EXPECT_EQ(::kill(::getpid(), SIGTERM), 0);
    EXPECT_EQ(co_await stop.wait(), SIGTERM);
    server.cancel();
    EXPECT_THROW(co_await server, corio::cancelled_error);
    EXPECT_EQ(served, 1);
  });
}

}  // namespace
