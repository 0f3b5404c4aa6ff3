// SPDX-License-Identifier: Apache-2.0
// options.cpp — reading and checking a runtime's configuration.
//
// Every rejection names the variable (or field), the value given and what is allowed, so a
// user who mistyped WEFT_STACK_MIN=3000 learns from one message what to write instead.  The
// rules for stack sizes are the stack pool's (runtime/stack/stack_config.hpp, stack_rules),
// written once there; this file says them in terms of the options (0 or unset: the default).
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <sched.h>
#include <unistd.h>

#include "runtime/stack/stack_config.hpp"
#include "weft/errors.hpp"
#include "weft/options.hpp"

namespace weft {
namespace {

namespace stack_rules = detail::stack_rules;

constexpr unsigned kMaxProcs = 1024;

std::string size_text(std::size_t v) {
  if (v >= (std::size_t{1} << 40) && v % (std::size_t{1} << 40) == 0) return std::to_string(v >> 40) + "T";
  if (v >= (std::size_t{1} << 30) && v % (std::size_t{1} << 30) == 0) return std::to_string(v >> 30) + "G";
  if (v >= (std::size_t{1} << 20) && v % (std::size_t{1} << 20) == 0) return std::to_string(v >> 20) + "M";
  if (v >= 1024 && v % 1024 == 0) return std::to_string(v >> 10) + "K";
  return std::to_string(v);
}

[[noreturn]] void reject(std::string_view name, std::string_view value, std::string_view allowed) {
  throw config_error("weft: " + std::string(name) + "='" + std::string(value) + "' is not valid; allowed: " +
                     std::string(allowed));
}

// Parses "123", "64K", "1M", "2g" (powers of 1024).  Rejects anything else, overflow included.
std::size_t parse_size(const char* name, const char* text, std::string_view allowed) {
  std::string_view s(text);
  if (s.empty() || s[0] < '0' || s[0] > '9') reject(name, s, allowed);
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno == ERANGE) reject(name, s, allowed);
  std::string_view rest(end);
  unsigned shift = 0;
  if (rest == "K" || rest == "k") shift = 10;
  else if (rest == "M" || rest == "m") shift = 20;
  else if (rest == "G" || rest == "g") shift = 30;
  else if (rest == "T" || rest == "t") shift = 40;
  else if (!rest.empty()) reject(name, s, allowed);
  if (shift && v > (~0ULL >> shift)) reject(name, s, allowed);
  return static_cast<std::size_t>(v << shift);
}

unsigned long long parse_uint(const char* name, const char* text, unsigned long long max, std::string_view allowed) {
  std::string_view s(text);
  if (s.empty() || s.size() > 19) reject(name, s, allowed);
  for (char c : s)
    if (c < '0' || c > '9') reject(name, s, allowed);
  unsigned long long v = std::strtoull(text, nullptr, 10);
  if (v > max) reject(name, s, allowed);
  return v;
}

constexpr const char* kBoolAllowed = "0 or 1 (also true/false, yes/no, on/off)";

bool parse_bool(const char* name, const char* text) {
  std::string_view s(text);
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off" || s.empty()) return false;
  reject(name, s, kBoolAllowed);
}

// WEFT_DEBUG: "0", "1" (and the other spellings of a bool: the checks), or a comma-separated
// list of key=value: checks=0|1, schedtrace=MS (0 to 3600000), scheddetail=0|1.
constexpr const char* kDebugAllowed =
    "0, 1, or a comma-separated list of checks=0|1, schedtrace=MS (0 to 3600000) and scheddetail=0|1, "
    "e.g. WEFT_DEBUG=schedtrace=1000,scheddetail=1";
void parse_debug(const char* text, options& o) {
  constexpr std::string_view kAllowed = kDebugAllowed;
  std::string_view all(text);
  if (all.find('=') == std::string_view::npos) {
    if (all.find(',') != std::string_view::npos) reject("WEFT_DEBUG", all, kAllowed);
    std::string_view b = all;
    if (b == "1" || b == "true" || b == "yes" || b == "on") o.debug = true;
    else if (b == "0" || b == "false" || b == "no" || b == "off" || b.empty()) o.debug = false;
    else reject("WEFT_DEBUG", all, kAllowed);
    return;
  }
  while (!all.empty()) {
    const std::size_t comma = all.find(',');
    const std::string_view item = all.substr(0, comma);
    all = comma == std::string_view::npos ? std::string_view{} : all.substr(comma + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) reject("WEFT_DEBUG", text, kAllowed);
    const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    const std::string v(value);
    if (key == "checks" && (value == "0" || value == "1")) o.debug = value == "1";
    else if (key == "scheddetail" && (value == "0" || value == "1")) o.scheddetail = value == "1";
    else if (key == "schedtrace") {
      // Named whole in the message: "schedtrace=abc", not just "abc".
      if (v.empty() || v.size() > 7 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoull(v) > 3'600'000)
        reject("WEFT_DEBUG", text, kAllowed);
      o.schedtrace = std::chrono::milliseconds(std::stoll(v));
    }
    else reject("WEFT_DEBUG", text, kAllowed);
  }
}

}  // namespace

// Chosen by measurement (bench/reserve_sweep.cpp; the table is in BENCHMARKS.md, "Stack growth
// (issue 5)", the reasons in BENCHMARKS.md, "Architecture (issue 17)"): stack_min is the smallest size at which a goroutine
// does not grow at its first check, and stack_reserve the smallest reserve under which a busy
// ~100 KB stack never copies.
std::size_t default_stack_min() noexcept { return 8 * 1024; }
//
// in_place's reserve is the default pthread stack on Debian (RLIMIT_STACK 8 MiB): code that fits
// a default thread fits a goroutine.  It costs address space, not memory: the slot's pages
// are committed as the stack grows into them, and guard markers sit only in two bands
// (stack_pool.hpp), so a parked goroutine's page tables stay about one page.
std::size_t default_stack_reserve(stack_strategy strategy) noexcept {
  return strategy == stack_strategy::in_place ? std::size_t{8} << 20 : std::size_t{256} << 10;
}

namespace {

// ---- the options table ----------------------------------------------------------------------
// One row per WEFT_* variable: the variable, the options field(s) it sets, its default as the
// README's table states it ("; " between parts; tests/build/options_readme.py checks the
// README against these rows), whether an empty value is read (as off) or ignored, what it
// accepts (the rejection message's words), and its reader.  from_env walks the rows in order;
// the readers and validate() share the size rules (stack_rules, runtime/stack/stack_config.hpp)
// and the name tables below.

constexpr std::pair<std::string_view, stack_strategy> kStrategies[] = {
    {"in_place", stack_strategy::in_place}, {"copy", stack_strategy::copy}, {"segmented", stack_strategy::segmented}};
constexpr std::pair<std::string_view, guard_mode> kGuards[] = {
    {"automatic", guard_mode::automatic}, {"auto", guard_mode::automatic}, {"madvise", guard_mode::madvise},
    {"mprotect", guard_mode::mprotect}, {"none", guard_mode::none}};

template <class E, std::size_t N>
bool known(const std::pair<std::string_view, E> (&names)[N], E v) {
  for (const auto& n : names)
    if (n.second == v) return true;
  return false;
}
template <class E, std::size_t N>
bool by_name(const std::pair<std::string_view, E> (&names)[N], std::string_view s, E& out) {
  for (const auto& n : names)
    if (n.first == s) {
      out = n.second;
      return true;
    }
  return false;
}

struct option_spec {
  const char* variable;
  const char* field;
  const char* fallback;
  bool empty_counts;
  const char* allowed;
  void (*read)(const option_spec& row, const char* text, options& o);
};

// A size variable's value, which `ok` (a rule of stack_rules, whose words are row.allowed) accepts.
std::size_t read_size(const option_spec& row, const char* v, bool (*ok)(std::size_t) noexcept) {
  const std::string allowed = std::string(row.allowed) + ", in bytes or with a K, M, G or T suffix";
  const std::size_t n = parse_size(row.variable, v, allowed);
  if (!ok(n)) reject(row.variable, v, allowed);
  return n;
}

constexpr option_spec kOptions[] = {
    {"WEFT_PROCS", "procs", "CPUs this process may use", false,
     "an integer from 1 to 1024 (0 or unset: one per CPU this process may use)",
     [](const option_spec& row, const char* v, options& o) {
       o.procs = static_cast<unsigned>(parse_uint(row.variable, v, kMaxProcs, row.allowed));
     }},
    {"WEFT_STACK_MIN", "stack_min", "8K", false, stack_rules::kSize,
     [](const option_spec& row, const char* v, options& o) { o.stack_min = read_size(row, v, stack_rules::size_ok); }},
    {"WEFT_STACK_MAX", "stack_max", "1G", false, stack_rules::kSize,
     [](const option_spec& row, const char* v, options& o) { o.stack_max = read_size(row, v, stack_rules::size_ok); }},
    {"WEFT_STACK_RESERVE", "stack_reserve", "in_place: 8M; segmented: 256K", false, stack_rules::kReserve,
     [](const option_spec& row, const char* v, options& o) {
       o.stack_reserve = read_size(row, v, stack_rules::reserve_ok);
     }},
    {"WEFT_STACK", "strategy", "in_place", false,
     "in_place (the default: stacks never move), copy (Go's copying) or segmented",
     [](const option_spec& row, const char* v, options& o) {
       if (!by_name(kStrategies, v, o.strategy)) reject(row.variable, v, row.allowed);
     }},
    {"WEFT_GUARD", "guard", "automatic", false, "automatic, madvise, mprotect or none",
     [](const option_spec& row, const char* v, options& o) {
       if (!by_name(kGuards, v, o.guard)) reject(row.variable, v, row.allowed);
     }},
    {"WEFT_SCAN_MS", "scan_interval", "100", false,
     "an integer number of milliseconds from 0 (scan only on weft::scan()) to 86400000",
     [](const option_spec& row, const char* v, options& o) {
       o.scan_interval = std::chrono::milliseconds(parse_uint(row.variable, v, 86'400'000, row.allowed));
     }},
    {"WEFT_QUARANTINE", "quarantine", "1 with copy; 0 otherwise", true, kBoolAllowed,
     [](const option_spec& row, const char* v, options& o) { o.quarantine = parse_bool(row.variable, v); }},
    {"WEFT_DEBUG", "debug, schedtrace, scheddetail", "0", true, kDebugAllowed,
     [](const option_spec&, const char* v, options& o) { parse_debug(v, o); }},
};

}  // namespace

options options::from_env() {
  options o;
  for (const option_spec& row : kOptions)
    if (const char* v = std::getenv(row.variable); v && (*v || row.empty_counts)) row.read(row, v, o);
  o.validate();
  return o;
}

void options::validate() const {
  auto field = [](const char* name, std::size_t v, std::string_view allowed) {
    reject(std::string("options::") + name, size_text(v), allowed);
  };
  if (procs > kMaxProcs)
    reject("options::procs", std::to_string(procs), "0 (one per CPU) or an integer from 1 to 1024");
  if (stack_min != 0 && !stack_rules::size_ok(stack_min))
    field("stack_min", stack_min, std::string("0 (the default) or ") + stack_rules::kSize);
  if (!stack_rules::size_ok(stack_max))
    field("stack_max", stack_max, stack_rules::kSize);
  std::size_t min = stack_min ? stack_min : default_stack_min();
  if (!stack_rules::max_ok(stack_max, min)) {
    if (stack_min == 0)
      reject("options::stack_max", size_text(stack_max),
             std::string(stack_rules::kMaxAtLeastMin) + " (" + size_text(min) + ", the default)");
    throw config_error("weft: options::stack_min (WEFT_STACK_MIN) = " + size_text(stack_min) +
                       " is larger than options::stack_max (WEFT_STACK_MAX) = " + size_text(stack_max) +
                       "; allowed: stack_min <= stack_max — lower WEFT_STACK_MIN or raise WEFT_STACK_MAX");
  }
  if (stack_reserve && !stack_rules::reserve_ok(*stack_reserve))
    field("stack_reserve", *stack_reserve, std::string("unset (the default), ") + stack_rules::kReserve);
  // A reserve above stack_max could never be used (no stack grows past stack_max), and it
  // would cost its address space per goroutine: 512G slots exhaust a 47-bit address space at
  // 256 goroutines, after which even malloc fails.
  if (stack_reserve && *stack_reserve > stack_max)
    throw config_error("weft: options::stack_reserve (WEFT_STACK_RESERVE) = " + size_text(*stack_reserve) +
                       " is larger than options::stack_max (WEFT_STACK_MAX) = " + size_text(stack_max) +
                       ", so most of every slot could never be used; allowed: a reserve up to stack_max");
  if (!known(kStrategies, strategy))
    reject("options::strategy", std::to_string(static_cast<int>(strategy)),
           "stack_strategy::in_place, stack_strategy::copy or stack_strategy::segmented");
  if (!known(kGuards, guard))
    reject("options::guard", std::to_string(static_cast<int>(guard)),
           "guard_mode::automatic, guard_mode::madvise, guard_mode::mprotect or guard_mode::none");
  if (strategy == stack_strategy::in_place && stack_reserve && *stack_reserve == 0)
    reject("options::stack_reserve", "0",
           std::string("with strategy in_place (WEFT_STACK=in_place) the reserve is the most a stack can grow to: "
                       "unset (8M) or ") +
               stack_rules::kSize + "; 0 (pure copying) goes with WEFT_STACK=copy");
  if (schedtrace.count() < 0 || schedtrace.count() > 3'600'000)
    reject("options::schedtrace", std::to_string(schedtrace.count()) + "ms", "0 (no trace) to 3600000 ms");
  if (scan_interval.count() < 0)
    reject("options::scan_interval", std::to_string(scan_interval.count()) + "ms", "0 (scan only on weft::scan()) or a positive duration");
}

}  // namespace weft
