#include "corio/detail/frame_pool.hpp"

#include <sys/mman.h>

#include <cstdint>

namespace corio::detail {

namespace {

constexpr std::size_t first_chunk = std::size_t{256} << 10;
constexpr std::size_t huge_page = std::size_t{2} << 20;
constexpr std::size_t max_chunk = std::size_t{8} << 20;

/// Maps `size` bytes; sizes of a huge page or more come back aligned to one
/// and advised as huge pages (a hint: the kernel may still use small ones).
char* map_chunk(std::size_t size) {
  const bool huge = size >= huge_page;
  const std::size_t span = huge ? size + huge_page : size;
  void* m = ::mmap(nullptr, span, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | (huge ? 0 : MAP_POPULATE), -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  auto* base = static_cast<char*>(m);
  if (!huge) return base;
  const auto addr = reinterpret_cast<std::uintptr_t>(base);
  const std::size_t head = (huge_page - (addr & (huge_page - 1))) & (huge_page - 1);
  if (head != 0) ::munmap(base, head);
  if (huge_page - head != 0) ::munmap(base + head + size, huge_page - head);
  ::madvise(base + head, size, MADV_HUGEPAGE);
  return base + head;
}

}  // namespace

void* frame_pool::refill(std::size_t cls) {
  const std::size_t size = cls * granule;
  if (chunk_cur == nullptr || static_cast<std::size_t>(chunk_end - chunk_cur) < size) {
    // Chunks are never returned: frames of a size class are reused instead.
    // The tail of the previous chunk (under max_pooled bytes) is left unused.
    if (next_chunk == 0) next_chunk = first_chunk;
    chunk_cur = map_chunk(next_chunk);
    chunk_end = chunk_cur + next_chunk;
    if (next_chunk < max_chunk) next_chunk *= 2;
  }
  void* p = chunk_cur;
  chunk_cur += size;
  return p;
}

}  // namespace corio::detail
