// SPDX-License-Identifier: Apache-2.0
// clone_arch.hpp — the assembly half of clone.cpp (arch/x86_64/clone_x86_64_sysv_elf_gas.S).
#pragma once

#include <cstdint>

namespace weft::kmodel::detail {

// struct clone_args as Linux 5.5+ reads it (include/uapi/linux/sched.h, CLONE_ARGS_SIZE_VER0
// is the first 64 bytes; cgroup is the last field of version 2).
struct clone3_args {
  std::uint64_t flags;
  std::uint64_t pidfd;
  std::uint64_t child_tid;
  std::uint64_t parent_tid;
  std::uint64_t exit_signal;
  std::uint64_t stack;       // lowest address of the stack area
  std::uint64_t stack_size;  // the child starts with sp = stack + stack_size
  std::uint64_t tls;
  std::uint64_t set_tid;
  std::uint64_t set_tid_size;
  std::uint64_t cgroup;
};
static_assert(sizeof(clone3_args) == 88, "clone_args version 2 is 88 bytes");

}  // namespace weft::kmodel::detail

#if defined(__x86_64__)
extern "C" {
// Both return the child's tid in the caller, or -errno; the child runs entry(arg) on the new
// stack and exits (see the .S file for the register contract).
long weft_kmodel_clone_x86_64(unsigned long flags, void* stack_top, int* parent_tid, int* child_tid,
                              void (*entry)(void*), void* arg);
long weft_kmodel_clone3_x86_64(const weft::kmodel::detail::clone3_args* args, unsigned long size,
                               void (*entry)(void*), void* arg);
}
#endif
