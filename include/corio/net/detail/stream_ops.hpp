// The loops every byte stream shares: read exactly n bytes, write all of
// them. Stream is anything with read_some / write_some awaitables.
#pragma once

#include <cstddef>

#include "corio/errors.hpp"
#include "corio/task/task.hpp"

namespace corio::detail {

template <class Stream>
task<> read_exact(Stream& s, void* buf, std::size_t len) {
  auto* p = static_cast<char*>(buf);
  std::size_t got = 0;
  while (got < len) {
    const std::size_t n = co_await s.read_some(p + got, len - got);
    if (n == 0) throw incomplete_read_error(got, len);
    got += n;
  }
}

template <class Stream>
task<> write_all(Stream& s, const void* buf, std::size_t len) {
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < len)
    done += co_await s.write_some(p + done, len - done);
}

}  // namespace corio::detail
