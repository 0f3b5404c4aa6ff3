// SPDX-License-Identifier: Apache-2.0
// measure.cpp — /proc readings for the parked-task and capacity workloads.
//
// VmRSS, VmPTE and VmSize come from /proc/self/status (fs/proc/task_mmu.c task_mem: kB, VmPTE
// is the page-table pages of the mm, mm_pgtables_bytes).  VMAs are counted by the kernel model's
// count_vmas (/proc/self/maps lines), the same counter vm.max_map_count limits.
#include "bench/compare/measure.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "bench/compare/child.hpp"
#include "weft/kmodel/procfs.hpp"

namespace weft_compare {

namespace {

// Reads "Key:   123 kB" fields of a /proc file into the given slots (bytes).
struct kb_field {
  const char* key;
  std::uint64_t* out;
};

void read_kb_fields(const char* path, std::initializer_list<kb_field> fields) {
  std::FILE* f = std::fopen(path, "re");
  if (!f) throw std::runtime_error(std::string("cannot open ") + path + ": " + std::strerror(errno));
  char line[256];
  std::size_t found = 0;
  while (std::fgets(line, sizeof line, f)) {
    for (const kb_field& k : fields) {
      std::size_t len = std::strlen(k.key);
      if (std::strncmp(line, k.key, len) == 0 && line[len] == ':') {
        unsigned long long v = 0;
        if (std::sscanf(line + len + 1, "%llu", &v) == 1) {
          *k.out = static_cast<std::uint64_t>(v) * 1024;
          ++found;
        }
      }
    }
  }
  bool failed = std::ferror(f) != 0;
  if (std::fclose(f) != 0) failed = true;
  if (failed) throw std::runtime_error(std::string("cannot read ") + path);
  if (found < fields.size()) throw std::runtime_error(std::string(path) + " lacks a field this harness needs");
}

}  // namespace

proc_reading read_proc() {
  proc_reading r;
  read_kb_fields("/proc/self/status", {{"VmRSS", &r.rss}, {"VmPTE", &r.pte}, {"VmSize", &r.virt}});
  r.vmas = weft::kmodel::count_vmas();
  return r;
}

per_task per_task_delta(const proc_reading& before, const proc_reading& after, std::uint64_t n) {
  auto d = [n](double a, double b) { return n ? (a - b) / static_cast<double>(n) : 0.0; };
  per_task p;
  p.rss = d(static_cast<double>(after.rss), static_cast<double>(before.rss));
  p.pte = d(static_cast<double>(after.pte), static_cast<double>(before.pte));
  p.virt = d(static_cast<double>(after.virt), static_cast<double>(before.virt));
  p.vmas = d(static_cast<double>(after.vmas), static_cast<double>(before.vmas));
  return p;
}

std::uint64_t mem_available() {
  std::uint64_t v = 0;
  read_kb_fields("/proc/meminfo", {{"MemAvailable", &v}});
  return v;
}

void emit_cold_warm(const char* key, const cold_and_warm_ns& c) {
  emit(key, c.cold);
  if (!c.warm.empty()) emit((std::string(key) + "_warm").c_str(), median(c.warm));
}

double median(std::vector<double> xs) {
  if (xs.empty()) throw std::logic_error("median of nothing");
  auto mid = xs.begin() + static_cast<std::ptrdiff_t>(xs.size() / 2);
  std::nth_element(xs.begin(), mid, xs.end());
  return *mid;
}

double mean(const std::vector<double>& xs) {
  double sum = 0;
  for (double x : xs) sum += x;
  return xs.empty() ? 0 : sum / static_cast<double>(xs.size());
}

}  // namespace weft_compare
