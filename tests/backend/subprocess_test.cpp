// subprocess on both backends: pipes both ways (a large stream each way at
// once without deadlock), exit codes and signals, spawn failures from spawn
// itself with no descriptor or process left, a cancelled wait, the child's
// descriptors, mask, environment and directory, and run_process.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "backend/io_support.hpp"

namespace {

using corio_test::io_test;

class Subprocess : public io_test {};
CORIO_BOTH_BACKENDS(Subprocess);

corio::process_options sh(std::string script) {
  corio::process_options o;
  o.argv = {"/bin/sh", "-c", std::move(script)};
  return o;
}

corio::task<std::string> read_all(corio::pipe_stream& p) {
  std::string out;
  std::string chunk(std::size_t{64} * 1024, '\0');
  while (const std::size_t n = co_await p.read_some(chunk.data(), chunk.size()))
    out.append(chunk.data(), n);
  co_return out;
}

/// Children of this process that are not reaped yet, zombies included.
int count_children() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/children");
      for (std::string pid; in >> pid;)
        ++n;
    }
    ::closedir(d);
  }
  return n;
}

/// The SigBlk line of /proc/<pid>/status: the signals it blocks, in hex.
std::string blocked_signals_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("SigBlk:")) return line.substr(line.find_first_not_of(" \t", 7));
  }
  return "?";
}

int spawn_error(const corio::process_options& o) {
  try {
    corio::subprocess p = corio::subprocess::spawn(o);
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

TEST_P(Subprocess, CatEchoesItsInputToItsEnd) {
  run_io([]() -> corio::task<> {
    corio::process_options o;
    o.argv = {"/bin/cat"};
    o.stdin_mode = corio::stdio::pipe;
    o.stdout_mode = corio::stdio::pipe;
    auto p = corio::subprocess::spawn(o);
    EXPECT_GT(p.pid(), 0);
    EXPECT_FALSE(p.stderr_pipe().is_open());
    const std::string msg = "hello, child\n";
    co_await p.stdin_pipe().write_all(msg.data(), msg.size());
    p.stdin_pipe().close();
    EXPECT_EQ(co_await read_all(p.stdout_pipe()), msg);
    EXPECT_EQ(co_await p.wait(), 0);
    EXPECT_EQ(p.returncode(), 0);
    EXPECT_EQ(co_await p.wait(), 0);  // known now: at once
  });
}

TEST_P(Subprocess, ExitCodesComeBack) {
  run_io([]() -> corio::task<> {
    for (const int code : {0, 3, 255}) {
      auto p = corio::subprocess::spawn(sh("exit " + std::to_string(code)));
      EXPECT_FALSE(p.returncode());
      EXPECT_EQ(co_await p.wait(), code);
      EXPECT_EQ(p.poll(), code);
    }
  });
}

TEST_P(Subprocess, AKilledChildReportsMinusTheSignal) {
  run_io([]() -> corio::task<> {
    auto p = corio::subprocess::spawn({.argv = {"sleep", "100"}});
    EXPECT_FALSE(p.poll());
    p.kill(SIGTERM);
    EXPECT_EQ(co_await p.wait(), -SIGTERM);
    p.kill();  // reaped: nothing to signal, no error
    EXPECT_EQ(p.returncode(), -SIGTERM);
  });
}

TEST_P(Subprocess, SignalsBlockedHereAreNotBlockedInTheChild) {
  run_io([]() -> corio::task<> {
    corio::signal_set blocked{SIGINT, SIGTERM};
    auto p = corio::subprocess::spawn({.argv = {"sleep", "100"}});
    // spawn returns once the exec is done: this is sleep's own mask.
    const std::string mask = blocked_signals_of(p.pid());
    EXPECT_EQ(mask, "0000000000000000");
    // SIGKILL if the mask is wrong: the test fails now, not in 100 s.
    p.kill(mask == "0000000000000000" ? SIGINT : SIGKILL);
    EXPECT_EQ(co_await p.wait(), -SIGINT);
  });
}

TEST_P(Subprocess, AProgramThatCannotStartThrowsFromSpawnAndLeavesNothing) {
  run_io([]() -> corio::task<> {
    const int fds = corio_test::count_fds();
    const int children = count_children();
    corio::process_options o;
    o.stdin_mode = o.stdout_mode = o.stderr_mode = corio::stdio::pipe;
    o.argv = {"/nonexistent/corio-no-such-program"};
    EXPECT_EQ(spawn_error(o), ENOENT);
    o.argv = {"corio-no-such-program"};  // searched in PATH
    EXPECT_EQ(spawn_error(o), ENOENT);
    o.argv = {"/etc/passwd"};  // not executable
    EXPECT_EQ(spawn_error(o), EACCES);
    o.argv = {"/bin/true"};
    o.cwd = "/nonexistent/corio-dir";
    EXPECT_EQ(spawn_error(o), ENOENT);
    EXPECT_THROW((void)corio::subprocess::spawn({}), std::invalid_argument);
    EXPECT_EQ(corio_test::count_fds(), fds);
    EXPECT_EQ(count_children(), children);
    co_return;
  });
}

TEST_P(Subprocess, StderrComesSeparatelyOrMergedIntoStdout) {
  run_io([]() -> corio::task<> {
    auto o = sh("echo out; echo err >&2");
    o.stdout_mode = o.stderr_mode = corio::stdio::pipe;
    auto p = corio::subprocess::spawn(o);
    auto [out, err] = co_await corio::gather(read_all(p.stdout_pipe()), read_all(p.stderr_pipe()));
    EXPECT_EQ(out, "out\n");
    EXPECT_EQ(err, "err\n");
    EXPECT_EQ(co_await p.wait(), 0);

    o.stderr_to_stdout = true;
    auto merged = corio::subprocess::spawn(o);
    EXPECT_FALSE(merged.stderr_pipe().is_open());
    EXPECT_EQ(co_await read_all(merged.stdout_pipe()), "out\nerr\n");
    EXPECT_EQ(co_await merged.wait(), 0);
  });
}

TEST_P(Subprocess, LargeStreamsBothWaysAtOnceDoNotDeadlock) {
  run_io([]() -> corio::task<> {
    auto head = sh("head -c 5000000 /dev/zero");
    head.stdout_mode = corio::stdio::pipe;
    auto h = corio::subprocess::spawn(head);
    EXPECT_EQ((co_await read_all(h.stdout_pipe())).size(), 5'000'000U);
    EXPECT_EQ(co_await h.wait(), 0);

    // cat writes back while it still reads: writing everything before
    // reading would fill both pipes and stall both processes.
    std::string input(5'000'000, '\0');
    for (std::size_t i = 0; i < input.size(); ++i)
      input[i] = static_cast<char>('a' + i % 26);
    corio::process_options o;
    o.argv = {"cat"};
    o.stdin_mode = o.stdout_mode = corio::stdio::pipe;
    auto cat = corio::subprocess::spawn(o);
    auto [sent, out] = co_await corio::gather(
        [](corio::pipe_stream& in, const std::string& data) -> corio::task<> {
          co_await in.write_all(data.data(), data.size());
          in.close();
        }(cat.stdin_pipe(), input),
        read_all(cat.stdout_pipe()));
    EXPECT_TRUE(out == input) << "got " << out.size() << " bytes";
    EXPECT_EQ(co_await cat.wait(), 0);
  });
}

TEST_P(Subprocess, ACancelledWaitLeavesTheChildToALaterWait) {
  run_io([]() -> corio::task<> {
    auto p = corio::subprocess::spawn({.argv = {"sleep", "100"}});
    auto waiting = corio::spawn(p.wait());
    co_await corio::yield_now();  // the pidfd poll is pending now
    EXPECT_TRUE(waiting.cancel());
    EXPECT_THROW(co_await waiting, corio::cancelled_error);
    EXPECT_FALSE(p.returncode());
    EXPECT_FALSE(p.poll());  // still running, not reaped
    p.kill();
    EXPECT_EQ(co_await p.wait(), -SIGKILL);
  });
}

TEST_P(Subprocess, TwoTasksWaitingBothGetTheStatus) {
  run_io([]() -> corio::task<> {
    auto o = sh("read line; exit 7");
    o.stdin_mode = corio::stdio::pipe;
    auto p = corio::subprocess::spawn(o);
    auto first = corio::spawn(p.wait());
    auto second = corio::spawn(p.wait());
    co_await corio::yield_now();
    p.stdin_pipe().close();  // read sees end of file: the child exits
    EXPECT_EQ(co_await first, 7);
    EXPECT_EQ(co_await second, 7);
  });
}

TEST_P(Subprocess, TheChildGetsOnlyTheStandardDescriptors) {
  run_io([]() -> corio::task<> {
    const int leaky = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC, on purpose
    EXPECT_GE(leaky, 0);
    corio::process_options o;
    o.argv = {"ls", "/proc/self/fd"};
    o.stdin_mode = o.stderr_mode = corio::stdio::null;
    o.stdout_mode = corio::stdio::pipe;
    auto p = corio::subprocess::spawn(o);
    // 0, 1 and 2, and the directory ls reads.
    EXPECT_EQ(co_await read_all(p.stdout_pipe()), "0\n1\n2\n3\n");
    EXPECT_EQ(co_await p.wait(), 0);
    ::close(leaky);
  });
}

TEST_P(Subprocess, EnvironmentAndWorkingDirectoryAreSet) {
  run_io([]() -> corio::task<> {
    auto o = sh("echo $FOO; pwd");
    o.env = std::vector<std::string>{"FOO=bar"};
    o.cwd = "/";
    o.stdout_mode = corio::stdio::pipe;
    auto p = corio::subprocess::spawn(o);
    EXPECT_EQ(co_await read_all(p.stdout_pipe()), "bar\n/\n");
    EXPECT_EQ(co_await p.wait(), 0);

    // The program is looked up in the PATH of the given environment.
    corio::process_options q;
    q.argv = {"corio-test-printenv", "GREETING"};
    q.env = std::vector<std::string>{"GREETING=hi", "PATH=/nonexistent:/usr/bin:/bin"};
    EXPECT_EQ(spawn_error(q), ENOENT);
    q.argv[0] = "printenv";
    q.stdout_mode = corio::stdio::pipe;
    auto e = corio::subprocess::spawn(q);
    EXPECT_EQ(co_await read_all(e.stdout_pipe()), "hi\n");
    EXPECT_EQ(co_await e.wait(), 0);
  });
}

TEST_P(Subprocess, WritingToAChildThatExitedFailsWithEpipe) {
  run_io([]() -> corio::task<> {
    auto o = sh("exit 0");
    o.stdin_mode = corio::stdio::pipe;
    auto p = corio::subprocess::spawn(o);
    EXPECT_EQ(co_await p.wait(), 0);  // nobody reads the pipe any more
    const std::string data(std::size_t{1} << 20, 'x');
    int error = 0;
    try {
      co_await p.stdin_pipe().write_all(data.data(), data.size());
    } catch (const std::system_error& e) {
      error = e.code().value();
    }
    EXPECT_EQ(error, EPIPE);  // and no SIGPIPE ended the test
  });
}

TEST_P(Subprocess, DestroyingAChildNotWaitedForKillsAndReapsIt) {
  run_io([]() -> corio::task<> {
    pid_t pid = 0;
    {
      auto p = corio::subprocess::spawn({.argv = {"sleep", "100"}});
      pid = p.pid();
      auto moved = std::move(p);  // the moved-from one owns nothing
      EXPECT_EQ(moved.pid(), pid);
    }
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);  // reaped already: no zombie left
    co_return;
  });
}

TEST_P(Subprocess, LinesThroughABufferedReader) {
  run_io([]() -> corio::task<> {
    auto o = sh("printf 'one\\ntwo\\nend'");
    o.stdout_mode = corio::stdio::pipe;
    auto p = corio::subprocess::spawn(o);
    corio::buffered_reader<corio::pipe_stream> in(p.stdout_pipe());
    EXPECT_EQ(co_await in.read_line(), "one\n");
    EXPECT_EQ(co_await in.read_line(), "two\n");
    EXPECT_EQ(co_await in.read_line(), "end");
    EXPECT_EQ(co_await in.read_line(), "");
    EXPECT_EQ(co_await p.wait(), 0);
  });
}

TEST_P(Subprocess, RunProcessFeedsAndCollects) {
  run_io([]() -> corio::task<> {
    auto o = sh("cat; echo oops >&2; exit 4");
    o.stdout_mode = o.stderr_mode = corio::stdio::pipe;
    const corio::process_result r = co_await corio::run_process(o, "abc");
    EXPECT_EQ(r.returncode, 4);
    EXPECT_EQ(r.out, "abc");
    EXPECT_EQ(r.err, "oops\n");

    // Input the child never reads is not an error.
    const corio::process_result unread =
        co_await corio::run_process(sh("exit 0"), std::string(std::size_t{1} << 20, 'x'));
    EXPECT_EQ(unread.returncode, 0);

    const int children = count_children();
    auto big = sh("head -c 100000 /dev/zero");
    big.stdout_mode = corio::stdio::pipe;
    EXPECT_THROW(co_await corio::run_process(big, {}, 1000), corio::limit_overrun_error);
    EXPECT_EQ(count_children(), children);  // killed and reaped
    const corio::process_result fits = co_await corio::run_process(big, {}, 100000);
    EXPECT_EQ(fits.out.size(), 100000U);
  });
}

}  // namespace
