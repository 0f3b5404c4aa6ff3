// SPDX-License-Identifier: Apache-2.0
// report_markdown.cpp — the Markdown report: the machine, the command, the chart, one table of
// figures with ratios to Go and to pthread, how many fit, the growth details, what each column and
// workload is, and every failure with its reason.
#include <algorithm>
#include <sstream>

#include "bench/compare/limits.hpp"
#include "bench/compare/report.hpp"

namespace weft_compare {

namespace {

std::string md_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else out += c;
  }
  return out;
}

std::string count_text(double v) { return with_commas(static_cast<std::uint64_t>(v < 0 ? 0 : v)); }

}  // namespace

void write_markdown(const std::string& path, const report& r, const std::string& svg_name) {
  std::ostringstream md;
  footnotes notes;
  const std::vector<const metric_desc*> rows = r.rows();
  md << "# weft-compare: goroutines, pthreads, kernel-model clone tasks, Go and Boost.Fiber\n\n";
  md << "- machine: " << r.machine << "\n";
  if (std::string l = r.load_text(); !l.empty()) md << "- load: " << l << "\n";
  for (const std::string& l : r.limits) md << "- " << l << "\n";
  md << "- command: `" << r.command << "` (" << to_string(r.sc) << " sizes), wall time "
     << static_cast<int>(r.wall_seconds + 0.5) << " s\n\n";
  if (std::string w = r.load_warning(); !w.empty()) md << "> **Warning:** " << w << "\n\n";
  for (const std::string& a : r.absent) md << "> **Note:** " << md_escape(a) << "\n\n";
  md << "Each figure is per task and is a **single-run** figure: what the first repetition in a fresh child "
        "process measures (the first batch, the first tree: what a program that runs once sees).  Beside it, "
        "labelled *warm*, the median of the repetitions that followed in the same process.  Under them, the "
        "single-run figure's ratio to Go's, Boost.Fiber's and pthread's: 0.5× go is half of what Go takes.  Lower "
        "is better, except how many fit.  Absolute times are noisy on a shared machine; ratios from one run are "
        "what to compare.\n\n";
  const char* ref = describe(r.reference()).name;
  md << "![each figure, and its ratio to " << ref << " (log scale)](" << svg_name << ")\n\n";

  md << "## Results\n\n|  |";
  for (system_id s : r.systems) md << " " << describe(s).name << " |";
  md << "\n|---|";
  for (std::size_t j = 0; j < r.systems.size(); ++j) md << "---:|";
  md << "\n";
  for (const metric_desc* m : rows) {
    md << "| " << md_escape(label_of(r, *m, false)) << " |";
    for (system_id s : r.systems) {
      const cell* c = r.find(s, m->key);
      if (c && c->state == cell::ok) {
        md << " " << format_cell(*m, *c);
        if (std::string w = warm_text(r, s, *m); !w.empty()) md << "<br>*" << w << "*";
        if (std::string q = r.ratios_line(s, m->key, " · "); !q.empty()) md << "<br>" << q;
      } else {
        md << " " << missing_text(c, notes, s);
      }
      md << " |";
    }
    md << "\n";
  }
  md << "\n";

  bool capacity = false, grow = false;
  for (workload w : r.workloads) {
    capacity |= w == workload::capacity;
    grow |= w == workload::grow;
  }
  if (capacity) {
    md << "## How many fit\n\n";
    md << "Each column's probe parks tasks until something gives: a limit of the system (named), or the "
          "harness's cap on count, memory or time";
    if (r.sc != scale::full) md << " (this run's caps keep clear of kernel.pid_max and threads-max, which are "
                                   "machine-wide; `--full` goes to the real thread limit)";
    md << ".  In the ratios, ≥ marks a count the cap stopped (a lower bound) and ~ a comparison with the "
          "kernel model's estimate of where a capped thread probe would have stopped.\n\n";
    for (system_id s : r.systems) {
      const cell* c = r.find(s, "capacity");
      if (!c) continue;
      md << "- **" << describe(s).name << "**: ";
      if (c->state != cell::ok) {
        md << (c->state == cell::unavailable ? "not available: " : "failed: ") << md_escape(c->why) << "\n";
        continue;
      }
      md << md_escape(stop_phrase(*c, s));
      if (auto secs = r.extra_of(s, "capacity_seconds")) md << " (" << static_cast<int>(*secs * 10 + 0.5) / 10.0 << " s)";
      md << ".";
      if (std::string e = r.text_of(s, "capacity_estimate"); !e.empty())
        md << " The kernel model's estimate before the first: " << md_escape(e) << ".";
      else if (std::string p = projected_capacity(r, s); !p.empty())
        md << " Projected from the measured cost: " << p << ".";
      md << "\n";
    }
    md << "\n";
  }

  if (grow) {
    md << "## Stack growth\n\nA fresh task recurses " << r.goroutine_sizes.depth
       << " frames and returns; the table's figure is the cold first run (single-run); here also the median "
          "from start to join over the " << r.goroutine_sizes.grow_reps
       << " warm runs after it (and their mean: Google Benchmark reports means, and the "
          "occasional slow run — a scan that gave a pooled stack's pages back, another process — weighs "
          "in it).\n\n| | warm median | warm mean | frame | cold first run | stack grows per run | copies per run | bytes copied per run |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (system_id s : r.systems) {
      const cell* c = r.find(s, "grow_us");
      if (!c || c->state != cell::ok) continue;
      auto show = [&](const char* key, auto fmt) {
        std::optional<double> v = r.extra_of(s, key);
        return v ? fmt(*v) : std::string("—");
      };
      const metric_desc& gm = *std::find_if(all_metrics().begin(), all_metrics().end(),
                                            [](const metric_desc& x) { return std::string(x.key) == "grow_us"; });
      md << "| " << describe(s).name << " | " << show("grow_us:warm", [&](double v) { return format_value(gm, v); }) << " | "
         << show("grow_mean_us", [&](double v) { return format_value(gm, v); }) << " | " << show("frame_bytes", [](double v) { return count_text(v) + " B"; })
         << " | " << show("grow_cold_us", [](double v) { return count_text(v) + " µs"; }) << " | "
         << show("grow_grows", [](double v) { char b[32]; std::snprintf(b, sizeof b, "%.1f", v); return std::string(b); })
         << " | " << show("grow_copies", [](double v) { char b[32]; std::snprintf(b, sizeof b, "%.1f", v); return std::string(b); })
         << " | " << show("grow_copied_bytes", [](double v) { return count_text(v) + " B"; }) << " |\n";
    }
    md << "\n";
  }

  md << "## Columns\n\n";
  for (system_id s : r.systems) {
    md << "- **" << describe(s).name << "**: " << md_escape(r.config.count(s) ? r.config.at(s) : std::string()) << "\n";
  }
  md << "\n## Workloads\n\n";
  const sizes& g = r.goroutine_sizes;
  const sizes& t = r.thread_sizes;
  for (workload w : r.workloads) {
    md << "- **" << describe(w).title << "**: ";
    switch (w) {
      case workload::spawn:
        md << "start a task that does nothing and join it: " << count_text(g.spawn_batched) << " goroutines / "
           << count_text(t.spawn_batched) << " threads in batches of " << g.batch << " (start the batch, then join it), and "
           << count_text(g.spawn_one) << " / " << count_text(t.spawn_one) << " one at a time; median of " << g.spawn_reps
           << " repetitions.";
        break;
      case workload::pingpong:
        md << "two tasks on one CPU hand it to each other by yielding (weft::yield on one P, runtime.Gosched "
              "with GOMAXPROCS=1, sched_yield with both threads pinned to one CPU); the figure is one round trip "
              "(two switches), over "
           << count_text(g.pingpong_n) << " / " << count_text(t.pingpong_n) << " round trips.";
        break;
      case workload::burst:
        md << count_text(g.burst_n) << " goroutines spawned one after another at procs 1 (so all exist before the "
              "first runs), then waited on with a wait group; the figure is per goroutine (issue 21).";
        break;
      case workload::chanpp:
        md << "two tasks hand a value back and forth over two unbuffered channels (weft::chan, Go's chan, "
              "boost::fibers::unbuffered_channel; two POSIX semaphores between two threads), at procs 1 and 2; "
              "the figure is one round trip, over "
           << count_text(g.chanpp_n) << " / " << count_text(t.chanpp_n) << " round trips.";
        break;
      case workload::skynet:
        md << "the skynet tree (github.com/atemerev/skynet, as bench/sync_bench.cpp's BM_WeftSkynet and "
              "bench/go/skynet.go): "
           << count_text(static_cast<double>(g.skynet_leaves)) << " leaves, ten children per node, each leaf sends its "
              "number up an unbuffered channel and each node sums ten; the figure is the whole first tree, the "
              "warm one the median of " << g.skynet_reps << " more"
           << (r.sc == scale::full ? "" : " (boost-fiber: its first tree only below --full, which takes 10-30 s here)") << ".";
        break;
      case workload::create:
        md << count_text(g.create_n) << " tasks created that each park on a channel nobody sends on; the figure "
              "is the time from the first spawn until all have started, per task, at procs 1 and 2 (issue 21's "
              "\"1M parked created\": --full makes 1,000,000).";
        break;
      case workload::grow:
        md << "a fresh task recurses " << g.depth
           << " frames of about 440 bytes (WEFT_STACK_CHECK at every frame on weft, -fsplit-stack prologues "
              "on weft-segmented, plain recursion on threads and Go).";
        break;
      case workload::parked:
        md << count_text(g.parked_n) << " goroutines / " << count_text(t.parked_n)
           << " threads park (a channel receive on weft, Go and Boost.Fiber, a futex on threads); the growth of "
              "VmRSS, VmPTE, VmSize and the VMA count of the child process, divided by the count.";
        break;
      case workload::capacity:
        md << "after the parked ones, more until something gives: caps " << (g.capacity_cap ? count_text(g.capacity_cap) : "none")
           << " goroutines / " << (t.capacity_cap ? count_text(t.capacity_cap) : "none (the real limit)") << " threads, "
           << count_text(static_cast<double>(g.capacity_memcap >> 20)) << " MiB of RSS + page tables, "
           << g.capacity_seconds << " s.";
        break;
    }
    md << "\n";
  }
  md << "\nEvery column's workload runs in its own child process (a fresh runtime, its own limits and "
        "/proc figures); a column that fails or hits a limit is recorded and the run goes on.\n";

  bool any_notes = !notes.reasons.empty();
  for (const auto& [s, ns] : r.notes) any_notes |= !ns.empty();
  if (any_notes) {
    md << "\n## Notes\n\n";
    for (std::size_t i = 0; i < notes.reasons.size(); ++i) md << "[" << i + 1 << "] " << md_escape(notes.reasons[i]) << "\n\n";
    for (const auto& [s, ns] : r.notes)
      for (const std::string& n : ns) md << "- " << describe(s).name << ": " << md_escape(n) << "\n";
  }

  write_file(path, md.str());
}

}  // namespace weft_compare
