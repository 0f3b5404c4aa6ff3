// weft-kmodel: the kernel-model tour.  For each thing the kernel and glibc decide about a
// thread's stack, it prints what the model predicts beside what this machine actually does:
//
//   default stack size  the model's rule on this process's RLIMIT_STACK vs pthread_getattr_default_np
//   cache reuse         a create/join sequence on paper vs on real pthreads, step by step
//   main-stack limit    how deep the main thread may recurse vs a child that recurses until SIGSEGV
//   thread capacity     every limit on the number of threads, the one that binds, and (with
//                       --measure-capacity) a child that creates threads until refused
//
// Usage: weft-kmodel [--json] [--measure-capacity] [--stack-size=SIZE]
// Exit status: 0 when every comparison agrees, 1 when one does not, 2 for bad arguments.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <vector>

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
               "  --measure-capacity   also create threads in a child until the system refuses (for about a\n"
               "                       second the binding limit is used up; if it is kernel.pid_max, nothing\n"
               "                       else on the machine can fork meanwhile)\n"
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

}  // namespace

int main(int argc, char** argv) {
  args a;
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
    if (!a.json) {
      std::printf("weft-kmodel: the kernel model beside this machine\n\n");
      std::printf("glibc %s, page %zu, static TLS %zu bytes, struct pthread %zu bytes (%s)\n",
                  f.glibc_version().c_str(), f.page_size, f.static_tls_size, f.tcb_size, f.source.c_str());
      std::printf("thread guards: %s; MADV_GUARD_INSTALL %s; stack cache cap %s; stack_guard_gap %s\n\n",
                  km::to_string(glibc_guards), f.kernel_guard_install ? "available" : "not available",
                  km::size_text(f.stack_cache_max).c_str(), km::size_text(f.stack_guard_gap).c_str());
    }
    json += "\"facts\":{\"glibc\":" + js(f.glibc_version()) + ",\"page_size\":" + std::to_string(f.page_size) +
            ",\"static_tls\":" + std::to_string(f.static_tls_size) + ",\"tcb\":" + std::to_string(f.tcb_size) +
            ",\"guard_style\":" + js(km::to_string(glibc_guards)) +
            ",\"kernel_guard_install\":" + (f.kernel_guard_install ? "true" : "false") +
            ",\"stack_cache_max\":" + std::to_string(f.stack_cache_max) + "}";

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
    try {
      const km::main_stack_observation mo = km::measure_main_stack(in.rlimit_stack);
      const km::main_stack_prediction again = km::predict_main_stack(mo.inputs);
      const std::size_t diff = mo.reached > again.max_size ? mo.reached - again.max_size : again.max_size - mo.reached;
      const bool ok = diff <= 2 * mo.inputs.page_size;
      all_match &= ok;
      if (!a.json)
        std::printf("  child  recursed %" PRIu64 " frames, faulted at %s: %zu bytes deep  %s\n\n", mo.frames,
                    hex(mo.fault_address).c_str(), mo.reached, ok ? "agrees (within two pages)" : "DIFFERS");
      json += ",\"measured\":" + std::to_string(mo.reached) + ",\"match\":" + (ok ? "true" : "false") + "}";
    } catch (const std::invalid_argument& e) {
      if (!a.json) std::printf("  child  not run: %s\n\n", e.what());
      json += ",\"measured\":null,\"skipped\":" + js(e.what()) + "}";
    }

    // ---- capacity ---------------------------------------------------------------------------
    std::size_t stack = a.stack_size ? a.stack_size : o.stack_size;
    const km::capacity_estimate e = km::estimate_capacity(km::take_snapshot(), stack, glibc_guards, f.page_size, f.page_size);
    if (!a.json) {
      std::printf("thread capacity  (%s stacks, %u VMAs each)\n", km::size_text(stack).c_str(), e.vmas_per_thread);
      for (const km::capacity_row& r : e.rows)
        std::printf("  %-36s %10" PRIu64 "  %s%s\n", km::to_string(r.limit), r.threads, r.basis.c_str(),
                    &r == &e.binding() ? "   <- binds first" : "");
    }
    json += ",\"capacity\":{\"stack_size\":" + std::to_string(stack) + ",\"limits\":[";
    for (std::size_t i = 0; i < e.rows.size(); ++i)
      json += std::string(i ? "," : "") + "{\"limit\":" + js(km::to_string(e.rows[i].limit)) +
              ",\"threads\":" + std::to_string(e.rows[i].threads) + ",\"basis\":" + js(e.rows[i].basis) + "}";
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
              js(km::to_string(co_r.observed)) + ",\"estimate_then\":" + std::to_string(b.threads) +
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
