#include "corio/os/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "corio/errors.hpp"
#include "corio/io/detail/io_op.hpp"
#include "corio/loop/event_loop.hpp"
#include "exec/blocking.hpp"

namespace corio {
namespace {

[[noreturn]] void throw_errno(int e, const char* what) {
  throw std::system_error(e, std::system_category(), what);
}

bool on_uring() {
  return std::strcmp(detail::current_event_loop().backend_name(), "io_uring") == 0;
}

// One read or write: on the ring when there is one, else on the pool.
// offset < 0: at the descriptor's own position (append mode).
task<std::size_t> transfer(detail::io_kind kind, int fd, void* buf, std::size_t len,
                           std::int64_t offset) {
  const char* what = kind == detail::io_kind::read ? "read" : "write";
  if (on_uring()) {
    detail::io_awaitable op(kind, fd, buf, len, what);
    op.m_offset = offset;
    co_return co_await op;
  }
  const ssize_t r = co_await detail::run_blocking([=]() -> ssize_t {
    ssize_t n = 0;
    do {
      if (kind == detail::io_kind::read) {
        n = offset < 0 ? ::read(fd, buf, len) : ::pread(fd, buf, len, offset);
      } else {
        n = offset < 0 ? ::write(fd, buf, len) : ::pwrite(fd, buf, len, offset);
      }
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
  });
  if (r < 0) throw_errno(static_cast<int>(-r), what);
  co_return static_cast<std::size_t>(r);
}

std::int64_t checked_offset(std::uint64_t offset) {
  if (offset > static_cast<std::uint64_t>(INT64_MAX)) throw_errno(EINVAL, "file offset");
  return static_cast<std::int64_t>(offset);
}

}  // namespace

task<file> file::open(std::string path, open_mode mode, unsigned permissions) {
  int flags = O_CLOEXEC;
  switch (mode) {
    case open_mode::read:
      flags |= O_RDONLY;
      break;
    case open_mode::write:
      flags |= O_WRONLY | O_CREAT | O_TRUNC;
      break;
    case open_mode::append:
      flags |= O_WRONLY | O_CREAT | O_APPEND;
      break;
    case open_mode::read_write:
      flags |= O_RDWR | O_CREAT;
      break;
  }
  const int fd = co_await detail::run_blocking([&path, flags, permissions] {
    const int r = ::open(path.c_str(), flags, static_cast<mode_t>(permissions));
    return r < 0 ? -errno : r;
  });
  if (fd < 0) throw std::system_error(-fd, std::system_category(), "open " + path);
  file f;
  f.m_fd = detail::owned_fd(fd);
  f.m_append = mode == open_mode::append;
  co_return f;
}

task<std::size_t> file::read_at(void* buf, std::size_t len, std::uint64_t offset) {
  return transfer(detail::io_kind::read, m_fd.get(), buf, len, checked_offset(offset));
}

task<std::size_t> file::write_at(const void* buf, std::size_t len, std::uint64_t offset) {
  return transfer(detail::io_kind::write, m_fd.get(), const_cast<void*>(buf), len,
                  m_append ? -1 : checked_offset(offset));
}

task<std::size_t> file::read(void* buf, std::size_t len) {
  const std::size_t n = co_await read_at(buf, len, m_position);
  m_position += n;
  co_return n;
}

task<> file::write_all(const void* buf, std::size_t len) {
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < len) {
    const std::size_t n = co_await write_at(p + done, len - done, m_position);
    if (n == 0) throw_errno(ENOSPC, "write");  // a regular file that takes nothing is full
    done += n;
    m_position += n;
  }
}

task<> file::sync() {
  const int fd = m_fd.get();
  const int r = co_await detail::run_blocking([fd] { return ::fsync(fd) == 0 ? 0 : errno; });
  if (r != 0) throw_errno(r, "fsync");
}

std::uint64_t file::size() const {
  struct stat st {};
  if (::fstat(m_fd.get(), &st) != 0) throw_errno(errno, "fstat");
  return static_cast<std::uint64_t>(st.st_size);
}

task<std::string> read_file(std::string path, std::size_t max_bytes) {
  file f = co_await file::open(std::move(path));
  std::string out;
  out.resize(std::min<std::uint64_t>(f.size(), max_bytes) + 1);  // +1: sees growth or the end
  std::size_t got = 0;
  for (;;) {
    if (got == out.size()) {
      if (out.size() > max_bytes)
        throw limit_overrun_error(
            "corio: read_file: the file is larger than " + std::to_string(max_bytes) + " bytes",
            got);
      out.resize(std::min(out.size() * 2, max_bytes + 1));
    }
    const std::size_t n = co_await f.read_at(out.data() + got, out.size() - got, got);
    if (n == 0) break;
    got += n;
  }
  if (got > max_bytes)
    throw limit_overrun_error(
        "corio: read_file: the file is larger than " + std::to_string(max_bytes) + " bytes", got);
  out.resize(got);
  co_return out;
}

task<> write_file(std::string path, std::string_view data) {
  file f = co_await file::open(std::move(path), open_mode::write);
  co_await f.write_all(data.data(), data.size());
}

}  // namespace corio
