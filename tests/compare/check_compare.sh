#!/usr/bin/env bash
# Checks weft-compare's command line and outputs (tests/compare/CMakeLists.txt, meson.build).
# Usage: check_compare.sh WEFT_COMPARE MODE [OUT_DIR]
#   help      --help exits 0 and prints the usage on stdout
#   bad-args  unknown flags, a bad --only name, --quick with --full, a bad --depth: exit 2,
#             the usage on stderr
#   quick     a --quick run exits 0, prints its table, writes report.md with no failed cell in
#             the weft or pthread columns and a ratios.svg that rsvg-convert renders
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
    rm -rf "$dir"
    # weft-compare exits 0 even when workloads fail (it records them and goes on): the
    # outputs are what say whether the weft and pthread columns measured anything.
    "$bin" --quick --out "$dir" >"$dir.table" || fail "weft-compare --quick exited $?"
    for f in report.md ratios.svg; do [ -s "$dir/$f" ] || fail "$dir/$f missing or empty"; done
    { grep -q '^spawn+join, batched ' "$dir.table" && grep -q '^ .* 1\.0× ' "$dir.table"; } ||
      fail "no table with ratios to pthread on stdout (see $dir.table)"
    grep -q '^| how many fit' "$dir/report.md" || fail "report.md has no results table"
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
  *) fail "unknown mode $mode" ;;
esac
echo "ok: $mode"
