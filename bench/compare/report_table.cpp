// SPDX-License-Identifier: Apache-2.0
// report_table.cpp — the terminal table: three lines per figure (the absolute value, its
// ratio to Go, its ratio to pthread), one column per system, then the footnotes and how many
// fit.
#include <algorithm>
#include <string>
#include <vector>

#include "bench/compare/limits.hpp"
#include "bench/compare/report.hpp"

namespace weft_compare {

namespace {

// Display width of UTF-8 text whose characters are all one column wide (µ, ×, ≥, —).
std::size_t width(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}

std::string pad_left(const std::string& s, std::size_t w) { return std::string(w > width(s) ? w - width(s) : 0, ' ') + s; }
std::string pad_right(const std::string& s, std::size_t w) { return s + std::string(w > width(s) ? w - width(s) : 0, ' '); }

}  // namespace

void write_table(std::FILE* out, const report& r) {
  footnotes notes;
  const std::vector<const metric_desc*> rows = r.rows();
  // Text of every cell first, to size the columns.
  // ratio[b][i][j]: row i, column j divided by base b (Go, Boost.Fiber, then pthread); empty
  // for itself.  warm[i][j]: the median of the warm repetitions beside the single-run figure.
  constexpr int nb = 3;
  const system_id bases[nb] = {system_id::go, system_id::boost_fiber, system_id::pthread};
  std::vector<std::vector<std::string>> value(rows.size()), ratio[nb] = {value, value, value}, warm = value;
  std::vector<std::string> labels;
  std::size_t label_w = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const metric_desc& m = *rows[i];
    labels.push_back(label_of(r, m, true));
    label_w = std::max(label_w, width(labels.back()));
    for (system_id s : r.systems) {
      const cell* c = r.find(s, m.key);
      const bool ok = c && c->state == cell::ok;
      value[i].push_back(ok ? format_cell(m, *c) : missing_text(c, notes, s));
      warm[i].push_back(ok ? warm_text(r, s, m) : "");
      for (int b = 0; b < nb; ++b) ratio[b][i].push_back(ok && s != bases[b] ? r.ratio_text(s, m.key, bases[b]) : "");
    }
  }
  std::vector<std::size_t> col_w;
  for (std::size_t j = 0; j < r.systems.size(); ++j) {
    std::size_t w = width(describe(r.systems[j]).name);
    for (std::size_t i = 0; i < rows.size(); ++i)
      w = std::max({w, width(value[i][j]), width(warm[i][j]), width(ratio[0][i][j]), width(ratio[1][i][j]),
                    width(ratio[2][i][j])});
    col_w.push_back(w + 2);
  }
  const char* ratio_label[nb] = {"  ÷ go", "  ÷ boost-fiber", "  ÷ pthread"};
  for (const char* l : ratio_label) label_w = std::max(label_w, width(l));
  label_w += 2;

  std::fprintf(out,
               "\nweft-compare (%s run): per task, single-run figures (the first repetition in a fresh process); "
               "under each\nfigure the median of the warm repetitions after it, then its ratio to go, boost-fiber and pthread\n",
               to_string(r.sc));
  std::fprintf(out, "(lower is better, except how many fit).  %s\n", r.machine.c_str());
  if (std::string l = r.load_text(); !l.empty()) std::fprintf(out, "%s\n", l.c_str());
  if (std::string w = r.load_warning(); !w.empty()) std::fprintf(out, "WARNING: %s\n", w.c_str());
  for (const std::string& a : r.absent) std::fprintf(out, "%s\n", a.c_str());
  std::fprintf(out, "\n");
  std::string line = pad_right("", label_w);
  for (std::size_t j = 0; j < r.systems.size(); ++j) line += pad_left(describe(r.systems[j]).name, col_w[j]);
  std::fprintf(out, "%s\n", line.c_str());
  std::fprintf(out, "%s\n", std::string(width(line), '-').c_str());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::string a = pad_right(labels[i], label_w);
    for (std::size_t j = 0; j < r.systems.size(); ++j) a += pad_left(value[i][j], col_w[j]);
    std::fprintf(out, "%s\n", a.c_str());
    if (std::any_of(warm[i].begin(), warm[i].end(), [](const std::string& x) { return !x.empty(); })) {
      std::string b = pad_right("  warm", label_w);
      for (std::size_t j = 0; j < r.systems.size(); ++j) b += pad_left(warm[i][j].empty() ? "" : warm[i][j].substr(5), col_w[j]);
      std::fprintf(out, "%s\n", b.c_str());
    }
    for (int k = 0; k < nb; ++k) {
      const std::vector<std::string>& q = ratio[k][i];
      if (std::none_of(q.begin(), q.end(), [](const std::string& s) { return !s.empty(); })) continue;
      std::string b = pad_right(ratio_label[k], label_w);
      for (std::size_t j = 0; j < r.systems.size(); ++j) b += pad_left(q[j], col_w[j]);
      std::fprintf(out, "%s\n", b.c_str());
    }
  }

  // How many fit, in words.
  bool capacity = std::find(r.workloads.begin(), r.workloads.end(), workload::capacity) != r.workloads.end();
  if (capacity) {
    std::fprintf(out, "\nhow many fit (ratio: ≥ a count the harness's cap stopped, ~ against the kernel model's estimate\n"
                      "of a capped thread probe's limit):\n");
    for (system_id s : r.systems) {
      const cell* c = r.find(s, "capacity");
      if (!c || c->state != cell::ok) continue;
      std::string msg = stop_phrase(*c, s);
      if (std::string e = r.text_of(s, "capacity_estimate"); !e.empty())
        msg += "; the kernel model's estimate: " + e.substr(0, e.find(" ("));
      else if (std::string p = projected_capacity(r, s); !p.empty())
        msg += "; projected " + p;
      if (width(msg) > 200) msg = msg.substr(0, 197) + "...";
      std::fprintf(out, "  %-15s %s\n", describe(s).name, msg.c_str());
    }
  }
  if (!notes.reasons.empty()) {
    std::fprintf(out, "\n");
    for (std::size_t i = 0; i < notes.reasons.size(); ++i)
      std::fprintf(out, "[%zu] %s\n", i + 1, notes.reasons[i].c_str());
  }
  std::fflush(out);
}

}  // namespace weft_compare
