// SPDX-License-Identifier: Apache-2.0
// weft-kmodel: the kernel-model tour.  For each thing the kernel and glibc decide about a
// thread's stack, it prints what the model predicts beside what this machine actually does:
//
//   default stack size  the model's rule on this process's RLIMIT_STACK vs pthread_getattr_default_np
//   cache reuse         a create/join sequence on paper vs on real pthreads, step by step
//   main-stack limit    how deep the main thread may recurse vs a child that recurses until SIGSEGV
//   thread capacity     every limit on the number of threads, the one that binds, what the
//                       estimate cannot know from here, and (with --measure-capacity) a child
//                       that creates threads until refused
//   starting at all     the smallest RLIMIT_STACK under which a program starts, with and without
//                       address-space randomisation
//
// The tour itself must survive the limits it describes: under `ulimit -s 16` its main thread
// has a few KiB of stack.  So the main thread only measures its own stack (when there is room
// for that) and then runs the rest on a thread with a stack of its own size; the program is
// linked with -z now (no lazy-binding frames later), and a SIGSEGV says what it was.
//
// Usage: weft-kmodel [--json] [--measure-capacity] [--stack-size=SIZE]
// Exit status: 0 when every comparison agrees, 1 when one does not, 2 for bad arguments.
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

#include <pthread.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <weft/kmodel.hpp>

namespace km = weft::kmodel;

namespace {

struct args {
  bool json = false;
  bool measure_capacity = false;
  std::size_t stack_size = 0;  // 0: the default
};

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: weft-kmodel [--json] [--measure-capacity] [--stack-size=SIZE]\n"
               "  --json               one JSON object on stdout, for scripts\n"
               "  --measure-capacity   also create threads in a child until the system refuses (this takes\n"
               "                       seconds: 1 to 14 s measured on 2-core machines; meanwhile the binding\n"
               "                       limit is used up, and if it is kernel.pid_max, nothing else on the\n"
               "                       machine can fork)\n"
               "  --stack-size=SIZE    thread stack size for the capacity part (K, M or G suffix; default:\n"
               "                       glibc's default for this process)\n");
}

std::optional<std::size_t> parse_size(const char* s) {
  char* end = nullptr;
  if (*s < '0' || *s > '9') return std::nullopt;
  unsigned long long v = std::strtoull(s, &end, 10);
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10, ++end;
  else if (*end == 'M' || *end == 'm') shift = 20, ++end;
  else if (*end == 'G' || *end == 'g') shift = 30, ++end;
  if (*end != '\0' || v == 0 || v > (~0ULL >> (shift + 1))) return std::nullopt;
  return static_cast<std::size_t>(v << shift);
}

std::string hex(std::uintptr_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "%#" PRIxPTR, v);
  return b;
}

std::string js(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o + "\"";
}

std::string js(km::rlimit_value v) { return v ? std::to_string(*v) : "null"; }

// The short sequence the tour replays: one exact reuse, one best fit, one refused by the 4x rule.
std::vector<km::thread_op> tour_sequence() {
  using op = km::thread_op;
  return {op{op::create, 0, 64 * 1024, {}}, op{op::create, 1, 256 * 1024, {}}, op{op::join, 0, 0, {}},
          op{op::join, 1, 0, {}},           op{op::create, 0, 64 * 1024, {}},  op{op::create, 1, 200 * 1024, {}},
          op{op::create, 2, 32 * 1024, {}}, op{op::join, 0, 0, {}},            op{op::join, 1, 0, {}},
          op{op::join, 2, 0, {}}};
}

// ---- surviving tiny stack limits ---------------------------------------------------------

// A SIGSEGV says what it was instead of dying silently.  The message is made before anything
// can fault, and the handler runs on a stack of its own (the main thread's may be gone).
char g_segv_message[256];
alignas(16) char g_altstack[64 * 1024];

void on_segv(int) {
  ssize_t ignored = ::write(2, g_segv_message, std::strlen(g_segv_message));
  (void)ignored;
  std::signal(SIGSEGV, SIG_DFL);  // returning re-faults and dies of it, as without us
}

void report_segv() {
  const std::string text = "weft-kmodel: SIGSEGV (RLIMIT_STACK " + km::size_text(km::current_rlimit_stack()) +
                           "; on the main thread that means its stack ran out)\n";
  std::snprintf(g_segv_message, sizeof g_segv_message, "%s", text.c_str());
  stack_t ss{};
  ss.ss_sp = g_altstack;
  ss.ss_size = sizeof g_altstack;
  struct sigaction sa {};
  sa.sa_handler = on_segv;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (::sigaltstack(&ss, nullptr) != 0 || ::sigaction(SIGSEGV, &sa, nullptr) != 0)
    std::fprintf(stderr, "weft-kmodel: cannot install the SIGSEGV report (continuing without it)\n");
}

// How much further the main thread's stack may grow: RLIMIT_STACK less what is in use above
// the current frame.  The top of [stack] is found without reading /proc (that needs a buffer):
// the exec'd file name is the last string exec put there.
std::size_t main_stack_room() {
  const km::rlimit_value limit = km::current_rlimit_stack();
  if (!limit) return ~std::size_t{0};
  const long page = ::sysconf(_SC_PAGESIZE);
  const auto* execfn = reinterpret_cast<const char*>(::getauxval(AT_EXECFN));
  if (!execfn || page <= 0) return 0;
  const std::uintptr_t top =
      (reinterpret_cast<std::uintptr_t>(execfn) + std::strlen(execfn) + 1 + sizeof(void*) + static_cast<std::uintptr_t>(page) - 1) &
      ~(static_cast<std::uintptr_t>(page) - 1);
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  const std::size_t used = top - here, cap = static_cast<std::size_t>(*limit / static_cast<std::uint64_t>(page) * static_cast<std::uint64_t>(page));
  return cap > used ? cap - used : 0;
}

// What the main-stack measurement needs on the main thread: reading /proc/self/maps, a fork,
// and collecting the child's report (measured well under this).
constexpr std::size_t kMainStackPartNeeds = 64 * 1024;

// The main-stack measurement, made on the main thread before the rest of the tour.
struct main_stack_part {
  bool measured = false;
  km::main_stack_observation observation;
  std::string skipped;  // why not, when not
  std::string error;    // a failure, reported by the tour
};

struct tour_input {
  args a;
  main_stack_part ms;
  int status = 1;
};

int run_tour(const args& a, const main_stack_part& ms);

void* tour_thread(void* p) {
  auto* in = static_cast<tour_input*>(p);
  in->status = run_tour(in->a, in->ms);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  report_segv();
  tour_input in;
  args& a = in.a;
  for (int i = 1; i < argc; ++i) {
    const char* s = argv[i];
    if (std::strcmp(s, "--json") == 0) a.json = true;
    else if (std::strcmp(s, "--measure-capacity") == 0) a.measure_capacity = true;
    else if (std::strncmp(s, "--stack-size=", 13) == 0) {
      std::optional<std::size_t> v = parse_size(s + 13);
      if (!v || *v < km::pthread_stack_min) {
        std::fprintf(stderr, "weft-kmodel: --stack-size='%s' is not valid; give a size of at least 16K\n", s + 13);
        usage(stderr);
        return 2;
      }
      a.stack_size = *v;
    } else if (std::strcmp(s, "--help") == 0 || std::strcmp(s, "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "weft-kmodel: unknown argument '%s'\n", s);
      usage(stderr);
      return 2;
    }
  }

  // The main thread: its own stack's measurement, if there is room, then the rest elsewhere.
  const std::size_t room = main_stack_room();
  if (room < kMainStackPartNeeds) {
    in.ms.skipped = "the tour's main thread has " + km::size_text(room) + " of stack left under RLIMIT_STACK " +
                    km::size_text(km::current_rlimit_stack()) + "; the measurement needs " +
                    km::size_text(kMainStackPartNeeds) + " there";
  } else {
    try {
      in.ms.observation = km::measure_main_stack(km::current_rlimit_stack());
      in.ms.measured = true;
    } catch (const std::invalid_argument& e) {
      in.ms.skipped = e.what();
    } catch (const std::exception& e) {
      in.ms.error = e.what();
    }
  }
  pthread_attr_t attr;
  pthread_t worker;
  if (int e = ::pthread_attr_init(&attr); e != 0) {
    std::fprintf(stderr, "weft-kmodel: pthread_attr_init: %s\n", std::strerror(e));
    return 1;
  }
  if (int e = ::pthread_attr_setstacksize(&attr, std::size_t{8} << 20); e != 0) {
    std::fprintf(stderr, "weft-kmodel: pthread_attr_setstacksize: %s\n", std::strerror(e));
    return 1;
  }
  if (int e = ::pthread_create(&worker, &attr, tour_thread, &in); e != 0) {
    std::fprintf(stderr, "weft-kmodel: cannot start the tour's thread: %s\n", std::strerror(e));
    return 1;
  }
  ::pthread_attr_destroy(&attr);
  if (int e = ::pthread_join(worker, nullptr); e != 0) {
    std::fprintf(stderr, "weft-kmodel: pthread_join: %s\n", std::strerror(e));
    return 1;
  }
  return in.status;
}

namespace {

int run_tour(const args& a, const main_stack_part& ms) {
  bool all_match = true;
  std::string json = "{";
  try {
    const km::process_facts f = km::process_facts::probe();

    // ---- cache reuse first: it needs this process's glibc cache still empty -------------------
    km::cache_config cfg = km::cache_config::for_this_process();
    cfg.map_memory = false;
    km::stack_cache paper(cfg);
    const std::vector<km::thread_op> ops = tour_sequence();
    const auto predicted = km::replay_on_model(paper, ops);
    const auto real = km::replay_on_pthreads(ops);
    const auto verdicts = km::compare_replay(predicted, real);

    // ---- facts ----------------------------------------------------------------------------
    const km::guard_style glibc_guards =
        f.glibc_uses_guard_install() && f.kernel_guard_install ? km::guard_style::madvise : km::guard_style::mprotect;
    const km::system_snapshot snap = km::take_snapshot();
    if (!a.json) {
      std::printf("weft-kmodel: the kernel model beside this machine\n\n");
      std::printf("glibc %s, page %zu, static TLS %zu bytes, struct pthread %zu bytes (%s)\n",
                  f.glibc_version().c_str(), f.page_size, f.static_tls_size, f.tcb_size, f.source.c_str());
      std::printf("thread guards: %s; MADV_GUARD_INSTALL %s; stack cache cap %s; stack_guard_gap %s\n\n",
                  km::to_string(glibc_guards), f.kernel_guard_install ? "available" : "not available",
                  km::size_text(f.stack_cache_max).c_str(), km::size_text(f.stack_guard_gap).c_str());
      std::printf("pid namespace: %s%s; address-space randomisation: randomize_va_space %d%s (stack offset up to %s)\n\n",
                  snap.pid_ns.empty() ? "unknown" : snap.pid_ns.c_str(),
                  snap.init_pid_ns == true ? " (the initial one)"
                  : snap.init_pid_ns == false ? " (not the initial one: the host's pid limits are hidden)"
                                              : "",
                  f.randomize_va_space, f.addr_no_randomize ? ", off for this process (ADDR_NO_RANDOMIZE)" : "",
                  km::size_text(f.stack_random_offset_max).c_str());
    }
    json += "\"facts\":{\"glibc\":" + js(f.glibc_version()) + ",\"page_size\":" + std::to_string(f.page_size) +
            ",\"static_tls\":" + std::to_string(f.static_tls_size) + ",\"tcb\":" + std::to_string(f.tcb_size) +
            ",\"guard_style\":" + js(km::to_string(glibc_guards)) +
            ",\"kernel_guard_install\":" + (f.kernel_guard_install ? "true" : "false") +
            ",\"stack_cache_max\":" + std::to_string(f.stack_cache_max) + ",\"pid_namespace\":{\"id\":" + js(snap.pid_ns) +
            ",\"initial\":" + (snap.init_pid_ns ? (*snap.init_pid_ns ? "true" : "false") : "null") +
            ",\"levels_seen\":" + std::to_string(snap.pid_ns_levels_seen) +
            ",\"pid_max_here\":" + std::to_string(snap.pid_max) + "},\"aslr\":{\"randomize_va_space\":" +
            std::to_string(f.randomize_va_space) + ",\"addr_no_randomize\":" + (f.addr_no_randomize ? "true" : "false") +
            ",\"stack_random_offset_max\":" + std::to_string(f.stack_random_offset_max) + "}}";

    // ---- default stack size -----------------------------------------------------------------
    const km::default_stack_observation o = km::observe_default_stack();
    const km::default_stack_prediction p = km::predict_default_stack(o.rlimit_stack, o.page_size, o.static_tls_size);
    const bool ds_match = p.stack_size == o.stack_size && p.guard_size == o.guard_size;
    all_match &= ds_match;
    if (!a.json) {
      std::printf("default thread stack  (RLIMIT_STACK %s)\n", km::size_text(o.rlimit_stack).c_str());
      std::printf("  model  %-12s (%s)\n  glibc  %-12s %s\n\n", km::size_text(p.stack_size).c_str(),
                  km::to_string(p.rule), km::size_text(o.stack_size).c_str(), ds_match ? "agrees" : "DIFFERS");
    }
    json += ",\"default_stack\":{\"rlimit_stack\":" + js(o.rlimit_stack) + ",\"model\":" + std::to_string(p.stack_size) +
            ",\"rule\":" + js(km::to_string(p.rule)) + ",\"glibc\":" + std::to_string(o.stack_size) +
            ",\"match\":" + (ds_match ? "true" : "false") + "}";

    // ---- starting at all ---------------------------------------------------------------------
    // This program, with this environment: the smallest limit it starts under with
    // randomisation off (measured: exec'd with --help), and the model's range with it on.
    try {
      const std::size_t t = km::measure_start_threshold("/proc/self/exe", {"--help"});
      const km::process_start_prediction ps = km::predict_process_start(t, f.stack_random_offset_max, f.page_size);
      const auto here = ps.at(o.rlimit_stack);
      if (!a.json) {
        std::printf("starting at all  (this program and environment, exec'd under a small RLIMIT_STACK)\n");
        std::printf("  starts from %s with randomisation off (measured); with it on, never below %s, always from %s\n",
                    km::size_text(t).c_str(), km::size_text(ps.never_below).c_str(), km::size_text(ps.always_from).c_str());
        std::printf("  under this RLIMIT_STACK (%s) a program like this starts %s%s\n\n", km::size_text(o.rlimit_stack).c_str(),
                    km::to_string(here),
                    here == km::process_start_prediction::verdict::always
                        ? ""
                        : "; the default-stack size above applies only to processes that do start");
      }
      json += ",\"process_start\":{\"smallest_without_aslr\":" + std::to_string(t) + ",\"never_below\":" +
              std::to_string(ps.never_below) + ",\"always_from\":" + std::to_string(ps.always_from) +
              ",\"here\":" + js(km::to_string(here)) + "}";
    } catch (const std::invalid_argument& e) {
      if (!a.json) std::printf("starting at all  not measured: %s\n\n", e.what());
      json += ",\"process_start\":{\"skipped\":" + js(e.what()) + "}";
    }

    // ---- cache reuse ------------------------------------------------------------------------
    if (!a.json) std::printf("stack cache reuse  (model of glibc %s's allocate_stack vs real pthreads)\n", f.glibc_version().c_str());
    json += ",\"cache_reuse\":{\"steps\":[";
    std::size_t create = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const km::thread_op& op = ops[i];
      if (op.kind == km::thread_op::join) {
        if (!a.json) std::printf("  join   #%u\n", op.slot);
        continue;
      }
      const km::model_step& m = predicted[create];
      const km::pthread_observation* r = create < real.size() ? &real[create] : nullptr;
      const km::replay_verdict& v = verdicts[create];
      all_match &= v.match;
      if (!a.json) {
        std::printf("  create #%u %-8s model %-4s block %-2" PRIu64 "  glibc stack ends %s  %s%s\n", op.slot,
                    km::size_text(op.stack_size).c_str(), m.hit ? "hit" : "miss", m.block_id,
                    r ? hex(r->stack_end).c_str() : "?", v.match ? "agrees" : "DIFFERS: ", v.why.c_str());
      }
      json += std::string(create ? "," : "") + "{\"slot\":" + std::to_string(op.slot) +
              ",\"stack_size\":" + std::to_string(op.stack_size) + ",\"model\":" + (m.hit ? "\"hit\"" : "\"miss\"") +
              ",\"block\":" + std::to_string(m.block_id) + ",\"glibc_stack_end\":" + js(r ? hex(r->stack_end) : "") +
              ",\"match\":" + (v.match ? "true" : "false") + ",\"why\":" + js(v.why) + "}";
      ++create;
    }
    json += "]}";
    if (!a.json) std::printf("\n");

    // ---- main stack -------------------------------------------------------------------------
    const km::main_stack_inputs in = km::current_main_stack_inputs();
    const km::main_stack_prediction mp = km::predict_main_stack(in);
    json += ",\"main_stack\":{\"rlimit_stack\":" + js(in.rlimit_stack) + ",\"vma\":" + js(hex(in.stack_start) + "-" + hex(in.stack_end)) +
            ",\"model_max\":" + std::to_string(mp.max_size) + ",\"bound\":" + js(km::to_string(mp.bound));
    if (!a.json)
      std::printf("main-thread stack  (RLIMIT_STACK %s, [stack] %s-%s, %s now)\n  model  may grow to %s (%s)\n",
                  km::size_text(in.rlimit_stack).c_str(), hex(in.stack_start).c_str(), hex(in.stack_end).c_str(),
                  km::size_text(in.stack_end - in.stack_start).c_str(), km::size_text(mp.max_size).c_str(),
                  km::to_string(mp.bound));
    if (!ms.error.empty()) throw std::runtime_error(ms.error);
    if (ms.measured) {
      const km::main_stack_observation& mo = ms.observation;
      const km::main_stack_prediction again = km::predict_main_stack(mo.inputs);
      const std::size_t diff = mo.reached > again.max_size ? mo.reached - again.max_size : again.max_size - mo.reached;
      const bool ok = diff <= 2 * mo.inputs.page_size;
      all_match &= ok;
      if (!a.json)
        std::printf("  child  recursed %" PRIu64 " frames, faulted at %s: %zu bytes deep  %s\n\n", mo.frames,
                    hex(mo.fault_address).c_str(), mo.reached, ok ? "agrees (within two pages)" : "DIFFERS");
      json += ",\"measured\":" + std::to_string(mo.reached) + ",\"match\":" + (ok ? "true" : "false") + "}";
    } else {
      if (!a.json) std::printf("  child  not run: %s\n\n", ms.skipped.c_str());
      json += ",\"measured\":null,\"skipped\":" + js(ms.skipped) + "}";
    }

    // ---- capacity ---------------------------------------------------------------------------
    std::size_t stack = a.stack_size ? a.stack_size : o.stack_size;
    const km::capacity_estimate e = km::estimate_capacity(km::take_snapshot(), stack, glibc_guards, f.page_size, f.page_size);
    if (!a.json) {
      std::printf("thread capacity  (%s stacks, %u VMAs each)\n", km::size_text(stack).c_str(), e.vmas_per_thread);
      for (const km::capacity_row& r : e.rows)
        std::printf("  %-44s %10" PRIu64 "  %s%s%s\n", km::to_string(r.limit), r.threads, r.basis.c_str(),
                    r.assumed ? " (assumed)" : "", &r == &e.binding() ? "   <- binds first" : "");
      for (const std::string& u : e.unknowns) std::printf("  cannot know: %s\n", u.c_str());
    }
    json += ",\"capacity\":{\"stack_size\":" + std::to_string(stack) + ",\"limits\":[";
    for (std::size_t i = 0; i < e.rows.size(); ++i)
      json += std::string(i ? "," : "") + "{\"limit\":" + js(km::to_string(e.rows[i].limit)) +
              ",\"threads\":" + std::to_string(e.rows[i].threads) + ",\"basis\":" + js(e.rows[i].basis) +
              ",\"assumed\":" + (e.rows[i].assumed ? "true" : "false") + "}";
    json += "],\"unknowns\":[";
    for (std::size_t i = 0; i < e.unknowns.size(); ++i) json += std::string(i ? "," : "") + js(e.unknowns[i]);
    json += "],\"binding\":" + js(km::to_string(e.binding().limit)) + ",\"estimate\":" + std::to_string(e.binding().threads);
    if (a.measure_capacity) {
      km::capacity_options co;
      co.stack_size = a.stack_size;
      const km::capacity_observation co_r = km::measure_thread_capacity(co);
      const km::capacity_row& b = co_r.estimate.binding();
      const std::uint64_t diff = co_r.created > b.threads ? co_r.created - b.threads : b.threads - co_r.created;
      const bool ok = co_r.observed == b.limit && diff <= 16 + b.threads / 100;
      all_match &= ok;
      if (!a.json)
        std::printf("  child  created %" PRIu64 " threads in %.2f s, then ran out of %s (%s)  %s\n\n", co_r.created,
                    co_r.seconds, km::to_string(co_r.observed), co_r.evidence.c_str(), ok ? "agrees" : "DIFFERS");
      json += ",\"measured\":{\"created\":" + std::to_string(co_r.created) + ",\"limit\":" +
              js(km::to_string(co_r.observed)) + ",\"evidence\":" + js(co_r.evidence) +
              ",\"estimate_then\":" + std::to_string(b.threads) +
              ",\"match\":" + (ok ? "true" : "false") + "}}";
    } else {
      if (!a.json) std::printf("  child  not run (pass --measure-capacity)\n\n");
      json += ",\"measured\":null}";
    }

    // ---- /proc ------------------------------------------------------------------------------
    const km::process_memory pm = km::read_process_memory();
    if (!a.json)
      std::printf("this process  VIRT %s, RES %s, %zu VMAs, %zu thread(s)\n", km::size_text(pm.vm_size).c_str(),
                  km::size_text(pm.vm_rss).c_str(), pm.vma_count, pm.threads);
    json += ",\"proc\":{\"vm_size\":" + std::to_string(pm.vm_size) + ",\"vm_rss\":" + std::to_string(pm.vm_rss) +
            ",\"vmas\":" + std::to_string(pm.vma_count) + ",\"threads\":" + std::to_string(pm.threads) + "}";
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "weft-kmodel: %s\n", ex.what());
    return 1;
  }
  json += ",\"all_match\":" + std::string(all_match ? "true" : "false") + "}";
  if (a.json) std::printf("%s\n", json.c_str());
  return all_match ? 0 : 1;
}

}  // namespace
