#!/usr/bin/env bash
# Checks weft-compare's command line and outputs (tests/compare/CMakeLists.txt, meson.build).
# Usage: check_compare.sh WEFT_COMPARE MODE [OUT_DIR]
#   help      --help exits 0 and prints the usage on stdout
#   bad-args  unknown flags, a bad --only name, --quick with --full, a bad --depth: exit 2,
#             the usage on stderr
#   quick     a --quick run exits 0 and writes report.md and a well-formed ratios.svg
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
    "$bin" --quick --out "$dir" >"$dir.table" || fail "weft-compare --quick exited $?"
    for f in report.md ratios.svg; do [ -s "$dir/$f" ] || fail "$dir/$f missing or empty"; done
    grep -q 'ratio' "$dir.table" || fail "no table on stdout"
    grep -q '^| how many fit' "$dir/report.md" || fail "report.md has no results table"
    if command -v python3 >/dev/null; then
      python3 -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); assert d.documentElement.tagName == "svg"' \
        "$dir/ratios.svg" || fail "ratios.svg is not well-formed SVG"
    elif command -v xmllint >/dev/null; then
      xmllint --noout "$dir/ratios.svg" || fail "ratios.svg is not well-formed XML"
    else
      echo "neither python3 nor xmllint: the SVG was not parsed" >&2
    fi
    ;;
  *) fail "unknown mode $mode" ;;
esac
echo "ok: $mode"
