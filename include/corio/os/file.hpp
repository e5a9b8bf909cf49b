// file: asynchronous reads and writes of regular files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "corio/detail/owned_fd.hpp"
#include "corio/task/task.hpp"

namespace corio {

/// How `file::open` opens a file.
enum class open_mode : std::uint8_t {
  read,        ///< read only; the file must exist
  write,       ///< write only; created or truncated
  append,      ///< write only; created if missing; every write goes to the end
  read_write,  ///< read and write; created if missing, not truncated
};

/// A regular file, owned: the destructor closes it. On io_uring, reads and
/// writes are io_uring operations; on epoll (where a regular file is always
/// "ready" and a read would stall the loop on the disk) they run on the
/// blocking pool. Opening, sync() and the whole-file helpers use the pool
/// on both. Errors come out as std::system_error with the errno: ENOENT,
/// EACCES, ENOSPC (a full disk: what was written before stays written).
///
/// Cancellation: a cancelled call throws cancelled_error once the kernel
/// or the pool has finished with the buffer; a cancelled write may have
/// written part of its data.
///
/// \code
///   auto f = co_await corio::file::open("data.bin");
///   char buf[4096];
///   std::size_t n = co_await f.read_at(buf, sizeof buf, 0);
/// \endcode
class file {
 public:
  /// A file object that holds no descriptor (is_open() is false).
  file() noexcept = default;

  /// Opens `path` in `mode` (close-on-exec) on the blocking pool, at
  /// position 0. `permissions` (less the umask) apply only when the file is
  /// created. Throws std::system_error whose message names the path
  /// (ENOENT, EACCES, EISDIR...).
  [[nodiscard]] static task<file> open(std::string path, open_mode mode = open_mode::read,
                                       unsigned permissions = 0644);

  /// Up to `len` bytes from `offset`; 0 at the end of the file.
  [[nodiscard]] task<std::size_t> read_at(void* buf, std::size_t len, std::uint64_t offset);
  /// Up to `len` bytes at `offset` (append mode: at the end).
  [[nodiscard]] task<std::size_t> write_at(const void* buf, std::size_t len, std::uint64_t offset);

  /// Reads from the file's position and advances it.
  [[nodiscard]] task<std::size_t> read(void* buf, std::size_t len);
  /// Writes all `len` bytes at the file's position (append mode: at the
  /// end) and advances it.
  [[nodiscard]] task<> write_all(const void* buf, std::size_t len);

  /// fsync: the data is on the disk when it returns.
  [[nodiscard]] task<> sync();
  /// The file's size now.
  [[nodiscard]] std::uint64_t size() const;
  /// Where read() and write_all() go next: an offset the object keeps
  /// itself (read_at and write_at leave it alone). In append mode it counts
  /// the bytes write_all() wrote, not the file's end. Two read() or write_all()
  /// calls at once on one file would race on it: await one before the next.
  [[nodiscard]] std::uint64_t position() const noexcept { return m_position; }
  /// Closes the file now (the destructor does it otherwise); idempotent.
  void close() noexcept { m_fd.reset(); }
  /// True while the object holds a descriptor (not default-constructed,
  /// moved from or closed).
  [[nodiscard]] bool is_open() const noexcept { return m_fd.get() >= 0; }
  /// The file's descriptor, still owned by the object; -1 when closed.
  [[nodiscard]] int native_handle() const noexcept { return m_fd.get(); }

 private:
  detail::owned_fd m_fd;
  std::uint64_t m_position = 0;
  bool m_append = false;
};

/// The whole file as a string; limit_overrun_error when it is larger than
/// `max_bytes` (nothing is read past the limit).
[[nodiscard]] task<std::string> read_file(std::string path,
                                          std::size_t max_bytes = std::size_t{64} << 20);

/// Creates or truncates `path` and writes `data` to it.
[[nodiscard]] task<> write_file(std::string path, std::string_view data);

}  // namespace corio
