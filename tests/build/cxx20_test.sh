#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cxx20_test.sh — weft's headers compiled without C++20 stop at one clear line (issue 19.4):
# every public header, alone, with the compiler's default standard and with -std=c++17, gives
# exactly one error, and it says "weft needs C++20".  With -std=c++20 they compile.
# Usage: cxx20_test.sh CXX SOURCE_DIR
set -uo pipefail
cxx=$1 src=$2
fail=0
cd "$src/include" || exit 1
for h in weft/*.hpp weft/*/*.hpp; do
  for std in "" -std=c++17; do
    # shellcheck disable=SC2086
    out=$(printf '#include <%s>\nint main() {}\n' "$h" | "$cxx" $std -fsyntax-only -I. -x c++ - 2>&1)
    n=$(grep -c 'error:' <<<"$out")
    if [ "$n" -ne 1 ] || ! grep -q 'error.*weft needs C++20' <<<"$out"; then
      echo "FAIL: $h with '${std:-the default standard}': $n lines with 'error:', not one saying 'weft needs C++20':" >&2
      head -n 12 <<<"$out" >&2
      fail=1
    fi
  done
  out=$(printf '#include <%s>\nint main() {}\n' "$h" | "$cxx" -std=c++20 -fsyntax-only -I. -x c++ - 2>&1) ||
    { echo "FAIL: $h does not compile with -std=c++20:" >&2; head -n 12 <<<"$out" >&2; fail=1; }
done
[ "$fail" -eq 0 ] && echo "ok: every header stops at one line without C++20"
exit "$fail"
