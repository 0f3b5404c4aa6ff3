// SPDX-License-Identifier: Apache-2.0
// weft/kmodel.hpp — the kernel-model layer (namespace weft::kmodel): how Linux and glibc give a
// thread its stack, mirrored in user space and checked against the real system.
//
//   facts.hpp        constants, and this process's glibc and kernel facts
//   rlimit.hpp       the default pthread stack size from RLIMIT_STACK; the main thread's stack
//   stack_cache.hpp  nptl's allocate_stack cache, both guard styles
//   clone.hpp        kernel tasks from raw clone/clone3 on model stacks
//   procfs.hpp       /proc: VIRT, RES, VMAs, stacks, system limits, thread-capacity estimate
//   observe.hpp      the same things measured on this machine, for comparison
//
// Plain threads: all of it; the kernel-model layer needs no runtime.
#pragma once

#include "weft/kmodel/clone.hpp"
#include "weft/kmodel/facts.hpp"
#include "weft/kmodel/observe.hpp"
#include "weft/kmodel/procfs.hpp"
#include "weft/kmodel/rlimit.hpp"
#include "weft/kmodel/stack_cache.hpp"
