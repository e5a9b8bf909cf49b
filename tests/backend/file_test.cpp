// corio::file on both backends (io_uring operations, or the blocking pool
// on epoll): round trips, offsets, end of file, append, missing files, a
// full device, read_file's limit, and cancellation.
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "backend/io_support.hpp"

using corio_test::io_test;

namespace {

class File : public io_test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/corio-file-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    m_dir = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(m_dir); }
  std::string path(const char* name) const { return m_dir + "/" + name; }
  std::string m_dir;
};
CORIO_BOTH_BACKENDS(File);

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('A' + (i * 31 + i / 997) % 26);
  return s;
}

int errno_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& s) {
    return s.code().value();
  } catch (...) {
  }
  return 0;
}

TEST_P(File, AMegabyteRoundTripsAndReadsAtOffsets) {
  run_io([this]() -> corio::task<> {
    const std::string data = pattern(std::size_t{1} << 20);
    co_await corio::write_file(path("a.bin"), data);
    EXPECT_TRUE(co_await corio::read_file(path("a.bin")) == data);
    auto f = co_await corio::file::open(path("a.bin"));
    EXPECT_EQ(f.size(), data.size());
    char buf[100];
    EXPECT_EQ(co_await f.read_at(buf, sizeof buf, 5000), sizeof buf);
    EXPECT_EQ(std::string(buf, sizeof buf), data.substr(5000, 100));
    // Near the end: a short read, then 0.
    EXPECT_EQ(co_await f.read_at(buf, sizeof buf, data.size() - 10), 10U);
    EXPECT_EQ(co_await f.read_at(buf, sizeof buf, data.size()), 0U);
    // Sequential reads advance the position.
    std::string seq;
    for (std::size_t n; (n = co_await f.read(buf, sizeof buf)) != 0;)
      seq.append(buf, n);
    EXPECT_TRUE(seq == data);
  });
}

TEST_P(File, AppendWritesGoToTheEnd) {
  run_io([this]() -> corio::task<> {
    co_await corio::write_file(path("log"), "one\n");
    {
      auto f = co_await corio::file::open(path("log"), corio::open_mode::append);
      co_await f.write_all("two\n", 4);
      co_await f.write_at("three\n", 6, 0);  // the offset is ignored in append mode
      co_await f.sync();
    }
    EXPECT_EQ(co_await corio::read_file(path("log")), "one\ntwo\nthree\n");
    auto rw = co_await corio::file::open(path("log"), corio::open_mode::read_write);
    co_await rw.write_at("ONE", 3, 0);
    EXPECT_EQ(co_await corio::read_file(path("log")), "ONE\ntwo\nthree\n");
  });
}

TEST_P(File, MissingFilesAndAFullDiskAreSystemErrors) {
  run_io([this]() -> corio::task<> {
    std::exception_ptr missing;
    try {
      (void)co_await corio::file::open(path("nope"));
    } catch (...) {
      missing = std::current_exception();
    }
    EXPECT_EQ(errno_of(missing), ENOENT);
    // /dev/full: every write fails with ENOSPC, as on a full disk.
    auto full = co_await corio::file::open("/dev/full", corio::open_mode::read_write);
    std::exception_ptr nospace;
    try {
      co_await full.write_all("data", 4);
    } catch (...) {
      nospace = std::current_exception();
    }
    EXPECT_EQ(errno_of(nospace), ENOSPC);
  });
}

TEST_P(File, ReadFileRefusesAFileOverItsLimit) {
  run_io([this]() -> corio::task<> {
    co_await corio::write_file(path("big"), pattern(10'000));
    EXPECT_THROW((void)co_await corio::read_file(path("big"), 9'999), corio::limit_overrun_error);
    EXPECT_EQ((co_await corio::read_file(path("big"), 10'000)).size(), 10'000U);
  });
}

TEST_P(File, CancelledReadsLeaveTheFileUsable) {
  run_io([this]() -> corio::task<> {
    const std::string data = pattern(1 << 16);
    co_await corio::write_file(path("c"), data);
    auto f = co_await corio::file::open(path("c"));
    std::string buf(data.size(), '\0');
    auto pending = corio::spawn(f.read_at(buf.data(), buf.size(), 0));
    pending.cancel();
    try {
      (void)co_await pending;
    } catch (const corio::cancelled_error&) {
    }
    std::string again(data.size(), '\0');
    EXPECT_EQ(co_await f.read_at(again.data(), again.size(), 0), data.size());
    EXPECT_TRUE(again == data);
  });
}

}  // namespace
