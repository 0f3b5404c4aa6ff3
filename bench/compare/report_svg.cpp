// report_svg.cpp — the chart: for every figure, one bar per system from the 1× line (pthread) to
// its ratio, on a log scale, so "10× cheaper" and "10× dearer" are the same length.  Hand-written
// SVG 1.1, no scripts, no external fonts or files.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

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

const char* color_of(system_id s) {
  switch (s) {
    case system_id::weft_copy: return "#9ecae1";
    case system_id::weft: return "#3182bd";
    case system_id::weft_copy256: return "#08519c";
    case system_id::weft_segmented: return "#6baed6";
    case system_id::pthread: return "#636363";
    case system_id::clone: return "#e6550d";
    case system_id::go: return "#31a354";
  }
  return "#000000";
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
  std::vector<system_id> bars;  // pthread is the 1× line, not a bar
  for (system_id s : r.systems)
    if (s != system_id::pthread) bars.push_back(s);

  // The decades the ratios span (at least 0.1× .. 10×).
  double lo_r = 1, hi_r = 1;
  for (const metric_desc* m : rows)
    for (system_id s : bars)
      if (std::optional<double> q = r.ratio(s, m->key); q && *q > 0) {
        lo_r = std::min(lo_r, *q);
        hi_r = std::max(hi_r, *q);
      }
  // Below 0.0001× (VMAs per goroutine: arenas shared by thousands) the bar stops at the left
  // edge and its label says "<0.0001×".
  int lo_e = std::clamp(static_cast<int>(std::floor(std::log10(lo_r) + 1e-9)), -4, -1);
  int hi_e = std::clamp(static_cast<int>(std::ceil(std::log10(hi_r) - 1e-9)), 1, 6);

  const double width = 1000, plot_x0 = 230, plot_x1 = 900;
  const double bar_h = 12, bar_step = 16, header_h = 24, group_gap = 10;
  const double top = 96;
  auto x_of = [&](double ratio) {
    double e = ratio > 0 ? std::log10(ratio) : lo_e;
    e = std::clamp(e, static_cast<double>(lo_e), static_cast<double>(hi_e));
    return plot_x0 + (e - lo_e) / (hi_e - lo_e) * (plot_x1 - plot_x0);
  };
  double group_h = header_h + bar_step * static_cast<double>(bars.size()) + group_gap;
  double plot_bottom = top + 18 + group_h * static_cast<double>(rows.size());
  double height = plot_bottom + 56;

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width << "\" height=\"" << num(height)
      << "\" viewBox=\"0 0 " << width << " " << num(height) << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << num(height) << "\" fill=\"#ffffff\"/>\n"
      << "<text x=\"20\" y=\"28\" font-size=\"18\" font-weight=\"bold\">weft-compare: each system ÷ pthread (log scale)</text>\n"
      << "<text x=\"20\" y=\"48\" fill=\"#444444\">" << xml(r.machine) << "; " << to_string(r.sc)
      << " run.  Left of the 1× line: less than pthread.</text>\n";

  // Legend.
  double lx = 20;
  for (system_id s : bars) {
    svg << "<rect x=\"" << num(lx) << "\" y=\"62\" width=\"12\" height=\"12\" fill=\"" << color_of(s) << "\"/>"
        << "<text x=\"" << num(lx + 16) << "\" y=\"73\">" << describe(s).name << "</text>\n";
    lx += 24 + 7.2 * static_cast<double>(std::strlen(describe(s).name));
  }
  svg << "<line x1=\"" << num(lx) << "\" y1=\"68\" x2=\"" << num(lx + 14) << "\" y2=\"68\" stroke=\"#636363\" stroke-width=\"2\" stroke-dasharray=\"4 2\"/>"
      << "<text x=\"" << num(lx + 18) << "\" y=\"73\">pthread = 1×</text>\n";

  // Decade grid, labelled at the top and bottom.
  for (int e = lo_e; e <= hi_e; ++e) {
    double x = x_of(std::pow(10.0, e));
    bool one = e == 0;
    svg << "<line x1=\"" << num(x) << "\" y1=\"" << num(top + 6) << "\" x2=\"" << num(x) << "\" y2=\"" << num(plot_bottom)
        << "\" stroke=\"" << (one ? "#636363" : "#dddddd") << "\" stroke-width=\"" << (one ? 2 : 1) << "\""
        << (one ? " stroke-dasharray=\"4 2\"" : "") << "/>\n";
    for (double y : {top, plot_bottom + 16})
      svg << "<text x=\"" << num(x) << "\" y=\"" << num(y) << "\" text-anchor=\"middle\" fill=\"#444444\">"
          << decade_label(e) << "</text>\n";
  }
  svg << "<text x=\"" << num((plot_x0 + plot_x1) / 2) << "\" y=\"" << num(plot_bottom + 36)
      << "\" text-anchor=\"middle\" fill=\"#444444\">ratio to pthread (log scale)</text>\n";

  double y = top + 18;
  for (const metric_desc* m : rows) {
    svg << "<text x=\"20\" y=\"" << num(y + 15) << "\" font-weight=\"bold\">" << xml(label_of(r, *m, false))
        << "</text><text x=\"" << num(plot_x1) << "\" y=\"" << num(y + 15) << "\" text-anchor=\"end\" fill=\"#666666\" font-style=\"italic\">"
        << (m->higher_is_better ? "higher is better" : "lower is better") << "</text>\n";
    double by = y + header_h;
    for (system_id s : bars) {
      svg << "<text x=\"" << num(plot_x0 - 70) << "\" y=\"" << num(by + bar_h - 2) << "\" text-anchor=\"end\" fill=\"#333333\">"
          << describe(s).name << "</text>\n";
      const cell* c = r.find(s, m->key);
      std::optional<double> q = r.ratio(s, m->key);
      double x1 = x_of(1);
      if (q && *q <= 0) {
        // Nothing measurable (no VMAs, no address space): no bar, a mark off the left end.
        svg << "<path d=\"M " << num(plot_x0) << " " << num(by) << " l -6 " << num(bar_h / 2) << " l 6 " << num(bar_h / 2)
            << " z\" fill=\"" << color_of(s) << "\"/><text x=\"" << num(plot_x0 - 10) << "\" y=\"" << num(by + bar_h - 2)
            << "\" text-anchor=\"end\" font-size=\"11\">0×</text>\n";
      } else if (q) {
        double xr = x_of(*q);
        double x = std::min(x1, xr), w = std::max(1.0, std::fabs(xr - x1));
        std::string label = r.ratio_text(s, m->key);
        svg << "<rect x=\"" << num(x) << "\" y=\"" << num(by) << "\" width=\"" << num(w) << "\" height=\"" << bar_h
            << "\" fill=\"" << color_of(s) << "\"><title>" << xml(describe(s).name) << ": " << xml(format_cell(*m, *c))
            << " (" << xml(label) << ")</title></rect>\n";
        bool left = xr < x1;
        svg << "<text x=\"" << num(left ? x - 4 : x + w + 4) << "\" y=\"" << num(by + bar_h - 2) << "\" text-anchor=\""
            << (left ? "end" : "start") << "\" font-size=\"11\">" << xml(label) << "</text>\n";
      } else {
        std::string why = !c || c->state == cell::not_run ? "not run"
                          : c->state == cell::ok          ? "no pthread figure"
                          : c->state == cell::failed      ? "failed"
                                                          : "not available";
        svg << "<text x=\"" << num(x1 + 6) << "\" y=\"" << num(by + bar_h - 2) << "\" font-size=\"11\" fill=\"#999999\" font-style=\"italic\">"
            << why << "</text>\n";
      }
      by += bar_step;
    }
    y += group_h;
  }
  svg << "</svg>\n";

  write_file(path, svg.str());
}

}  // namespace weft_compare
