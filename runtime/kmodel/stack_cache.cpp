// SPDX-License-Identifier: Apache-2.0
// stack_cache.cpp — a model of glibc's thread-stack cache.
//
// What it mirrors.  glibc never returns a joined thread's stack to the kernel straight away: it
// keeps the whole block (guard, stack, static TLS, struct pthread) on a list and hands it to the
// next pthread_create that fits.  The decisions below are glibc 2.36's (Debian 12, the glibc
// the tests run against):
//
//   nptl/allocatestack.c  allocate_stack: size = attr size (or the default) & ~(TLS align - 1),
//                         plus the guard rounded to the page; EINVAL below
//                         round_up(guard + static TLS + MINIMAL_REST_STACK).
//                         get_cached_stack: walk the list from the head; an exact size match
//                         is taken at once, else the smallest block >= the request (the first
//                         one found among equals); a block more than 4x the request is refused.
//                         On reuse the guard is grown in place (mprotect PROT_NONE) or, if it
//                         is larger than the request needs by more than the block's slack
//                         (size - reqsize), shrunk back.  On a miss: mmap PROT_NONE, then
//                         mprotect everything above the guard read-write.
//   nptl/nptl-stack.c     __nptl_deallocate_stack/queue_stack: a released block goes to the
//                         head; while the cache holds more than 40 MiB
//                         (glibc.pthread.stack_cache_size) __nptl_free_stacks unmaps blocks
//                         from the tail, stopping as soon as it is at or under the cap.
//   nptl/pthread_create.c start_thread → advise_stack_range: an exiting thread gives back
//                         [block start, round_down(sp - start) - PTHREAD_STACK_MIN) with
//                         MADV_DONTNEED; the top of the block (TCB, TLS, the last frames)
//                         stays resident for the next user.
//
// glibc 2.42 changed one thing that matters here: guards.  It maps the block read-write and
// installs the guard with madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which marks page-table
// entries instead of splitting the VMA — one VMA per stack instead of two, so
// vm.max_map_count stops bounding the thread count.  If the advice fails once (older kernel),
// glibc switches to mprotect for good; each block remembers how its guard was made, and resizing
// uses the same mechanism (MADV_GUARD_REMOVE to shrink).  guard_style::madvise models that; its
// reuse rule is taken to be 2.36's.  It is checked against the kernel (one VMA, faults on the
// guard, the fallback), not against a 2.42 glibc, which this machine does not have.
//
// With map_memory the cache really maps, protects, advises and unmaps, so kernel tasks
// (clone.cpp) run on its blocks; without, it makes the same decisions over made-up addresses,
// which is how a create/join sequence is predicted before it is replayed on real pthreads.
//
// Rejected: reading glibc's own list (GL(dl_stack_cache) through _rtld_global).  Its layout is
// private and changes between releases, and a model that reads the answer is not a model.
// Rejected: Go-style size classes.  They are better for goroutines (and weft's stack pools use
// them) but this file's job is to behave like glibc, best-fit quirks and all.
#include <cerrno>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include <pthread.h>
#include <sys/mman.h>

#include "runtime/diag/fatal.hpp"
#include "runtime/kmodel/sys.hpp"
#include "weft/kmodel/facts.hpp"
#include "weft/kmodel/procfs.hpp"
#include "weft/kmodel/stack_cache.hpp"

namespace weft::kmodel {

const char* to_string(guard_style g) noexcept {
  return g == guard_style::madvise ? "madvise(MADV_GUARD_INSTALL)" : "mprotect(PROT_NONE)";
}

cache_config cache_config::for_this_process() {
  const process_facts f = process_facts::probe();
  cache_config c;
  c.page_size = f.page_size;
  c.static_tls_size = f.static_tls_size;
  c.static_tls_align = f.static_tls_align;
  c.tcb_size = f.tcb_size;
  c.max_cached_bytes = f.stack_cache_max;
  c.guard = f.glibc_uses_guard_install() ? guard_style::madvise : guard_style::mprotect;
  pthread_attr_t attr;
  if (int e = ::pthread_getattr_default_np(&attr); e != 0) detail::throw_errno(e, "pthread_getattr_default_np");
  std::size_t stack = 0, guard = 0;
  ::pthread_attr_getstacksize(&attr, &stack);
  ::pthread_attr_getguardsize(&attr, &guard);
  ::pthread_attr_destroy(&attr);
  c.default_stack_size = stack;
  c.default_guard_size = guard;
  return c;
}

struct stack_cache::impl {
  cache_config cfg;
  mutable std::mutex mu;
  std::list<stack_block> cache;  // front: most recently released (dl_stack_cache)
  std::unordered_map<std::uint64_t, stack_block> used;  // dl_stack_used
  std::uint64_t next_id = 1;
  std::size_t cached_bytes = 0;
  std::size_t used_bytes = 0;
  cache_stats st;
  guard_style mode = guard_style::mprotect;  // allocate_stack_mode
  bool kernel_guard = false;
  std::uintptr_t next_fake = std::uintptr_t{0x7f0000000000};

  std::size_t page() const { return cfg.page_size; }

  [[noreturn]] void fail(int err, const std::string& what) const {
    std::string vmas = "unknown";
    try {
      vmas = std::to_string(count_vmas());
    } catch (const std::exception&) {
      // The count only decorates the message; the error being reported is the one that matters.
    }
    detail::throw_errno(err, what + " (VMAs in this process: " + vmas + ")");
  }

  // A fresh block: mmap, then the guard in the current style.
  stack_block map_block(std::size_t size, std::size_t guard) {
    stack_block b;
    b.id = next_id++;
    b.size = size;
    b.guard = guard;
    b.installed_by = mode;
    if (!cfg.map_memory) {
      next_fake -= detail::round_up(size, page()) + page();
      b.mem = next_fake;
      st.mmaps++;
      if (guard) (mode == guard_style::madvise ? st.guard_installs : st.mprotects)++;
      return b;
    }
    const int rw = PROT_READ | PROT_WRITE;
    const bool none_first = mode == guard_style::mprotect && guard != 0;
    void* mem = ::mmap(nullptr, size, none_first ? PROT_NONE : rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED) {
      fail(errno, "mmap of a " + size_text(size) + " thread-stack block: out of memory, address space or "
                  "vm.max_map_count mappings");
    }
    st.mmaps++;
    b.mem = reinterpret_cast<std::uintptr_t>(mem);
    if (guard == 0) return b;
    char* base = static_cast<char*>(mem);
    if (mode == guard_style::mprotect) {
      if (::mprotect(base + guard, size - guard, rw) != 0) {
        int e = errno;
        unmap_or_die(b);
        fail(e, "mprotect of a new stack block above its guard: out of memory or vm.max_map_count mappings "
                "(the guard splits the mapping in two)");
      }
      st.mprotects++;
      return b;
    }
    if (kernel_guard && ::madvise(base, guard, madv_guard_install) == 0) {
      st.guard_installs++;
      return b;
    }
    // The kernel has no guard advice: glibc falls back to mprotect, for this and every later block.
    mode = guard_style::mprotect;
    st.fell_back_to_mprotect = true;
    b.installed_by = guard_style::mprotect;
    if (::mprotect(base, guard, PROT_NONE) != 0) {
      int e = errno;
      unmap_or_die(b);
      fail(e, "mprotect of a stack guard: out of memory or vm.max_map_count mappings");
    }
    st.mprotects++;
    return b;
  }

  void unmap_or_die(const stack_block& b) {
    st.munmaps++;
    if (!cfg.map_memory) return;
    // glibc aborts here (nptl-stack.c): a failed munmap of our own block is a broken invariant.
    if (::munmap(reinterpret_cast<void*>(b.mem), b.size) != 0)
      weft::detail::fatal("kmodel: munmap of a %zu-byte stack block at %#lx failed: errno %d", b.size,
                          static_cast<unsigned long>(b.mem), errno);
  }

  // Grows or shrinks the guard of a reused block (allocate_stack after get_cached_stack).
  guard_change resize_guard(stack_block& b, std::size_t guard, std::size_t size, std::size_t reqsize) {
    if (guard > b.guard) {
      if (cfg.map_memory) {
        void* at = reinterpret_cast<void*>(b.mem);
        int r = b.installed_by == guard_style::madvise ? ::madvise(at, guard, madv_guard_install)
                                                       : ::mprotect(at, guard, PROT_NONE);
        if (r != 0) {
          int e = errno;
          unmap_or_die(b);
          fail(e, "growing the guard of a cached stack block");
        }
      }
      (b.installed_by == guard_style::madvise ? st.guard_installs : st.mprotects)++;
      b.guard = guard;
      return guard_change::grown;
    }
    if (b.guard - guard > size - reqsize) {
      const std::size_t excess = b.guard - guard;
      if (cfg.map_memory) {
        void* at = reinterpret_cast<void*>(b.mem + guard);
        int r = b.installed_by == guard_style::madvise ? ::madvise(at, excess, madv_guard_remove)
                                                       : ::mprotect(at, excess, PROT_READ | PROT_WRITE);
        if (r != 0) {
          int e = errno;
          unmap_or_die(b);
          fail(e, "shrinking the guard of a cached stack block");
        }
      }
      (b.installed_by == guard_style::madvise ? st.guard_removes : st.mprotects)++;
      b.guard = guard;
      return guard_change::shrunk;
    }
    return guard_change::none;
  }

  // __nptl_free_stacks: unmap from the tail until the cache holds at most `limit` bytes.
  void free_stacks(std::size_t limit) {
    while (!cache.empty()) {
      stack_block b = cache.back();
      cache.pop_back();
      cached_bytes -= b.size;
      unmap_or_die(b);
      if (cached_bytes <= limit) break;
    }
  }
};

stack_cache::stack_cache(cache_config config) : impl_(std::make_unique<impl>()) {
  impl_->cfg = config;
  if (config.page_size == 0 || (config.page_size & (config.page_size - 1)) != 0)
    throw std::invalid_argument("weft: kmodel: cache_config::page_size must be a power of two");
  if (config.static_tls_align == 0 || (config.static_tls_align & (config.static_tls_align - 1)) != 0)
    throw std::invalid_argument("weft: kmodel: cache_config::static_tls_align must be a power of two");
  impl_->mode = config.guard;
  if (config.guard == guard_style::madvise) {
    impl_->kernel_guard = config.kernel_guard_install.value_or(config.map_memory && detail::guard_install_works(config.page_size));
  }
}

stack_cache::~stack_cache() {
  for (const stack_block& b : impl_->cache) impl_->unmap_or_die(b);
  for (const auto& [id, b] : impl_->used) impl_->unmap_or_die(b);
}

allocation stack_cache::allocate(std::size_t stack_size, std::optional<std::size_t> guard_request) {
  impl& m = *impl_;
  const cache_config& c = m.cfg;
  if (stack_size != 0 && stack_size < pthread_stack_min)
    throw std::invalid_argument("weft: kmodel: stack size " + std::to_string(stack_size) +
                                " is below PTHREAD_STACK_MIN (16384); pthread_attr_setstacksize refuses it");
  std::lock_guard<std::mutex> lock(m.mu);
  std::size_t size = stack_size ? stack_size : c.default_stack_size;
  size &= ~(c.static_tls_align - 1);
  const std::size_t guard = detail::round_up(guard_request.value_or(c.default_guard_size), c.page_size);
  size += guard;
  const std::size_t minimum = detail::round_up(guard + c.static_tls_size + minimal_rest_stack, c.page_size);
  if (size < minimum)
    throw std::invalid_argument("weft: kmodel: a " + size_text(size) + " block cannot hold a " + size_text(guard) +
                                " guard, " + std::to_string(c.static_tls_size) +
                                " bytes of static TLS and MINIMAL_REST_STACK (glibc returns EINVAL)");
  const std::size_t reqsize = size;

  allocation a;
  a.request = reqsize;
  // get_cached_stack: exact match first, else the smallest that fits, never more than 4x.
  auto best = m.cache.end();
  for (auto it = m.cache.begin(); it != m.cache.end(); ++it) {
    if (it->size < size) continue;
    if (it->size == size) {
      best = it;
      break;
    }
    if (best == m.cache.end() || best->size > it->size) best = it;
  }
  if (best != m.cache.end() && best->size <= 4 * size) {
    a.block = *best;
    m.cache.erase(best);
    m.cached_bytes -= a.block.size;
    size = a.block.size;
    a.hit = true;
    m.st.hits++;
    a.guard_changed = m.resize_guard(a.block, guard, size, reqsize);
  } else {
    a.block = m.map_block(size, guard);
    m.st.misses++;
  }
  a.reported_stack_size = a.block.size - a.block.guard;
  m.used.emplace(a.block.id, a.block);
  m.used_bytes += a.block.size;
  return a;
}

std::optional<stack_cache::range> stack_cache::dontneed_range(const stack_block& b, std::uintptr_t last_sp) const noexcept {
  if (last_sp <= b.mem || last_sp >= b.end()) return std::nullopt;
  const std::size_t freesize = detail::round_down(last_sp - b.mem, impl_->cfg.page_size);
  if (freesize <= pthread_stack_min) return std::nullopt;
  return range{b.mem, freesize - pthread_stack_min};
}

void stack_cache::release(std::uint64_t id, std::uintptr_t last_sp) {
  impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  auto it = m.used.find(id);
  if (it == m.used.end())
    throw std::logic_error("weft: kmodel: stack block " + std::to_string(id) + " is not in use; released twice?");
  const stack_block b = it->second;
  m.used.erase(it);
  m.used_bytes -= b.size;
  int advise_error = 0;
  if (last_sp != 0) {
    if (std::optional<range> r = dontneed_range(b, last_sp)) {
      m.st.dontneed_calls++;
      m.st.dontneed_bytes += r->length;
      if (m.cfg.map_memory && ::madvise(reinterpret_cast<void*>(r->start), r->length, MADV_DONTNEED) != 0)
        advise_error = errno;
    }
  }
  // queue_stack
  m.cache.push_front(b);
  m.cached_bytes += b.size;
  if (m.cached_bytes > m.cfg.max_cached_bytes) m.free_stacks(m.cfg.max_cached_bytes);
  if (advise_error) detail::throw_errno(advise_error, "madvise(MADV_DONTNEED) of a released stack block");
}

stack_layout stack_cache::layout(const stack_block& b) const noexcept {
  const cache_config& c = impl_->cfg;
  stack_layout l;
  l.descriptor = (b.end() - c.tcb_size) & ~(std::uintptr_t{c.static_tls_align} - 1);
  l.stack_top = l.descriptor + c.tcb_size - c.static_tls_size;
  l.stack_low = b.mem + b.guard;
  return l;
}

std::vector<stack_block> stack_cache::cached() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return {impl_->cache.begin(), impl_->cache.end()};
}

cache_stats stack_cache::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  cache_stats s = impl_->st;
  s.cached_blocks = impl_->cache.size();
  s.cached_bytes = impl_->cached_bytes;
  s.used_blocks = impl_->used.size();
  s.used_bytes = impl_->used_bytes;
  return s;
}

const cache_config& stack_cache::config() const noexcept { return impl_->cfg; }

guard_style stack_cache::current_guard_style() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->mode;
}

}  // namespace weft::kmodel
