// SPDX-License-Identifier: Apache-2.0
// weft/kmodel/stack_cache.hpp — a model of glibc's thread-stack cache (nptl allocate_stack).
//
// Plain threads: all of it; the kernel-model layer needs no runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "weft/export.hpp"
#include "weft/kmodel/facts.hpp"

namespace weft::kmodel {

// How a block's guard is made.
enum class guard_style {
  mprotect,  // glibc <= 2.41: map PROT_NONE, mprotect all but the guard read-write (2 VMAs per stack)
  madvise,   // glibc >= 2.42: map read-write, madvise(MADV_GUARD_INSTALL) the guard (1 VMA, Linux 6.13+)
};
WEFT_API const char* to_string(guard_style g) noexcept;

struct WEFT_API cache_config {
  std::size_t page_size = 4096;
  std::size_t static_tls_size = 0;    // rounded, as process_facts::static_tls_size
  std::size_t static_tls_align = 64;
  std::size_t tcb_size = 2368;        // sizeof(struct pthread) in glibc 2.36 on x86_64
  std::size_t default_stack_size = std::size_t{8} << 20;  // attr stack size 0 means this
  std::size_t default_guard_size = 4096;
  std::size_t max_cached_bytes = default_stack_cache_max;
  guard_style guard = guard_style::mprotect;
  // false: a dry model — decisions, sizes and made-up addresses, no system calls.
  bool map_memory = true;
  // nullopt: ask the kernel whether MADV_GUARD_INSTALL works; false: behave as on a kernel
  // before 6.13 (glibc then falls back to mprotect for good).
  std::optional<bool> kernel_guard_install;

  // This process's glibc: its version picks the guard style, its default attribute the sizes.
  static cache_config for_this_process();
};

// One mapping of the cache: [mem, mem + size), guard at the bottom, descriptor at the top.
struct stack_block {
  std::uint64_t id = 0;    // 1, 2, ... in the order the blocks were mapped
  std::uintptr_t mem = 0;  // lowest address: the guard starts here (pd->stackblock)
  std::size_t size = 0;    // the whole block (pd->stackblock_size): guard, stack, static TLS, TCB
  std::size_t guard = 0;   // the guard now at the bottom (pd->guardsize)
  guard_style installed_by = guard_style::mprotect;  // how this block's guard was made
  std::uintptr_t end() const noexcept { return mem + size; }
};

// Where things are inside a block, as allocate_stack places them (TLS_TCB_AT_TP, stack grows down):
//
//   end  +----------------------+
//        | TCB (struct pthread) |  descriptor = (end - tcb_size) & ~(tls_align - 1)
//        | static TLS           |
//        +----------------------+  stack_top = descriptor + tcb_size - static_tls_size
//        | stack (grows down)   |
//        +----------------------+  stack_low = mem + guard
//        | guard                |
//   mem  +----------------------+
struct stack_layout {
  std::uintptr_t descriptor = 0;
  std::uintptr_t stack_top = 0;
  std::uintptr_t stack_low = 0;
};

enum class guard_change { none, grown, shrunk };

struct allocation {
  stack_block block;
  bool hit = false;                     // taken from the cache (no mmap)
  std::size_t request = 0;              // reqsize: aligned stack size + guard
  std::size_t reported_stack_size = 0;  // what pthread_getattr_np reports: block size - guard
  guard_change guard_changed = guard_change::none;
};

struct cache_stats {
  std::uint64_t hits = 0, misses = 0;
  std::uint64_t mmaps = 0, munmaps = 0, mprotects = 0, guard_installs = 0, guard_removes = 0;
  std::uint64_t dontneed_calls = 0, dontneed_bytes = 0;
  std::size_t cached_blocks = 0, cached_bytes = 0;  // dl_stack_cache and dl_stack_cache_actsize
  std::size_t used_blocks = 0, used_bytes = 0;      // dl_stack_used
  bool fell_back_to_mprotect = false;               // MADV_GUARD_INSTALL failed once
};

// glibc's stack cache, thread-safe.  With map_memory it owns real mappings a kernel task can
// run on (see clone.hpp); without, it is the same decisions on paper.
class WEFT_API stack_cache {
 public:
  explicit stack_cache(cache_config config = cache_config::for_this_process());
  ~stack_cache();  // unmaps every block; blocks still in use must no longer be running on
  stack_cache(const stack_cache&) = delete;
  stack_cache& operator=(const stack_cache&) = delete;

  // allocate_stack for an attribute with this stack size (0: the default) and guard size
  // (nullopt: the default).  Throws std::invalid_argument where glibc returns EINVAL (below
  // PTHREAD_STACK_MIN, or too small for guard + static TLS + MINIMAL_REST_STACK) and
  // resource_error where mmap, mprotect or madvise fail.
  allocation allocate(std::size_t stack_size = 0, std::optional<std::size_t> guard = std::nullopt);

  // The thread on block `id` has exited and the kernel cleared its tid: give back the memory
  // below last_sp except PTHREAD_STACK_MIN (MADV_DONTNEED; 0 skips it), put the block at the
  // head of the cache and unmap from the tail while the cache holds more than
  // max_cached_bytes.  Throws std::logic_error for a block that is not in use.
  void release(std::uint64_t id, std::uintptr_t last_sp = 0);

  // The range release() would give back for a thread whose last stack pointer was last_sp.
  struct range {
    std::uintptr_t start = 0;
    std::size_t length = 0;
  };
  std::optional<range> dontneed_range(const stack_block& b, std::uintptr_t last_sp) const noexcept;

  stack_layout layout(const stack_block& b) const noexcept;
  std::vector<stack_block> cached() const;  // head (most recently released) first
  cache_stats stats() const;
  const cache_config& config() const noexcept;
  guard_style current_guard_style() const;  // mprotect after a fallback

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace weft::kmodel
