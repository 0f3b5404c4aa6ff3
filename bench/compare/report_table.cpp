// report_table.cpp — the terminal table: one row pair per figure (the absolute value, then
// the ratio to pthreads), one column per system, then the footnotes and how many fit.
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
  std::vector<std::vector<std::string>> value(rows.size()), ratio(rows.size());
  std::vector<std::string> labels;
  std::size_t label_w = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const metric_desc& m = *rows[i];
    labels.push_back(label_of(r, m, true));
    label_w = std::max(label_w, width(labels.back()));
    for (system_id s : r.systems) {
      const cell* c = r.find(s, m.key);
      if (c && c->state == cell::ok) {
        value[i].push_back(format_cell(m, *c));
        ratio[i].push_back(r.ratio_text(s, m.key));
      } else {
        value[i].push_back(missing_text(c, notes, s));
        ratio[i].push_back("");
      }
    }
  }
  std::vector<std::size_t> col_w;
  for (std::size_t j = 0; j < r.systems.size(); ++j) {
    std::size_t w = width(describe(r.systems[j]).name);
    for (std::size_t i = 0; i < rows.size(); ++i) w = std::max({w, width(value[i][j]), width(ratio[i][j])});
    col_w.push_back(w + 2);
  }
  label_w += 2;

  std::fprintf(out, "\nweft-compare (%s run): per task; the second line of each row is the ratio to pthread\n",
               to_string(r.sc));
  std::fprintf(out, "(lower is better, except how many fit).  %s\n\n", r.machine.c_str());
  std::string line = pad_right("", label_w);
  for (std::size_t j = 0; j < r.systems.size(); ++j) line += pad_left(describe(r.systems[j]).name, col_w[j]);
  std::fprintf(out, "%s\n", line.c_str());
  std::fprintf(out, "%s\n", std::string(width(line), '-').c_str());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::string a = pad_right(labels[i], label_w), b = pad_right("", label_w);
    for (std::size_t j = 0; j < r.systems.size(); ++j) {
      a += pad_left(value[i][j], col_w[j]);
      b += pad_left(ratio[i][j], col_w[j]);
    }
    std::fprintf(out, "%s\n", a.c_str());
    bool any_ratio = std::any_of(ratio[i].begin(), ratio[i].end(), [](const std::string& s) { return !s.empty(); });
    if (any_ratio) std::fprintf(out, "%s\n", b.c_str());
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
