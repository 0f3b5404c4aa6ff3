// systems.hpp — what weft-compare runs the workloads on: the columns of every report.
//
//   weft-copy       goroutines, pure copying: stack_reserve = 0, every doubling copies (Go's way)
//   weft            goroutines with the runtime's defaults (in place inside a 256K slot, then copy)
//   weft-inplace    goroutines that never move: stack_reserve = stack_max = 8 MiB, the size of a
//                   default pthread stack here, committed on touch (the kernel's way)
//   weft-segmented  goroutines with stack_strategy::segmented (new segments, frames never move)
//   pthread         glibc threads with default attributes: the baseline every ratio divides by
//   clone           kernel tasks from raw clone3 on stacks from the kernel model's glibc cache
//   go              Go goroutines (bench/go/compare.go built with the installed go)
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "weft/options.hpp"

namespace weft_compare {

enum class system_id { weft_copy, weft, weft_inplace, weft_segmented, pthread, clone, go };

struct system_desc {
  system_id id;
  const char* name;    // as --only and the child protocol spell it; the column header
  bool goroutines;     // cheap tasks (sized like goroutines) or kernel threads
  bool is_weft;
};
const std::vector<system_desc>& all_systems();
const system_desc& describe(system_id s);

// The in-place-only column: a slot as big as a default pthread stack (RLIMIT_STACK 8 MiB), so
// a goroutine never outgrows it and is never copied.  Bigger (the design's "1G") would cost
// 1 GiB of address space per goroutine: 100K parked goroutines would need 100 TiB of the
// 128 TiB user address space, and 1M could not exist at all.
inline constexpr std::size_t inplace_stack_bytes = std::size_t{8} << 20;

// The runtime options of a weft column (throws std::logic_error for the others).
weft::options weft_options(system_id s);

// How a column is configured, in words, for the report (reads this machine: the default stack
// size, the guard style glibc and the kernel use).
std::string configuration(system_id s);

}  // namespace weft_compare
