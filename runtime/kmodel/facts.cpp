// SPDX-License-Identifier: Apache-2.0
// facts.cpp — what this process's glibc and kernel are, as the models need them.
//
// The models are pure functions of a few numbers: the page size, the static TLS size glibc
// reserves at the top of every thread stack, sizeof(struct pthread), the stack cache cap, the
// kernel's stack_guard_gap and whether MADV_GUARD_INSTALL exists.  This file finds them.
//
// glibc does not publish the TLS and TCB sizes, but it exports them privately for debuggers
// and language runtimes: _dl_get_tls_static_info (elf/dl-tls.c, the size and alignment of the
// static TLS block) and _thread_db_sizeof_pthread (nptl_db's view of struct pthread).  We look
// them up with dlsym, so a glibc without them degrades to __pthread_get_minstack (which adds
// the page and PTHREAD_STACK_MIN to the rounded static TLS size, nptl/nptl-stack.c) and then
// to the values glibc 2.36 has on x86_64.  `source` records which path was taken, so a
// disagreement with reality can be traced to its input.
//
// Rejected: parsing PT_TLS segments with dl_iterate_phdr and re-deriving glibc's surplus
// arithmetic (elf/dl-tls.c _dl_tls_static_surplus_init).  It would be a second model of a
// number glibc will tell us outright, and it changes between releases.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <unistd.h>

#include "runtime/kmodel/sys.hpp"
#include "weft/kmodel/facts.hpp"

namespace weft::kmodel {
namespace {

// glibc 2.36 on x86_64, measured on Debian 12: the fallback when glibc hides the numbers.
constexpr std::size_t kFallbackStaticTls = 4224;
constexpr std::size_t kFallbackTcb = 2368;

// "glibc.pthread.stack_cache_size=N" in GLIBC_TUNABLES (a colon-separated list).
std::optional<std::size_t> tunable_stack_cache_size() {
  const char* env = std::getenv("GLIBC_TUNABLES");
  if (!env) return std::nullopt;
  std::string_view s(env);
  constexpr std::string_view key = "glibc.pthread.stack_cache_size=";
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t end = s.find(':', pos);
    if (end == std::string_view::npos) end = s.size();
    std::string_view item = s.substr(pos, end - pos);
    if (item.substr(0, key.size()) == key) {
      std::string value(item.substr(key.size()));
      char* stop = nullptr;
      errno = 0;
      unsigned long long v = std::strtoull(value.c_str(), &stop, 0);
      if (errno == 0 && stop && *stop == '\0') return static_cast<std::size_t>(v);
      return std::nullopt;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

// stack_guard_gap=<pages> on the kernel command line, else the default 256 pages.
std::size_t guard_gap_bytes(std::size_t page) {
  std::optional<std::string> cmdline = detail::read_file("/proc/cmdline");
  if (cmdline) {
    std::size_t at = cmdline->find("stack_guard_gap=");
    if (at != std::string::npos) {
      unsigned long long pages = std::strtoull(cmdline->c_str() + at + 16, nullptr, 0);
      return static_cast<std::size_t>(pages) * page;
    }
  }
  return default_stack_guard_gap_pages * page;
}

}  // namespace

namespace detail {
bool guard_install_works(std::size_t page) noexcept {
  void* p = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  bool ok = ::madvise(p, page, madv_guard_install) == 0;
  // A scratch mapping we just made: unmapping it cannot fail short of a kernel bug, and the
  // answer is already known, so a failure here only leaks two pages.
  (void)::munmap(p, 2 * page);
  return ok;
}
}  // namespace detail

process_facts process_facts::probe() {
  process_facts f;
  long ps = ::sysconf(_SC_PAGESIZE);
  if (ps > 0) f.page_size = static_cast<std::size_t>(ps);

  const char* version = ::gnu_get_libc_version();
  if (version) {
    char* rest = nullptr;
    f.glibc_major = static_cast<int>(std::strtol(version, &rest, 10));
    if (rest && *rest == '.') f.glibc_minor = static_cast<int>(std::strtol(rest + 1, nullptr, 10));
  }

  using tls_info_fn = void (*)(std::size_t*, std::size_t*);
  using minstack_fn = std::size_t (*)(const pthread_attr_t*);
  if (auto info = reinterpret_cast<tls_info_fn>(::dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info"))) {
    std::size_t size = 0, align = 0;
    info(&size, &align);
    f.static_tls_align = align ? align : 64;
    f.static_tls_size = detail::round_up(size, f.static_tls_align);
    f.source = "static TLS from _dl_get_tls_static_info";
  } else if (auto minstack = reinterpret_cast<minstack_fn>(::dlsym(RTLD_DEFAULT, "__pthread_get_minstack"))) {
    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    f.static_tls_size = minstack(&attr) - f.page_size - pthread_stack_min;
    ::pthread_attr_destroy(&attr);
    f.source = "static TLS from __pthread_get_minstack";
  } else {
    f.static_tls_size = kFallbackStaticTls;
    f.source = "static TLS assumed (glibc 2.36 x86_64)";
  }
  if (auto sz = static_cast<const std::uint32_t*>(::dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread"))) {
    f.tcb_size = *sz;
    f.source += ", TCB from _thread_db_sizeof_pthread";
  } else {
    f.tcb_size = kFallbackTcb;
    f.source += ", TCB assumed (glibc 2.36 x86_64)";
  }

  if (std::optional<std::size_t> cap = tunable_stack_cache_size()) f.stack_cache_max = *cap;
  f.stack_guard_gap = guard_gap_bytes(f.page_size);
  f.kernel_guard_install = detail::guard_install_works(f.page_size);
  if (std::optional<std::string> v = detail::read_file("/proc/sys/kernel/randomize_va_space"))
    f.randomize_va_space = static_cast<int>(std::strtol(v->c_str(), nullptr, 10));
  const int persona = ::personality(0xffffffff);  // query only
  f.addr_no_randomize = persona != -1 && (persona & ADDR_NO_RANDOMIZE) != 0;
#if defined(__x86_64__)
  if (f.randomize_va_space > 0 && !f.addr_no_randomize) f.stack_random_offset_max = 8192;
#endif
  return f;
}

std::string process_facts::glibc_version() const {
  return std::to_string(glibc_major) + "." + std::to_string(glibc_minor);
}

bool process_facts::glibc_uses_guard_install() const noexcept {
  return glibc_major > 2 || (glibc_major == 2 && glibc_minor >= 42);
}

rlimit_value current_rlimit_stack() noexcept {
  rlimit rl{};
  if (::getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return std::nullopt;
  return static_cast<std::uint64_t>(rl.rlim_cur);
}

std::string size_text(std::uint64_t bytes) {
  constexpr std::uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024, TiB = GiB * 1024;
  if (bytes >= TiB && bytes % TiB == 0) return std::to_string(bytes / TiB) + " TiB";
  if (bytes >= GiB && bytes % GiB == 0) return std::to_string(bytes / GiB) + " GiB";
  if (bytes >= MiB && bytes % MiB == 0) return std::to_string(bytes / MiB) + " MiB";
  if (bytes >= KiB && bytes % KiB == 0 && bytes < 64 * MiB) return std::to_string(bytes / KiB) + " KiB";
  if (bytes < MiB) return std::to_string(bytes) + " B";
  // Large and not a round number: one decimal is what a reader wants.
  char buf[32];
  const bool gib = bytes >= GiB;
  std::snprintf(buf, sizeof buf, "%.1f %s", static_cast<double>(bytes) / static_cast<double>(gib ? GiB : MiB),
                gib ? "GiB" : "MiB");
  return buf;
}

std::string size_text(rlimit_value v) { return v ? size_text(*v) : std::string("unlimited"); }

}  // namespace weft::kmodel
