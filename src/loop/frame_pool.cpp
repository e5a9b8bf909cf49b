#include "corio/detail/frame_pool.hpp"

#include <cstdlib>

namespace corio::detail {

void* frame_pool::refill(std::size_t cls) {
  const std::size_t size = cls * granule;
  if (chunk_cur == nullptr || static_cast<std::size_t>(chunk_end - chunk_cur) < size) {
    // Chunks are never returned: frames of a size class are reused instead.
    constexpr std::size_t chunk_size = 256 * 1024;
    chunk_cur = static_cast<char*>(::operator new(chunk_size));
    chunk_end = chunk_cur + chunk_size;
  }
  void* p = chunk_cur;
  chunk_cur += size;
  return p;
}

}  // namespace corio::detail
