// SPDX-License-Identifier: Apache-2.0
// probe.cpp — parked tasks and how many fit.
#include "bench/compare/probe.hpp"

#include <stdexcept>

#include "bench/compare/limits.hpp"
#include "bench/compare/measure.hpp"

namespace weft_compare {

namespace {

void wait_parked(parker& k, std::uint64_t n) {
  const steady::time_point start = steady::now();
  while (k.parked() < n) {
    if (seconds_since(start) > 60)
      throw std::runtime_error("only " + std::to_string(k.parked()) + " of " + std::to_string(n) +
                               " tasks parked within a minute");
    k.sleep(std::chrono::milliseconds(1));
  }
  k.sleep(std::chrono::milliseconds(20));  // the last ones reach their futex, timer or receive
}

}  // namespace

void parked_and_capacity(const params& p, parker& k) {
  const std::uint64_t n = param_u64(p, "n", 10000), cap = param_u64(p, "cap", 0);
  const std::uint64_t memcap = param_u64(p, "memcap", std::uint64_t{2} << 30);
  const double seconds = static_cast<double>(param_u64(p, "seconds", 20));

  const proc_reading before = read_proc();
  std::string error;
  std::uint64_t made = 0;
  for (; made < n; ++made) {
    error = k.start_one();
    if (!error.empty()) break;
  }
  wait_parked(k, made);
  const proc_reading after = read_proc();
  const per_task d = per_task_delta(before, after, made);
  emit("parked_rss", d.rss);
  emit("parked_pte", d.pte);
  emit("parked_vmas", d.vmas);
  emit("parked_virt", d.virt);
  if (!error.empty()) {
    emit_note("could park only " + with_commas(made) + " of " + with_commas(n) + ": " + error);
    if (cap) {
      emit("capacity", static_cast<double>(made));
      emit_stop("limit " + k.diagnose(made, error));
    }
    return;
  }
  if (!cap) return;

  const steady::time_point start = steady::now();
  std::string stop;
  while (stop.empty()) {
    if (made >= cap) {
      stop = "cap";
      break;
    }
    error = k.start_one();
    if (!error.empty()) {
      stop = "limit " + k.diagnose(made, error);
      emit_note("task " + with_commas(made + 1) + " could not be made: " + error);
      break;
    }
    ++made;
    if (made % k.check_every == 0) {
      const proc_reading now = read_proc();
      if (now.rss + now.pte > memcap) stop = "memcap";
      else if (seconds_since(start) > seconds) stop = "time";
    }
  }
  emit("capacity", static_cast<double>(made));
  emit("capacity_seconds", seconds_since(start));
  emit_stop(stop);
}

}  // namespace weft_compare
