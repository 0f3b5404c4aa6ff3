#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# valgrind_test.sh — runs tests/valgrind/vg_program under a valgrind tool with valgrind's own
# defaults and no WEFT_* variables (README, "Running under valgrind"), and checks three things:
# valgrind did not die, the program's output is right, and valgrind reported nothing (no
# error, and none of its "client switching stacks?" warnings, which mean it took a goroutine
# switch for a huge stack frame).  Exit 77 (skipped) if valgrind is not installed.
#
# usage: valgrind_test.sh PROGRAM [memcheck|helgrind|drd] [extra valgrind arguments...]
#   memcheck (the default) is what the test checks; helgrind and drd only run the program
#   and show what they say (exit 0 if the output is right, whatever they report).
set -uo pipefail
prog=${1:?usage: valgrind_test.sh PROGRAM [memcheck|helgrind|drd] [valgrind args...]}
tool=${2:-memcheck}
shift $(( $# >= 2 ? 2 : 1 ))
if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind is not installed (.ci/deps installs it): skipped"
  exit 77
fi

out=$(mktemp) log=$(mktemp)
trap 'rm -f "$out" "$log"' EXIT
# The defaults are what is tested: drop every WEFT_* variable the caller may have set.
unset_weft=()
while IFS='=' read -r name _; do
  case $name in WEFT_*) unset_weft+=(-u "$name") ;; esac
done < <(env)

start=$(date +%s)
env "${unset_weft[@]}" valgrind --tool="$tool" --error-exitcode=97 "$@" "$prog" >"$out" 2>"$log"
status=$?
secs=$(( $(date +%s) - start ))
cat "$log" "$out"
echo "--- valgrind --tool=$tool: exit status $status after ${secs}s"

fail=0
expected='fan-out/in: 2000 goroutines parked at once, sum 5999000
deep recursion: 8 goroutines, 300 levels of 1 KiB frames, sum right
stacks grew: yes
pipeline: sum of squares to 1000 = 333833500
ok'
if [ "$(cat "$out")" != "$expected" ]; then
  echo "FAIL: the program's output is not what it should be; expected:"
  echo "$expected"
  fail=1
fi
if [ "$tool" = memcheck ]; then
  if [ "$status" -ne 0 ]; then
    echo "FAIL: exit status $status (97: memcheck reported errors)"
    fail=1
  fi
  if ! grep -q 'ERROR SUMMARY: 0 errors from 0 contexts' "$log"; then
    echo "FAIL: memcheck reported errors (or did not finish): $(grep 'ERROR SUMMARY' "$log" || echo 'no ERROR SUMMARY')"
    fail=1
  fi
  if grep -q 'client switching stacks' "$log"; then
    echo "FAIL: valgrind took a stack switch for a stack frame (goroutine stacks not registered?)"
    fail=1
  fi
fi
[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
