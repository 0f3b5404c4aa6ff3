#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks weft-compare's command line and outputs (tests/compare/CMakeLists.txt, meson.build).
# Usage: check_compare.sh WEFT_COMPARE MODE [OUT_DIR [FIBER]]
#   help      --help exits 0 and prints the usage on stdout
#   bad-args  unknown flags, a bad --only name, --quick with --full, a bad --depth: exit 2,
#             the usage on stderr
#   quick     a --quick run exits 0, prints its table, writes report.md with no failed cell in
#             the weft or pthread columns and a ratios.svg that rsvg-convert renders; ratios to
#             Go (when Go is installed) beside those to pthread; figures on the chart's bars, a
#             caption with the machine and the load average, colours told apart, nothing else
#             in the report folder (no Go binary); then a run on a busy machine (a fake
#             /proc/loadavg) warns in the report and on the chart; and check_report.py's checks
#             of issue 21 (FIBER: yes when the build found Boost.Fiber): the boost-fiber column
#             there (or a note why not), its growth cell not applicable with the reason, the new
#             workloads' cells positive, warm figures beside the single-run ones
#   servers   --quick --servers: weft-netbench's table in servers.txt (a weft and, with Go
#             installed, a Go echo row that measured requests) and a Servers section in report.md
set -uo pipefail
bin=$1 mode=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

case $mode in
  help)
    out=$("$bin" --help) || fail "--help exited $?"
    grep -q '^usage: weft-compare' <<<"$out" || fail "--help printed no usage: $out"
    ;;
  bad-args)
    for args in "--bogus" "--only nosuch" "--only" "--quick --full" "--depth 0" "--depth x" "--out"; do
      # shellcheck disable=SC2086
      err=$("$bin" $args 2>&1 >/dev/null); rc=$?
      [ "$rc" -eq 2 ] || fail "weft-compare $args exited $rc, not 2"
      grep -q '^usage: weft-compare' <<<"$err" || fail "weft-compare $args printed no usage on stderr: $err"
    done
    ;;
  quick)
    dir=${3:-$(mktemp -d)}
    fiber=${4:-no}
    rm -rf "$dir"
    # weft-compare exits 0 even when workloads fail (it records them and goes on): the
    # outputs are what say whether the weft and pthread columns measured anything.
    "$bin" --quick --out "$dir" >"$dir.table" || fail "weft-compare --quick exited $?"
    for f in report.md ratios.svg; do [ -s "$dir/$f" ] || fail "$dir/$f missing or empty"; done
    { grep -q '^spawn+join, batched, p1 ' "$dir.table" && grep -q '^  ÷ pthread .*×' "$dir.table"; } ||
      fail "no table with ratios to pthread on stdout (see $dir.table)"
    # Nothing but the report in its folder: the Go program is built elsewhere.
    extra=$(cd "$dir" && ls -A | grep -vxE 'report\.md|ratios\.svg')
    [ -z "$extra" ] || fail "the report folder $dir holds more than the report: $extra"
    if command -v go >/dev/null; then
      grep -q '^  ÷ go .*×' "$dir.table" || fail "no ratios to go in the table on stdout (see $dir.table)"
      grep -q '<br>[^|]*× go · [^|]*× pthread |' "$dir/report.md" ||
        fail "report.md: no cell with its ratio to go, then to pthread (see $dir/report.md)"
    fi
    # The chart: each bar labelled with its figure and ratio; a caption with machine and load.
    grep -q '>[0-9.,≥]* [nµm]\?s · [0-9.<≥~]*×</text>' "$dir/ratios.svg" || fail "ratios.svg: no bar labelled with a time and a ratio"
    grep -q 'class="caption"[^>]*>Machine: ' "$dir/ratios.svg" || fail "ratios.svg: no caption naming the machine"
    grep -q 'class="caption"[^>]*>Load: 1-minute load average' "$dir/ratios.svg" || fail "ratios.svg: no caption with the load average"
    # Colours a reader can tell apart: every pair in the legend at least 25 apart in CIELAB
    # (ΔE*ab, 1976; 2.3 is a just-noticeable difference).
    python3 - "$dir/ratios.svg" <<'PY' || fail "ratios.svg: legend colours too alike"
import itertools, re, sys
cols = re.findall(r'class="legend"[^>]*fill="(#[0-9a-fA-F]{6})"', open(sys.argv[1]).read())
def lab(h):
    def lin(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(int(h[i:i + 2], 16)) for i in (1, 3, 5))
    x, y, z = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b, (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    f = lambda t: t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116
    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))
if len(cols) < 2: sys.exit(f'only {len(cols)} legend colours')
bad = [(a, b, d) for a, b in itertools.combinations(cols, 2)
       if (d := sum((p - q) ** 2 for p, q in zip(lab(a), lab(b))) ** 0.5) < 25]
for a, b, d in bad: print(f'{a} and {b}: ΔE {d:.1f} < 25', file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    # A busy machine: the report and the chart warn.
    busy=$(mktemp -d)
    echo "9.00 9.00 9.00 3/200 12345" >"$busy/loadavg"
    WEFT_COMPARE_LOADAVG=$busy/loadavg "$bin" --quick --only spawn,pthread,weft --out "$busy/report" >"$busy/table" 2>&1 ||
      fail "weft-compare --quick --only spawn,pthread,weft exited $?"
    grep -q '^> \*\*Warning:\*\* the machine was busy' "$busy/report/report.md" || fail "report.md: no warning at a load average of 9"
    grep -q 'class="caption"[^>]*>Warning: the machine was busy' "$busy/report/ratios.svg" || fail "ratios.svg: no warning at a load average of 9"
    grep -q 'WARNING: the machine was busy' "$busy/table" || fail "no warning on the terminal at a load average of 9"
    rm -rf "$busy"
    grep -q '^| how many fit' "$dir/report.md" || fail "report.md has no results table"
    have_go=no
    command -v go >/dev/null && have_go=yes
    python3 "$(dirname "$0")/check_report.py" "$dir/report.md" "$fiber" "$have_go" ||
      fail "report.md lacks what issue 21 asks for (above; see $dir/report.md)"
    # The Results table: a cell that holds no figure reads "failed [n]" (the footnote says
    # why) or "n/a [n]" (not available here: Go, clone tasks, split stacks may not be).  No
    # weft column (weft, weft-copy, weft-copy256, weft-segmented) and not pthread may fail.
    failed=$(awk -F'|' '
      /^## Results/ { on = 1; next }
      on && /^## / { exit }
      on && /^\|  \|/ { for (i = 3; i < NF; i++) { n = $i; gsub(/ /, "", n); watch[i] = (n ~ /^weft/ || n == "pthread") ? n : ""; seen += n == "pthread" } next }
      on && /^\| / { r = $2; gsub(/^ +| +$/, "", r); for (i in watch) if (watch[i] != "" && $i ~ /failed \[/) printf "  %s: %s\n", watch[i], r }
      END { if (!seen) print "  (none: the Results table has no pthread column)" }
    ' "$dir/report.md")
    if [ -n "$failed" ]; then
      echo "report.md: failed cells in the weft or pthread columns (column: row):" >&2
      echo "$failed" >&2
      sed -n '/^## Notes/,$p' "$dir/report.md" >&2
      fail "workloads failed on weft or pthread"
    fi
    # The SVG must render: rsvg-convert (librsvg2-bin, installed by .ci/deps) parses it all.
    command -v rsvg-convert >/dev/null ||
      fail "rsvg-convert not installed: cannot check ratios.svg (run .ci/deps, or apt-get install librsvg2-bin)"
    rsvg-convert "$dir/ratios.svg" >/dev/null || fail "rsvg-convert cannot render $dir/ratios.svg"
    ;;
  servers)
    # --servers runs weft-netbench after the report (issue 18): its table lands in servers.txt
    # and at the end of report.md, with a weft echo row that measured requests.
    dir=${3:-$(mktemp -d)}
    rm -rf "$dir"
    "$bin" --quick --servers --only spawn,weft --out "$dir" >"$dir.table" || fail "weft-compare --servers exited $?"
    [ -s "$dir/servers.txt" ] || fail "$dir/servers.txt missing or empty (see $dir.table)"
    grep -qE '^1 +weft-echo +50 +[1-9][0-9]* ' "$dir/servers.txt" || fail "servers.txt: no weft echo row with requests/s: $(cat "$dir/servers.txt")"
    if command -v go >/dev/null; then
      grep -qE '^1 +go-echo +50 +[1-9][0-9]* ' "$dir/servers.txt" || fail "servers.txt: no Go echo row: $(cat "$dir/servers.txt")"
    fi
    grep -q '^## Servers (weft-netbench)' "$dir/report.md" || fail "report.md: no Servers section"
    ! grep -q 'weft-netbench failed' "$dir/servers.txt" || fail "weft-netbench failed: $(cat "$dir/servers.txt")"
    ;;
  *) fail "unknown mode $mode" ;;
esac
echo "ok: $mode"
