// SPDX-License-Identifier: Apache-2.0
// report_svg.cpp — the chart: for every figure, one bar per system from the 1× line (Go, or
// pthread when Go did not run) to its ratio, on a log scale, so "10× cheaper" and "10× dearer"
// are the same length; each bar labelled with the figure and the ratio, capped figures hatched,
// a caption saying what ran, where and under what load.  Hand-written SVG 1.1, no scripts, no
// external fonts or files.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench/compare/report.hpp"

namespace weft_compare {

namespace {

std::string xml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Okabe and Ito's palette for colour-blind readers ("Color Universal Design", 2008), one hue
// per column: the four weft columns must be told apart, and two of the blues before (#9ecae1,
// #6baed6) were 15 apart in CIELAB ΔE.  The closest pair here (sky blue, blue) is 26 apart;
// tests/compare/check_compare.sh holds every pair of the legend to ΔE ≥ 25.
const char* color_of(system_id s) {
  switch (s) {
    case system_id::weft_copy: return "#56b4e9";       // sky blue
    case system_id::weft: return "#0072b2";            // blue
    case system_id::weft_copy256: return "#cc79a7";    // reddish purple
    case system_id::weft_segmented: return "#e69f00";  // orange
    case system_id::pthread: return "#999999";         // grey
    case system_id::clone: return "#000000";           // black
    case system_id::go: return "#009e73";              // bluish green
    case system_id::boost_fiber: return "#d55e00";     // vermillion (ΔE ≥ 33 from the others)
  }
  return "#000000";
}

// Splits text into lines of at most `width` characters at spaces (the SVG has no wrapping).
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::string line, word;
  std::istringstream in(text);
  while (in >> word) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

std::string decade_label(int e) {
  if (e >= 0) {
    std::string s = "1";
    for (int i = 0; i < e; ++i) s += "0";
    return s + "×";
  }
  std::string s = "0.";
  for (int i = 1; i < -e; ++i) s += "0";
  return s + "1×";
}

}  // namespace

void write_svg(const std::string& path, const report& r) {
  const std::vector<const metric_desc*> rows = r.rows();
  const system_id ref = r.reference();  // Go when it measured anything: the 1× line
  const char* ref_name = describe(ref).name;
  // A row whose Go figure divides nothing (Go has no VMAs or VmSize of its own per goroutine;
  // its capacity count is a lower bound) is drawn against pthread instead, and says so.
  auto ref_of = [&](const metric_desc& m) {
    for (system_id s : r.systems)
      if (s != ref && r.ratio(s, m.key, ref).value_or(0) > 0) return ref;
    return system_id::pthread;
  };
  auto bars_of = [&](system_id row_ref) {
    std::vector<system_id> out;
    for (system_id s : r.systems)
      if (s != row_ref) out.push_back(s);
    return out;
  };
  std::vector<system_id> bars = bars_of(ref);  // the legend; every row has as many bars

  // The decades the ratios span (at least 0.1× .. 10×).
  double lo_r = 1, hi_r = 1;
  for (const metric_desc* m : rows)
    for (system_id s : bars_of(ref_of(*m)))
      if (std::optional<double> q = r.ratio(s, m->key, ref_of(*m)); q && *q > 0) {
        lo_r = std::min(lo_r, *q);
        hi_r = std::max(hi_r, *q);
      }
  // Below 0.0001× (VMAs per goroutine: arenas shared by thousands) the bar stops at the left
  // edge and its label says "<0.0001×".
  int lo_e = std::clamp(static_cast<int>(std::floor(std::log10(lo_r) + 1e-9)), -4, -1);
  int hi_e = std::clamp(static_cast<int>(std::ceil(std::log10(hi_r) - 1e-9)), 1, 6);

  // Room right of the plot for the labels of bars that reach its end: "31.2 µs · 0.0083×".
  const double width = 1120, plot_x0 = 250, plot_x1 = 900;
  const double bar_h = 12, bar_step = 16, header_h = 24, group_gap = 10;
  const double top = 118;
  auto x_of = [&](double ratio) {
    double e = ratio > 0 ? std::log10(ratio) : lo_e;
    e = std::clamp(e, static_cast<double>(lo_e), static_cast<double>(hi_e));
    return plot_x0 + (e - lo_e) / (hi_e - lo_e) * (plot_x1 - plot_x0);
  };
  double group_h = header_h + bar_step * static_cast<double>(bars.size()) + group_gap;
  double plot_bottom = top + 18 + group_h * static_cast<double>(rows.size());

  // The caption: what was measured, how, where, and under what load.
  std::vector<std::string> workload_titles;
  for (workload w : r.workloads) workload_titles.push_back(describe(w).title);
  std::string what = "What: ";
  for (std::size_t i = 0; i < workload_titles.size(); ++i) what += (i ? ", " : "") + workload_titles[i];
  what += ", per task: single-run figures (the first repetition in a fresh process; the warm medians are in "
          "report.md), by `" + r.command + "` (" + to_string(r.sc) +
          " sizes, " + std::to_string(static_cast<int>(r.wall_seconds + 0.5)) +
          " s).  How: every system's workload in a child process of its own, one workload at a time across all "
          "systems; bars are ratios to " + ref_name + " on a log scale, labelled with the figure itself.";
  std::vector<std::pair<std::string, const char*>> caption;  // (line, colour)
  for (const std::string& l : wrap(what, 150)) caption.push_back({l, "#333333"});
  for (const std::string& l : wrap("Machine: " + r.machine + ".", 150)) caption.push_back({l, "#333333"});
  if (std::string l = r.load_text(); !l.empty())
    for (const std::string& x : wrap("Load: " + l + ".", 150)) caption.push_back({x, "#333333"});
  if (std::string w = r.load_warning(); !w.empty())
    for (const std::string& x : wrap("Warning: " + w, 150)) caption.push_back({x, "#b00000"});
  double height = plot_bottom + 52 + 16 * static_cast<double>(caption.size()) + 10;

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width << "\" height=\"" << num(height)
      << "\" viewBox=\"0 0 " << width << " " << num(height) << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      << "<title>weft-compare: weft, pthreads and Go, per task, as ratios to " << ref_name << "</title>\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << num(height) << "\" fill=\"#ffffff\"/>\n";
  // Hatching for capped figures (a lower bound: the harness's cap stopped the count), one per
  // colour: drawn differently from the measurements beside them.
  svg << "<defs>\n";
  for (system_id s : r.systems)
    svg << "<pattern id=\"capped-" << describe(s).name << "\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
        << "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffffff\"/><rect width=\"3\" height=\"6\" fill=\""
        << color_of(s) << "\"/></pattern>\n";
  svg << "</defs>\n";
  svg << "<text x=\"20\" y=\"30\" font-size=\"19\" font-weight=\"bold\">"
      << (ref == system_id::go ? "How weft compares with Go: each figure per task ÷ Go's" : "weft-compare: each figure per task ÷ pthread's")
      << "</text>\n"
      << "<text x=\"20\" y=\"52\" fill=\"#444444\">Left of the " << ref_name << " = 1× line: less than " << ref_name
      << " (better, except how many fit).  Every bar is labelled with its figure, then its ratio; log scale.</text>\n";

  // Legend.
  double lx = 20;
  for (system_id s : bars) {
    svg << "<rect class=\"legend\" x=\"" << num(lx) << "\" y=\"66\" width=\"12\" height=\"12\" fill=\"" << color_of(s) << "\"/>"
        << "<text x=\"" << num(lx + 16) << "\" y=\"77\">" << describe(s).name << "</text>\n";
    lx += 24 + 7.2 * static_cast<double>(std::strlen(describe(s).name));
  }
  svg << "<line x1=\"" << num(lx) << "\" y1=\"72\" x2=\"" << num(lx + 14) << "\" y2=\"72\" stroke=\"#333333\" stroke-width=\"2\" stroke-dasharray=\"4 2\"/>"
      << "<text x=\"" << num(lx + 18) << "\" y=\"77\">" << ref_name << " = 1×"
      << (ref == system_id::pthread ? "" : " (pthread = 1× where go's figure is 0 or a lower bound)") << "</text>\n";
  svg << "<rect x=\"20\" y=\"86\" width=\"24\" height=\"12\" fill=\"url(#capped-" << describe(bars.empty() ? ref : bars.front()).name
      << ")\" stroke=\"#333333\" stroke-dasharray=\"3 2\"/><text x=\"50\" y=\"97\">hatched, dashed outline: "
      << "a lower bound (≥), where a cap of the harness stopped the count before the system did</text>\n";

  // Decade grid, labelled at the top and bottom.
  for (int e = lo_e; e <= hi_e; ++e) {
    double x = x_of(std::pow(10.0, e));
    bool one = e == 0;
    svg << "<line x1=\"" << num(x) << "\" y1=\"" << num(top + 6) << "\" x2=\"" << num(x) << "\" y2=\"" << num(plot_bottom)
        << "\" stroke=\"" << (one ? "#333333" : "#dddddd") << "\" stroke-width=\"" << (one ? 2 : 1) << "\""
        << (one ? " stroke-dasharray=\"4 2\"" : "") << "/>\n";
    for (double y : {top, plot_bottom + 16})
      svg << "<text x=\"" << num(x) << "\" y=\"" << num(y) << "\" text-anchor=\"middle\" fill=\"#444444\">"
          << decade_label(e) << "</text>\n";
  }
  svg << "<text x=\"" << num((plot_x0 + plot_x1) / 2) << "\" y=\"" << num(plot_bottom + 34)
      << "\" text-anchor=\"middle\" fill=\"#444444\">ratio to " << ref_name << " (log scale)</text>\n";

  double y = top + 18;
  for (const metric_desc* m : rows) {
    // The group's heading: what, the reference's own figure, and which way is better.
    const system_id row_ref = ref_of(*m);
    const char* row_ref_name = describe(row_ref).name;
    const cell* rc = r.find(row_ref, m->key);
    std::string ref_fig = std::string("1× = ") + row_ref_name + ": " +
                          (rc && rc->state == cell::ok ? format_cell(*m, *rc) : std::string("no figure"));
    if (row_ref != ref) {
      const cell* gc = r.find(ref, m->key);
      ref_fig += std::string(" (") + ref_name + ": " + (gc && gc->state == cell::ok ? format_cell(*m, *gc) : "no figure") + ")";
    }
    svg << "<text x=\"20\" y=\"" << num(y + 15) << "\" font-weight=\"bold\">" << xml(label_of(r, *m, false))
        << "</text><text x=\"" << num(width - 20) << "\" y=\"" << num(y + 15) << "\" text-anchor=\"end\" fill=\"#555555\">"
        << xml(ref_fig) << "; <tspan font-style=\"italic\">" << (m->higher_is_better ? "higher is better" : "lower is better")
        << "</tspan></text>\n";
    double by = y + header_h;
    for (system_id s : bars_of(row_ref)) {
      svg << "<text x=\"" << num(plot_x0 - 8) << "\" y=\"" << num(by + bar_h - 2) << "\" text-anchor=\"end\" fill=\"#333333\">"
          << describe(s).name << "</text>\n";
      const cell* c = r.find(s, m->key);
      std::optional<double> q = r.ratio(s, m->key, row_ref);
      double x1 = x_of(1);
      const bool ok = c && c->state == cell::ok;
      if (ok && q && *q <= 0) {
        // Nothing measurable (no VMAs, no address space): no bar, a mark off the left end.
        svg << "<path d=\"M " << num(plot_x0) << " " << num(by) << " l -6 " << num(bar_h / 2) << " l 6 " << num(bar_h / 2)
            << " z\" fill=\"" << color_of(s) << "\"/><text x=\"" << num(plot_x0 + 4) << "\" y=\"" << num(by + bar_h - 2)
            << "\" font-size=\"11\">" << xml(format_cell(*m, *c)) << " · 0×</text>\n";
      } else if (ok && q) {
        double xr = x_of(*q);
        double x = std::min(x1, xr), w = std::max(1.0, std::fabs(xr - x1));
        std::string label = format_cell(*m, *c) + " · " + r.ratio_text(s, m->key, row_ref);
        const bool lower_bound = capped(*c);
        svg << "<rect x=\"" << num(x) << "\" y=\"" << num(by) << "\" width=\"" << num(w) << "\" height=\"" << bar_h << "\" fill=\"";
        if (lower_bound) svg << "url(#capped-" << describe(s).name << ")\" stroke=\"" << color_of(s) << "\" stroke-dasharray=\"3 2";
        else svg << color_of(s);
        svg << "\"><title>" << xml(describe(s).name) << ": " << xml(label) << "</title></rect>\n";
        // Left of a bar that ends left of the 1× line, unless that would run into the names:
        // then right of the 1× line.  (About 6.5 px per character at 11 px.)
        bool left = xr < x1;
        double label_w = 6.5 * static_cast<double>(label.size());
        double lx2 = left ? (x - 4 - label_w >= plot_x0 ? x - 4 : x1 + 4) : x + w + 4;
        bool end_anchor = left && lx2 < x1;
        svg << "<text x=\"" << num(lx2) << "\" y=\"" << num(by + bar_h - 2) << "\" text-anchor=\""
            << (end_anchor ? "end" : "start") << "\" font-size=\"11\">" << xml(label) << "</text>\n";
      } else {
        std::string why = !c || c->state == cell::not_run ? "not run"
                          : ok                            ? format_cell(*m, *c) + " · no " + row_ref_name + " figure to divide by"
                          : c->state == cell::failed      ? "failed"
                                                          : "not available";
        svg << "<text x=\"" << num(x1 + 6) << "\" y=\"" << num(by + bar_h - 2) << "\" font-size=\"11\" fill=\"#777777\" font-style=\"italic\">"
            << xml(why) << "</text>\n";
      }
      by += bar_step;
    }
    y += group_h;
  }
  double cy = plot_bottom + 58;
  for (const auto& [line, colour] : caption) {
    svg << "<text class=\"caption\" x=\"20\" y=\"" << num(cy) << "\" fill=\"" << colour << "\">" << xml(line) << "</text>\n";
    cy += 16;
  }
  svg << "</svg>\n";

  write_file(path, svg.str());
}

}  // namespace weft_compare
