// SPDX-License-Identifier: Apache-2.0
// report.cpp — the result model's queries and number formatting, shared by the writers.
#include "bench/compare/report.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "bench/compare/limits.hpp"

namespace weft_compare {

const cell* report::find(system_id s, const std::string& key) const {
  auto it = cells.find({s, key});
  return it == cells.end() ? nullptr : &it->second;
}

std::optional<double> report::extra_of(system_id s, const std::string& key) const {
  auto it = extra.find({s, key});
  if (it == extra.end()) return std::nullopt;
  return it->second;
}

std::string report::text_of(system_id s, const std::string& key) const {
  auto it = texts.find({s, key});
  return it == texts.end() ? std::string() : it->second;
}

bool capped(const cell& c) { return c.stop == "cap" || c.stop == "memcap" || c.stop == "time"; }

namespace {

// How many fit, for a ratio: the count where a limit stopped it; the kernel model's estimate
// where a cap stopped a thread probe ('~'); else the count as a lower bound ('>').
std::optional<double> capacity_basis(const report& r, system_id s, char* kind) {
  const cell* c = r.find(s, "capacity");
  if (!c || c->state != cell::ok) return std::nullopt;
  *kind = ' ';
  if (!capped(*c)) return c->value;
  if (std::optional<double> e = r.extra_of(s, "capacity_estimate"); e && *e > c->value) {
    *kind = '~';
    return *e;
  }
  *kind = '>';
  return c->value;
}

}  // namespace

std::optional<double> report::ratio(system_id s, const std::string& key, system_id base_id) const {
  if (key == "capacity") {
    char a, b;
    std::optional<double> x = capacity_basis(*this, s, &a), base = capacity_basis(*this, base_id, &b);
    if (!x || !base || *base <= 0 || b == '>') return std::nullopt;
    return *x / *base;
  }
  const cell* c = find(s, key);
  const cell* base = find(base_id, key);
  if (!c || !base || c->state != cell::ok || base->state != cell::ok || base->value <= 0) return std::nullopt;
  return std::max(0.0, c->value) / base->value;
}

std::string report::ratio_text(system_id s, const std::string& key, system_id base) const {
  std::optional<double> q = ratio(s, key, base);
  if (!q) return {};
  std::string t = format_ratio(*q);
  if (key != "capacity") return t;
  char a = ' ', b = ' ';
  capacity_basis(*this, s, &a);
  capacity_basis(*this, base, &b);
  if (a == '>') return "≥" + t;
  if (a == '~' || b == '~') return "~" + t;
  return t;
}

std::string report::ratios_line(system_id s, const std::string& key, const char* sep) const {
  std::string out;
  for (system_id base : {system_id::go, system_id::boost_fiber, system_id::pthread}) {
    if (base == s) continue;
    std::string q = ratio_text(s, key, base);
    if (q.empty()) continue;
    if (!out.empty()) out += sep;
    out += q + " " + describe(base).name;
  }
  return out;
}

system_id report::reference() const {
  for (const auto& [k, c] : cells)
    if (k.first == system_id::go && c.state == cell::ok) return system_id::go;
  return system_id::pthread;
}

std::string report::load_text() const {
  if (load_start < 0 && others_mean < 0) return {};
  char b[256];
  std::snprintf(b, sizeof b,
                "1-minute load average %.1f when the run began; other processes' runnable tasks between the "
                "columns %.1f on average, at most %.0f (%u readings; %u CPUs)",
                load_start, others_mean, others_max, samples, cpus);
  return b;
}

// How loaded is too loaded: other processes keeping, on average, half the CPUs busy while the
// columns ran, or a load average above twice the CPU count when the run began (not once: the
// build that .ci/main runs just before leaves about 3 on 2 CPUs).  On the shared 2-core machine
// the batched pthread spawn+join read 494 µs at a load average of ~200 and 34 µs quiet.
std::string report::load_warning() const {
  if (cpus == 0 || (load_start < 0 && others_mean < 0)) return {};
  const double n = cpus;
  if (load_start <= 2 * n && others_mean <= n / 2) return {};
  char b[480];
  std::snprintf(b, sizeof b,
                "the machine was busy: the 1-minute load average was %.1f when the run began, and other processes "
                "had %.1f tasks runnable on average (at most %.0f) between the columns, on %u CPUs.  They competed "
                "for the CPUs, so these figures are unreliable (on the 2-core test machine the batched pthread "
                "spawn+join read 494 µs under load against 34 µs quiet); run again on a quiet machine.",
                load_start, others_mean, others_max, cpus);
  return b;
}

std::vector<const metric_desc*> report::rows() const {
  std::vector<const metric_desc*> out;
  for (const metric_desc& m : all_metrics())
    for (workload w : workloads)
      if (w == m.from) out.push_back(&m);
  return out;
}

namespace {

std::string printf_string(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string time_text(double ns) {
  if (ns < 10) return printf_string("%.1f ns", ns);
  if (ns < 1e3) return printf_string("%.0f ns", ns);
  if (ns < 1e4) return printf_string("%.2f µs", ns / 1e3);
  if (ns < 1e6) return printf_string("%.1f µs", ns / 1e3);
  if (ns < 1e9) return printf_string("%.1f ms", ns / 1e6);
  return printf_string("%.2f s", ns / 1e9);
}

std::string bytes_text(double b) {
  double a = std::fabs(b);
  if (a < 1024) return printf_string("%.0f B", b);
  if (a < 1024 * 1024) return printf_string("%.1f KiB", b / 1024);
  if (a < 1024.0 * 1024 * 1024) return printf_string("%.1f MiB", b / (1024 * 1024));
  return printf_string("%.1f GiB", b / (1024.0 * 1024 * 1024));
}

}  // namespace

std::string format_value(const metric_desc& m, double v) {
  switch (m.u) {
    case unit::ns: return time_text(v);
    case unit::us: return time_text(v * 1e3);
    case unit::bytes: return bytes_text(v);
    case unit::count: return with_commas(static_cast<std::uint64_t>(std::llround(std::max(0.0, v))));
    case unit::fraction:
      if (std::fabs(v) < 0.0001) return "0.0000";
      return printf_string(std::fabs(v) < 0.005 ? "%.4f" : "%.2f", v);
  }
  return printf_string("%g", v);
}

std::string format_cell(const metric_desc& m, const cell& c) {
  std::string v = format_value(m, c.value);
  return capped(c) ? "≥" + v : v;
}

std::string format_ratio(double r) {
  if (r <= 0) return "0×";
  if (r < 0.0001) return "<0.0001×";
  if (r >= 9.95) return printf_string("%.0f×", r);
  if (r >= 0.995) return printf_string("%.1f×", r);
  int decimals = std::clamp(1 - static_cast<int>(std::floor(std::log10(r))), 1, 9);  // two significant digits
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f×", decimals, r);
  return buf;
}

int footnotes::number(const std::string& why) {
  for (std::size_t i = 0; i < reasons.size(); ++i)
    if (reasons[i] == why) return static_cast<int>(i + 1);
  reasons.push_back(why);
  return static_cast<int>(reasons.size());
}

std::string warm_key(const metric_desc& m) { return std::string(m.key) + ":warm"; }

std::string warm_text(const report& r, system_id s, const metric_desc& m) {
  if (!m.warm) return {};
  std::optional<double> w = r.extra_of(s, warm_key(m));
  return w ? "warm " + format_value(m, *w) : std::string();
}

namespace {

// 1000000 -> "1M", 200000 -> "200K", 1500 -> "1,500"
std::string short_count(std::uint64_t n) {
  if (n >= 1000000 && n % 1000000 == 0) return std::to_string(n / 1000000) + "M";
  if (n >= 1000 && n % 1000 == 0) return std::to_string(n / 1000) + "K";
  return with_commas(n);
}

// Replaces the placeholder word `w` (a single capital letter standing alone) with `by`.
void fill(std::string& l, char w, const std::string& by) {
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (l[i] != w) continue;
    const bool alone_left = i == 0 || !std::isalnum(static_cast<unsigned char>(l[i - 1]));
    const bool alone_right = i + 1 == l.size() || !std::isalnum(static_cast<unsigned char>(l[i + 1]));
    if (alone_left && alone_right) {
      l.replace(i, 1, by);
      return;
    }
  }
}

}  // namespace

std::string label_of(const report& r, const metric_desc& m, bool brief) {
  std::string l = brief ? m.brief : m.label;
  if (m.from == workload::burst) fill(l, 'N', short_count(r.goroutine_sizes.burst_n));
  if (m.from == workload::create) fill(l, 'N', short_count(r.goroutine_sizes.create_n));
  if (m.from == workload::skynet) fill(l, 'L', short_count(r.goroutine_sizes.skynet_leaves));
  std::size_t d = l.find(" D ");
  if (d != std::string::npos) l.replace(d + 1, 1, std::to_string(r.goroutine_sizes.depth));
  d = l.find(": D-");
  if (d != std::string::npos) l.replace(d + 2, 1, std::to_string(r.goroutine_sizes.depth));
  return l;
}

std::string missing_text(const cell* c, footnotes& notes, system_id s) {
  if (!c || c->state == cell::not_run) return "—";
  int n = notes.number(std::string(describe(s).name) + ": " + c->why);
  return std::string(c->state == cell::failed ? "failed" : "n/a") + " [" + std::to_string(n) + "]";
}

std::string stop_phrase(const cell& c, system_id s) {
  const std::string n = with_commas(static_cast<std::uint64_t>(std::max(0.0, c.value)));
  const std::string what = describe(s).goroutines ? " goroutines" : " threads";
  if (c.stop == "cap") return "stopped at the harness's count cap, " + n + what;
  if (c.stop == "memcap") return "stopped at the harness's memory cap, " + n + what;
  if (c.stop == "time") return "stopped at the harness's time cap, " + n + what;
  return "stopped at " + n + what + ": " + c.stop.substr(c.stop.rfind("limit ", 0) == 0 ? 6 : 0);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  f << text;
  f.close();
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string projected_capacity(const report& r, system_id s) {
  const cell* rss = r.find(s, "parked_rss");
  const cell* pte = r.find(s, "parked_pte");
  const cell* virt = r.find(s, "parked_virt");
  const cell* vmas = r.find(s, "parked_vmas");
  if (!rss || rss->state != cell::ok || !pte || pte->state != cell::ok) return {};
  struct bound {
    double n;
    const char* what;
  };
  std::vector<bound> b;
  double mem = std::max(1.0, rss->value + pte->value);
  b.push_back({static_cast<double>(r.mem_available) / mem, "memory (MemAvailable / (RSS + page tables) per task)"});
  if (virt && virt->state == cell::ok && virt->value > 0)
    b.push_back({static_cast<double>(std::uint64_t{1} << 47) / virt->value, "address space (128 TiB / VmSize per task)"});
  if (vmas && vmas->state == cell::ok && vmas->value > 0.01 && r.max_map_count)
    b.push_back({static_cast<double>(r.max_map_count) / vmas->value, "vm.max_map_count (VMAs per task)"});
  const bound* best = &b[0];
  for (const bound& x : b)
    if (x.n < best->n) best = &x;
  std::string out = "~";  // appended, not "~" + string&&: GCC 12 warns falsely (-Wrestrict) there
  out += with_commas(static_cast<std::uint64_t>(best->n));
  out += " by ";
  out += best->what;
  return out;
}

}  // namespace weft_compare
