// SPDX-License-Identifier: Apache-2.0
// weft-compare — the main job (DESIGN §7): the same workloads on weft goroutines (pure copying,
// the default, in-place only, segmented), pthreads, kernel-model clone tasks, Go and Boost.Fiber;
// one table
// of figures and ratios to pthreads on the terminal, a Markdown report and an SVG chart.
//
// The harness process only orchestrates: every (system, workload) pair runs in a child — this
// program re-exec'd with a hidden flag, or the Go program built from bench/go/compare.go — so a
// limit reached or a crash stays in the child, every column gets a fresh process to measure,
// and one weft runtime per process is never a constraint.  Files, one concept each:
//
//   args        the command line           workloads   what is measured, at which sizes
//   systems     the columns                child       running a child; the result protocol
//   run_weft    workloads on goroutines    run_threads workloads on pthreads / clone tasks
//   probe       parked tasks, how many fit limits      naming the limit threads hit (kmodel)
//   recurse*    the growth recursion       measure     /proc readings, medians
//   go_system   building the Go column     report*     the table, Markdown and SVG writers
//   run_fiber   workloads on Boost.Fiber (the boost-fiber column, when Boost.Fiber was found)
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <gnu/libc-version.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/compare/args.hpp"
#include "bench/compare/child.hpp"
#include "bench/compare/go_system.hpp"
#include "bench/compare/limits.hpp"
#include "bench/compare/measure.hpp"
#include "bench/compare/report.hpp"
#include "bench/compare/run.hpp"
#include "weft/kmodel.hpp"

namespace wc = weft_compare;
namespace km = weft::kmodel;

namespace {

// ---- the child: weft-compare --child-run SYSTEM WORKLOAD key=value ... -----------------------

int child_main(const std::vector<std::string>& args) {
  if (args.size() < 2) {
    std::fprintf(stderr, "weft-compare: %s needs a system and a workload\n", wc::child_flag);
    return 2;
  }
  const wc::system_desc* sys = nullptr;
  const wc::workload_desc* wl = nullptr;
  for (const wc::system_desc& s : wc::all_systems())
    if (args[0] == s.name) sys = &s;
  for (const wc::workload_desc& w : wc::all_workloads())
    if (args[1] == w.name) wl = &w;
  if (!sys || !wl || sys->id == wc::system_id::go) {
    std::fprintf(stderr, "weft-compare: no such child: %s %s\n", args[0].c_str(), args[1].c_str());
    return 2;
  }
  try {
    wc::params p = wc::parse_params(std::vector<std::string>(args.begin() + 2, args.end()));
    if (sys->id == wc::system_id::boost_fiber) return wc::run_fiber_child(wl->id, p);
    return sys->is_weft ? wc::run_weft_child(sys->id, wl->id, p) : wc::run_thread_child(sys->id, wl->id, p);
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::fprintf(stderr, "weft-compare: %s on %s: %s\n", wl->name, sys->name, what.c_str());
    return what.rfind("not available", 0) == 0 ? wc::exit_unavailable : 1;
  }
}

// ---- the harness ----------------------------------------------------------------------------

std::string self_path() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::system_error(ec, "cannot find this program (/proc/self/exe)");
  return p.string();
}

// /proc/loadavg: "0.52 0.58 0.59 3/420 12345": the 1-minute load average, and the tasks
// runnable right now (the harness itself among them).  Negative when unreadable.
// WEFT_COMPARE_LOADAVG names another file in that format (the tests use it to play a busy
// machine).
struct load_reading {
  double avg1 = -1;
  double runnable = -1;
};
load_reading read_load() {
  const char* alt = std::getenv("WEFT_COMPARE_LOADAVG");
  std::ifstream f(alt && *alt ? alt : "/proc/loadavg");
  load_reading r;
  double avg5, avg15;
  long running = 0, total = 0;
  char slash = 0;
  if (f >> r.avg1 >> avg5 >> avg15 >> running >> slash >> total && slash == '/') r.runnable = static_cast<double>(running);
  return r;
}

// A private directory for the Go column's program and build cache, removed at exit: build
// artefacts stay out of the report folder.
struct scratch_dir {
  std::string path;
  scratch_dir() {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/weft-compare.XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::system_error(errno, std::generic_category(), "cannot create a directory like " + tmpl);
    path = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

unsigned usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return static_cast<unsigned>(CPU_COUNT(&set));
}

struct harness {
  wc::config cfg;
  wc::report rep;
  std::string self;
  wc::go_program go;
  wc::steady::time_point t0 = wc::steady::now();

  void progress(const std::string& msg) const {
    std::fprintf(stderr, "weft-compare: [%5.1fs] %s\n", wc::seconds_since(t0), msg.c_str());
    std::fflush(stderr);
  }

  // Goroutines get goroutine sizes, threads thread sizes.
  wc::sizes sizes_of(wc::system_id s) const {
    wc::sizes z = wc::describe(s).goroutines ? rep.goroutine_sizes : rep.thread_sizes;
    // Boost.Fiber's first skynet(1M) tree takes 8-20 s here (a fresh malloc'd stack per fiber,
    // a page fault each): below --full it runs that one tree, no warm one.
    if (s == wc::system_id::boost_fiber && cfg.sc != wc::scale::full) z.skynet_reps = 0;
    return z;
  }

  // The metrics a child of workload w at procs fills (the parked child fills capacity too).
  std::vector<const wc::metric_desc*> metrics_of(wc::workload w, bool capacity, unsigned procs) const {
    std::vector<const wc::metric_desc*> out;
    for (const wc::metric_desc& m : wc::all_metrics()) {
      bool mine = m.from == w && m.procs == procs;
      if (w == wc::workload::parked && m.from == wc::workload::capacity) mine = capacity;
      if (w == wc::workload::parked && m.from == wc::workload::parked) mine = selected(wc::workload::parked);
      if (mine) out.push_back(&m);
    }
    return out;
  }

  bool selected(wc::workload w) const {
    for (wc::workload x : cfg.workloads)
      if (x == w) return true;
    return false;
  }

  // Between children: none of the harness's own is running, so what is runnable besides the
  // harness is other processes' work.
  double others_sum = 0;
  void sample_load() {
    load_reading l = read_load();
    if (rep.load_start < 0) rep.load_start = l.avg1;
    if (l.runnable < 0) return;
    double others = std::max(0.0, l.runnable - 1);
    others_sum += others;
    ++rep.samples;
    rep.others_mean = others_sum / rep.samples;
    rep.others_max = std::max(rep.others_max, others);
  }

  // The workloads issue 21 added run, below --full, on the default weft column only (with Go,
  // Boost.Fiber and the threads): the other weft columns differ in how stacks grow, which
  // these workloads do not exercise, and they would double the default run.
  static bool added_workload(wc::workload w) {
    return w == wc::workload::burst || w == wc::workload::chanpp || w == wc::workload::skynet || w == wc::workload::create;
  }

  void run_one(wc::system_id s, wc::workload w, bool capacity, unsigned procs) {
    const wc::system_desc& d = wc::describe(s);
    const wc::sizes z = sizes_of(s);
    std::vector<const wc::metric_desc*> ms = metrics_of(w, capacity, procs);
    const char* wname = wc::describe(w).name;
    std::string skip = wc::not_applicable(s, w);
    if (skip.empty() && s == wc::system_id::go && !go.ok) skip = go.why_not;
    if (skip.empty() && cfg.sc != wc::scale::full && added_workload(w) && d.is_weft && s != wc::system_id::weft)
      skip = "run at --full only: the default run measures this workload on the weft column (the other weft "
             "columns differ in how stacks grow, which it does not exercise)";
    if (!skip.empty()) {
      for (const wc::metric_desc* m : ms) rep.cells[{s, m->key}] = {wc::cell::unavailable, 0, skip, ""};
      return;
    }
    sample_load();
    std::vector<std::string> argv;
    if (s == wc::system_id::go) {
      argv = {go.path, wname};
    } else {
      argv = {self, wc::child_flag, d.name, wname};
    }
    for (const std::string& p : wc::child_params(w, z, capacity, procs)) argv.push_back(p);
    // The default run keeps to its budget: a child that hangs gets what is left of it.
    unsigned deadline = wc::child_deadline_seconds(w, z);
    if (cfg.sc != wc::scale::full) {
      double left = (cfg.sc == wc::scale::quick ? 100.0 : 165.0) - wc::seconds_since(t0);
      deadline = std::min(deadline, static_cast<unsigned>(std::max(15.0, left)));
    }
    wc::child_outcome o = wc::run_child(argv, std::chrono::seconds(deadline));

    std::string summary;
    for (const wc::metric_desc* m : ms) {
      wc::cell c;
      auto it = o.values.find(m->child_key);
      if (it != o.values.end()) {
        c.state = wc::cell::ok;
        c.value = it->second;
        if (auto warm = o.values.find(std::string(m->child_key) + "_warm"); warm != o.values.end())
          rep.extra[{s, wc::warm_key(*m)}] = warm->second;
        if (m->from == wc::workload::capacity) c.stop = o.stop;
        summary += (summary.empty() ? "" : ", ") + wc::label_of(rep, *m, true) + " " + wc::format_cell(*m, c);
      } else if (o.ok) {
        c.state = wc::cell::failed;
        c.why = "the child reported no " + std::string(m->child_key);
      } else {
        c.state = o.exit_status == wc::exit_unavailable ? wc::cell::unavailable : wc::cell::failed;
        c.why = o.failure;
      }
      rep.cells[{s, m->key}] = c;
    }
    for (const auto& [k, v] : o.values) {
      bool metric = false;
      for (const wc::metric_desc* m : ms) metric |= k == m->child_key || k == std::string(m->child_key) + "_warm";
      if (!metric) rep.extra[{s, procs ? k + "_p" + std::to_string(procs) : k}] = v;
    }
    for (const auto& [k, v] : o.texts) rep.texts[{s, k}] = v;
    for (const std::string& n : o.notes) {
      if (s == wc::system_id::go && n.rfind("go ", 0) == 0) {
        go_version = n.substr(3);
        continue;
      }
      auto& ns = rep.notes[s];
      if (std::find(ns.begin(), ns.end(), n) == ns.end()) ns.push_back(n);
    }
    std::string status = o.ok ? summary : (o.exit_status == wc::exit_unavailable ? "not available: " : "FAILED: ") + o.failure;
    if (!o.ok && !summary.empty()) status = summary + "; then " + status;
    if (o.ok && !o.stop.empty()) status += " (stopped: " + o.stop + ")";
    char head[64];
    std::snprintf(head, sizeof head, "%-9s %-15s", (std::string(wname) + (procs ? " p" + std::to_string(procs) : "")).c_str(), d.name);
    char took[32];
    std::snprintf(took, sizeof took, "  [%.1f s]", o.seconds);
    progress(std::string(head) + status + took);
  }

  std::string go_version;
};

std::string machine_line(const std::string& go_version) {
  struct utsname u;
  std::string kernel = ::uname(&u) == 0 ? std::string(u.sysname) + " " + u.release + " " + u.machine : "unknown kernel";
  std::string s = std::to_string(usable_cpus()) + " CPUs, " + kernel + ", glibc " + gnu_get_libc_version();
  s += go_version.empty() ? ", no Go" : ", " + go_version;
  return s;
}

}  // namespace

// --servers: weft-netbench, the server comparison (issue 18), is a sibling program (it starts
// servers and a load client of its own); the harness runs it after the report and keeps its
// table beside it.  It stops by itself after its fixed duration; 15 minutes is a generous cap.
void run_servers(harness& h, const std::string& md) {
  const std::filesystem::path bin = std::filesystem::path(h.self).parent_path().parent_path() / "net" / "weft-netbench";
  if (!std::filesystem::exists(bin)) {
    h.progress("servers: " + bin.string() + " is not built here (a build without bench/net): skipped");
    return;
  }
  const char* seconds = h.cfg.sc == wc::scale::quick ? "2" : h.cfg.sc == wc::scale::full ? "10" : "5";
  std::vector<std::string> argv = {bin.string(), "--seconds", seconds, "--rounds", "1"};
  if (h.cfg.sc == wc::scale::quick) argv.insert(argv.end(), {"--conns", "50"});
  h.progress("servers: running " + bin.string() + " --seconds " + seconds);
  const wc::child_outcome o = wc::run_child(argv, std::chrono::seconds(900));
  std::string text;
  for (std::string line : o.notes) {  // its lines are not the child protocol's: kept as notes
    const std::string tag = "unparsed result line: ";
    if (line.compare(0, tag.size(), tag) == 0) line.erase(0, tag.size());
    text += line + "\n";
  }
  if (!o.ok) text += "weft-netbench failed: " + o.failure + "\n";
  std::ofstream(h.cfg.out + "/servers.txt") << text;
  std::ofstream(md, std::ios::app) << "\n## Servers (weft-netbench)\n\n```\n" << text << "```\n";
  std::fputs(text.c_str(), stdout);
  h.progress(std::string("servers: ") + (o.ok ? "wrote " : "FAILED, wrote ") + h.cfg.out + "/servers.txt");
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == wc::child_flag) return child_main(std::vector<std::string>(args.begin() + 1, args.end()));

  harness h;
  try {
    h.cfg = wc::parse_args(args);
  } catch (const wc::usage_error& e) {
    std::fprintf(stderr, "weft-compare: %s\n\n", e.what());
    wc::print_usage(stderr);
    return 2;
  }
  if (h.cfg.help) {
    wc::print_usage(stdout);
    return 0;
  }

  try {
    h.self = self_path();
    std::error_code ec;
    std::filesystem::create_directories(h.cfg.out, ec);
    if (ec) throw std::system_error(ec, "cannot create the output directory " + h.cfg.out);

    wc::report& r = h.rep;
    r.command = "weft-compare";
    for (const std::string& a : args) r.command += " " + a;
    r.sc = h.cfg.sc;
    r.systems = h.cfg.systems;
    r.workloads = h.cfg.workloads;
    const km::system_snapshot snap = km::take_snapshot();
    r.mem_available = snap.mem_available;
    r.max_map_count = snap.max_map_count;
    r.goroutine_sizes = wc::sizes_for(h.cfg.sc, false, h.cfg.depth, snap.mem_available);
    r.thread_sizes = wc::sizes_for(h.cfg.sc, true, h.cfg.depth, snap.mem_available);
    r.limits.push_back("limits: vm.max_map_count " + wc::with_commas(snap.max_map_count) + ", kernel.pid_max " +
                       wc::with_commas(snap.pid_max) + ", kernel.threads-max " + wc::with_commas(snap.threads_max) +
                       ", RLIMIT_NPROC " + (snap.nproc_limit ? wc::with_commas(*snap.nproc_limit) : std::string("unlimited")) +
                       (snap.nproc_enforced ? "" : " (not enforced: root)") + ", RLIMIT_STACK " +
                       km::size_text(km::current_rlimit_stack()));
    r.limits.push_back("memory: MemAvailable " + km::size_text(snap.mem_available) + ", overcommit_memory " +
                       std::to_string(snap.overcommit_memory));
    if (!wc::have_boost_fiber())
      r.absent.push_back(std::string("boost-fiber: no column in this build: ") + wc::boost_fiber_absent_reason());
    for (wc::system_id s : r.systems) {
      try {
        r.config[s] = wc::configuration(s);
      } catch (const std::exception& e) {
        r.config[s] = std::string("(cannot describe: ") + e.what() + ")";
      }
    }

    h.progress("output in " + h.cfg.out + "/; " + std::to_string(r.systems.size()) + " systems, " +
               std::to_string(r.workloads.size()) + " workloads, " + to_string(h.cfg.sc) + " sizes");
    h.sample_load();  // before anything of the harness's own has run
    bool want_go = std::find(r.systems.begin(), r.systems.end(), wc::system_id::go) != r.systems.end();
    std::optional<scratch_dir> scratch;
    if (want_go) {
      scratch.emplace();
      h.go = wc::prepare_go(scratch->path);
      h.progress(h.go.ok ? "built " + h.go.path + " (" + std::to_string(static_cast<int>(h.go.build_seconds + 0.5)) + " s)"
                         : "go: " + h.go.why_not);
    }

    // Workload by workload, every system in turn: the columns of a row are measured close
    // together in time, so a burst of load elsewhere on the machine hits one row, not one column.
    const bool capacity = h.selected(wc::workload::capacity);
    for (const wc::workload_desc& wd : wc::all_workloads()) {
      const wc::workload w = wd.id;
      if (w == wc::workload::capacity) continue;  // the parked child probes it
      bool run = h.selected(w) || (w == wc::workload::parked && capacity);
      if (!run) continue;
      for (unsigned procs : wc::procs_of(w))
        for (wc::system_id s : r.systems) h.run_one(s, w, w == wc::workload::parked && capacity, procs);
    }
    r.wall_seconds = wc::seconds_since(h.t0);
    r.machine = machine_line(h.go_version);
    h.sample_load();
    r.cpus = usable_cpus();

    wc::write_table(stdout, r);
    const std::string md = h.cfg.out + "/report.md", svg = h.cfg.out + "/ratios.svg";
    wc::write_svg(svg, r);
    wc::write_markdown(md, r, "ratios.svg");
    h.progress("wrote " + md + " and " + svg);
    if (h.cfg.servers) run_servers(h, md);
    if (std::string warn = r.load_warning(); !warn.empty()) h.progress("WARNING: " + warn);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft-compare: %s\n", e.what());
    return 1;
  }
  return 0;
}
