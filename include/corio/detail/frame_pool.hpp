// Per-thread free lists for coroutine frames, in 16-byte size classes.
//
// A spawned task costs one frame allocation; served from a free list it is a
// pointer pop instead of a trip through malloc, and it carries no malloc
// header. Memory is kept by the thread that freed it and reused for the next
// frame of that size class (it is not returned to the system). Sanitizer
// builds define CORIO_NO_FRAME_POOL so that every frame comes from the global
// allocator and use-after-free is caught.
//
// Chunks come straight from mmap and grow from 256 KiB to 8 MiB. Chunks of
// 2 MiB and more are aligned to 2 MiB and advised as transparent huge pages:
// a million tasks then touch ~75 huge pages instead of ~37,000 small ones,
// and on a VM a page fault costs microseconds.
#pragma once

#include <cstddef>
#include <new>

namespace corio::detail {

struct frame_pool {
  static constexpr std::size_t granule = 16;
  static constexpr std::size_t max_pooled = 512;
  static constexpr std::size_t classes = max_pooled / granule + 1;

  struct free_node {
    free_node* next;
  };

  free_node* lists[classes];
  char* chunk_cur;
  char* chunk_end;
  std::size_t next_chunk;  // 0 until the first refill; then doubles up to a cap

  void* refill(std::size_t cls);
};

// Zero-initialised, trivially destructible: no TLS guard on access.
inline thread_local frame_pool t_frame_pool{};

inline void* frame_alloc(std::size_t n) {
#ifdef CORIO_NO_FRAME_POOL
  return ::operator new(n);
#else
  if (n > frame_pool::max_pooled) return ::operator new(n);
  std::size_t cls = (n + frame_pool::granule - 1) / frame_pool::granule;
  frame_pool& p = t_frame_pool;
  if (frame_pool::free_node* f = p.lists[cls]) {
    p.lists[cls] = f->next;
    return f;
  }
  return p.refill(cls);
#endif
}

/// The global sized delete where the compiler offers it (clang enables it only
/// with -fsized-deallocation).
inline void global_delete(void* ptr, [[maybe_unused]] std::size_t n) noexcept {
#ifdef __cpp_sized_deallocation
  ::operator delete(ptr, n);
#else
  ::operator delete(ptr);
#endif
}

inline void frame_free(void* ptr, std::size_t n) noexcept {
#ifdef CORIO_NO_FRAME_POOL
  global_delete(ptr, n);
#else
  if (n > frame_pool::max_pooled) {
    global_delete(ptr, n);
    return;
  }
  std::size_t cls = (n + frame_pool::granule - 1) / frame_pool::granule;
  frame_pool& p = t_frame_pool;
  auto* f = static_cast<frame_pool::free_node*>(ptr);
  f->next = p.lists[cls];
  p.lists[cls] = f;
#endif
}

}  // namespace corio::detail
