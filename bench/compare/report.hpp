// SPDX-License-Identifier: Apache-2.0
// report.hpp — the results of one run, and the three writers: the terminal table
// (report_table.cpp), the Markdown report (report_markdown.cpp) and the SVG chart
// (report_svg.cpp).  Every figure is shown with its ratio to Go (the question readers ask:
// how does weft compare with Go?) and to pthread beside it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/compare/systems.hpp"
#include "bench/compare/workloads.hpp"

namespace weft_compare {

struct cell {
  enum state_t { not_run, ok, failed, unavailable } state = not_run;
  double value = 0;
  std::string why;   // failed / unavailable: the reason
  std::string stop;  // capacity: "cap", "memcap", "time" or "limit <name> (...)"
};

struct report {
  std::string command;          // as typed
  scale sc = scale::normal;
  std::string machine;          // one line: CPUs, kernel, glibc, Go
  std::vector<std::string> limits;  // the system limits that matter, one per line
  std::vector<std::string> absent;  // columns this build lacks, and why (boost-fiber without Boost.Fiber)
  sizes goroutine_sizes, thread_sizes;
  std::vector<system_id> systems;   // the columns, in order
  std::vector<workload> workloads;  // what ran
  std::map<system_id, std::string> config;         // how each column is set up
  std::map<std::pair<system_id, std::string>, cell> cells;    // (column, metric key)
  std::map<std::pair<system_id, std::string>, double> extra;  // figures outside the table
  std::map<std::pair<system_id, std::string>, std::string> texts;  // figures in words
  std::map<system_id, std::vector<std::string>> notes;
  std::uint64_t mem_available = 0, max_map_count = 0;
  double wall_seconds = 0;
  // The load during the run, from /proc/loadavg.  load_start: the 1-minute load average before
  // the first child (later ones would count the harness's own thread probes: creating 20,000
  // threads lifted it to ~500).  Between children, when none of the harness's own is running:
  // the runnable tasks other than the harness itself, their mean and maximum over `samples`
  // readings.  Negative: not read.  cpus: the CPUs the harness may use.
  double load_start = -1, others_mean = -1, others_max = -1;
  unsigned samples = 0, cpus = 0;

  // Non-empty when the load average says other work competed for the CPUs during the run
  // enough to make the figures unreliable: a warning the writers print.
  std::string load_warning() const;
  // "load average 0.4 at the start, at most 1.9, 1.2 at the end (2 CPUs)", or "".
  std::string load_text() const;
  // The column every chart bar is measured against: Go when it measured anything, else pthread.
  system_id reference() const;

  const cell* find(system_id s, const std::string& key) const;
  std::optional<double> extra_of(system_id s, const std::string& key) const;
  std::string text_of(system_id s, const std::string& key) const;
  // The figure divided by pthreads' (both measured, pthreads' non-zero).  How many fit is
  // special: a count the harness's cap stopped is a lower bound, so for kernel threads the
  // kernel model's estimate of their limit stands in for it (validated against real thread
  // creation by tests/kmodel's capacity tests), and goroutine counts stay lower bounds.
  // base: the column to divide by (pthread, or Go).
  std::optional<double> ratio(system_id s, const std::string& key, system_id base = system_id::pthread) const;
  // The ratio as the writers print it, with "≥" (a lower bound) or "~" (against an estimate);
  // empty when there is none.
  std::string ratio_text(system_id s, const std::string& key, system_id base = system_id::pthread) const;
  // The ratios under a figure, Go's first: "0.41× go · 0.8× boost-fiber · 0.012× pthread" (sep
  // between them);
  // a column is not compared with itself; empty when there is none.
  std::string ratios_line(system_id s, const std::string& key, const char* sep) const;
  // The rows to show: metrics of the workloads that ran.
  std::vector<const metric_desc*> rows() const;
};

// Where a cell's warm figure is kept (report::extra): the median of the warm repetitions.
std::string warm_key(const metric_desc& m);
// The warm figure beside a cell, formatted ("warm 310 ns"), or "" when there is none.
std::string warm_text(const report& r, system_id s, const metric_desc& m);

// A row's label with the run's sizes filled in (D: the recursion depth, N: the burst's or the
// created tasks' count, L: skynet's leaves).
std::string label_of(const report& r, const metric_desc& m, bool brief);
// The cell's text when it holds no figure: "failed [1]", "n/a [2]", "—".
std::string missing_text(const cell* c, struct footnotes& notes, system_id s);
// Why column s's capacity probe stopped, in words (the table and the Markdown say the same):
// "stopped at the harness's count cap, 20,000 threads", "stopped at 65,530 threads: <limit>".
std::string stop_phrase(const cell& c, system_id s);

// "250 ns", "31.2 µs", "8.4 KiB", "32,458", "2.00"
std::string format_value(const metric_desc& m, double v);
// A capacity cell: "≥20,000" when a cap stopped it, else the count.
std::string format_cell(const metric_desc& m, const cell& c);
// Whether a cap of the harness (count, memory, time) stopped the cell: a lower bound.
bool capped(const cell& c);
// "0.0083×", "1.0×", "33×"
std::string format_ratio(double r);

// Numbered reasons for cells that failed or were not available: the same reason once.
struct footnotes {
  std::vector<std::string> reasons;
  int number(const std::string& why);  // 1-based
};

void write_table(std::FILE* out, const report& r);
// Throw std::runtime_error naming the file if it cannot be written.
void write_markdown(const std::string& path, const report& r, const std::string& svg_name);
void write_svg(const std::string& path, const report& r);
// Writes text to path (truncating it); throws std::runtime_error naming the file.
void write_file(const std::string& path, const std::string& text);

// How many goroutines the machine would hold, from the measured per-task costs: the tightest
// of memory (MemAvailable / (RSS + page tables)), address space and mappings.
std::string projected_capacity(const report& r, system_id s);

}  // namespace weft_compare
