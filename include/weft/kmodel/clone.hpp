// SPDX-License-Identifier: Apache-2.0
// weft/kmodel/clone.hpp — kernel tasks made with raw clone/clone3 on stacks from a model cache.
//
// Plain threads: all of it; the kernel-model layer needs no runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "weft/export.hpp"
#include "weft/kmodel/stack_cache.hpp"

namespace weft::kmodel {

enum class clone_call { clone, clone3 };
WEFT_API const char* to_string(clone_call c) noexcept;

// The flags glibc's create_thread passes (nptl/pthread_create.c), less CLONE_SETTLS:
// CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SYSVSEM | CLONE_SIGHAND | CLONE_THREAD |
// CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID.
inline constexpr unsigned long task_clone_flags =
    0x00000100UL | 0x00000200UL | 0x00000400UL | 0x00040000UL | 0x00000800UL | 0x00010000UL | 0x00100000UL |
    0x00200000UL;

// A task's function.  It runs with no TLS of its own, every signal blocked (glibc's internal
// 32 and 33 too; SIGKILL and SIGSTOP cannot be), on the model stack.
// It MAY: use its stack, memory it was given through `arg`, std::atomic, and raw system calls
// made without libc's wrappers (no errno).  It MUST NOT: call libc functions that touch TLS or
// errno (malloc, printf, syscall(), most of libc), use thread_local, throw, take locks a
// pthread might hold, or be built with -fsplit-stack.  Its %fs still points at the creating
// thread's TCB, so the creating thread must outlive it (join before that thread exits).
using task_fn = void (*)(void* arg) noexcept;

// Marks a task function: no sanitizer instrumentation (ThreadSanitizer state, and
// AddressSanitizer's fake stacks, live in TLS) and no stack protector (the canary lives in the
// creator's TCB).
#if defined(__has_attribute)
#if __has_attribute(no_stack_protector)
#define WEFT_KMODEL_NO_SSP __attribute__((no_stack_protector))
#endif
#endif
#ifndef WEFT_KMODEL_NO_SSP
#define WEFT_KMODEL_NO_SSP
#endif
#define WEFT_KMODEL_TASK_FN __attribute__((no_sanitize("address", "thread"))) WEFT_KMODEL_NO_SSP

// A running (or finished, not yet joined) kernel task.  Destroying a joinable task joins it.
class WEFT_API task {
 public:
  task() = default;
  task(task&& o) noexcept;
  task& operator=(task&& o) noexcept;
  ~task();

  bool joinable() const noexcept { return cache_ != nullptr; }
  int tid() const noexcept { return tid_; }
  clone_call call() const noexcept { return call_; }  // clone if clone3 was asked for but is missing
  const allocation& stack() const noexcept { return alloc_; }

  // Waits (futex on the CLONE_CHILD_CLEARTID word) until the kernel has cleared the tid, then
  // returns the stack to its cache the way glibc does.  Throws std::logic_error if not joinable.
  void join();

 private:
  friend WEFT_API task start_task(stack_cache&, clone_call, task_fn, void*, std::size_t, std::optional<std::size_t>);
  stack_cache* cache_ = nullptr;
  allocation alloc_;
  void* descriptor_ = nullptr;
  int tid_ = 0;
  clone_call call_ = clone_call::clone;
};

// Starts fn(arg) on a new kernel task in this process, on a stack from `cache` (which must map
// memory).  stack_size 0 and guard nullopt take the cache's defaults.  Throws resource_error
// naming the call and what ran out (threads, pids, memory, mappings) if the task cannot be made.
WEFT_API task start_task(stack_cache& cache, clone_call how, task_fn fn, void* arg, std::size_t stack_size = 0,
                         std::optional<std::size_t> guard = std::nullopt);

}  // namespace weft::kmodel
