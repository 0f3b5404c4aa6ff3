// SPDX-License-Identifier: Apache-2.0
// weft/kmodel/facts.hpp — the constants and per-process facts the kernel-model layer reasons with.
//
// Plain threads: all of it; the kernel-model layer needs no runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "weft/export.hpp"

namespace weft::kmodel {

// glibc nptl on x86_64 (sysdeps/x86_64/nptl/pthreaddef.h, sysdeps/unix/sysv/linux/x86_64/bits/local_lim.h).
inline constexpr std::size_t arch_stack_default_size = std::size_t{2} << 20;  // ARCH_STACK_DEFAULT_SIZE
inline constexpr std::size_t pthread_stack_min = 16384;                       // PTHREAD_STACK_MIN
inline constexpr std::size_t minimal_rest_stack = 2048;                       // MINIMAL_REST_STACK
inline constexpr std::size_t default_stack_cache_max = std::size_t{40} << 20;  // nptl-stack.c
// Linux: fs/exec.c setup_arg_pages (stack_expand) and mm/mmap.c (stack_guard_gap, in pages).
inline constexpr std::size_t exec_stack_expand = 128 * 1024;
inline constexpr std::size_t default_stack_guard_gap_pages = 256;
// kernel/pid.c: once pids wrap, allocation restarts at RESERVED_PIDS.
inline constexpr std::uint64_t reserved_pids = 300;
// madvise(2) advice values added in Linux 6.13 (include/uapi/asm-generic/mman-common.h).
inline constexpr int madv_guard_install = 102;
inline constexpr int madv_guard_remove = 103;

// RLIMIT_STACK (or any rlimit) as a model input: nullopt is RLIM_INFINITY.
using rlimit_value = std::optional<std::uint64_t>;

// What the running process's C library and kernel are, as far as the models need them.
struct WEFT_API process_facts {
  std::size_t page_size = 4096;
  std::size_t static_tls_size = 0;   // glibc's __nptl_tls_static_size_for_stack(): rounded to the alignment
  std::size_t static_tls_align = 64;  // GLRO(dl_tls_static_align)
  std::size_t tcb_size = 0;          // sizeof(struct pthread), TLS_TCB_SIZE on x86_64
  int glibc_major = 0, glibc_minor = 0;
  std::size_t stack_cache_max = default_stack_cache_max;  // glibc.pthread.stack_cache_size tunable
  std::size_t stack_guard_gap = default_stack_guard_gap_pages * 4096;  // bytes (stack_guard_gap= on the kernel command line)
  bool kernel_guard_install = false;  // madvise(MADV_GUARD_INSTALL) works here (Linux 6.13+)
  // Address-space randomisation, as it applies to programs this process execs (personality is
  // inherited across exec).  -1: /proc/sys/kernel/randomize_va_space could not be read.
  int randomize_va_space = -1;
  bool addr_no_randomize = false;    // personality(ADDR_NO_RANDOMIZE), e.g. under `setarch -R`
  // How far below the strings exec may start the stack at random (arch/x86/kernel/process.c
  // arch_align_stack: up to 8 KiB on x86_64 while randomisation is on; 0 when off).
  std::size_t stack_random_offset_max = 0;
  std::string source;                 // how the TLS and TCB sizes were found

  // The facts of this process.  The sizes come from glibc's own private exports
  // (_dl_get_tls_static_info, _thread_db_sizeof_pthread — the ones debuggers and language
  // runtimes read), falling back to __pthread_get_minstack and then to 2.36's x86_64 values;
  // `source` says which.  Never throws.
  static process_facts probe();

  // "2.36"
  std::string glibc_version() const;
  // glibc 2.42 and later guard thread stacks with MADV_GUARD_INSTALL instead of mprotect.
  bool glibc_uses_guard_install() const noexcept;
};

// The RLIMIT_STACK soft limit of this process (nullopt: unlimited or getrlimit failed).
WEFT_API rlimit_value current_rlimit_stack() noexcept;

// "8 MiB", "100000 B", "unlimited": sizes as the tour and the error messages print them.
WEFT_API std::string size_text(std::uint64_t bytes);
WEFT_API std::string size_text(rlimit_value v);

}  // namespace weft::kmodel
