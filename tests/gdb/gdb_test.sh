#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# gdb_test.sh — tools/gdb/weft.py in gdb's batch mode, on a live process and on a core file of
# it (issue 15, part 2).  gdb_program parks goroutines on a channel receive, a mutex, a sleep
# and at the bottom of a recursion of `descend`, keeps one running, and prints their ids.
# For each of (a) gdb attached to the live program and (b) gdb on a core file written by
# gcore, it checks that `info goroutines` lists each of them with its state, wait reason and
# the function it parked in, and that `goroutine N bt` shows the named functions in order.
# Exit 77 (skipped) when gdb, its Python or ptrace is not available, saying which.
#
# usage: gdb_test.sh PROGRAM WEFT_PY WORKDIR [embedded]
#   The core file goes in WORKDIR (removed on success).  `embedded`: weft was built with the
#   script in .debug_gdb_scripts (tools/gdb/embed.py), so check that gdb auto-loads it too.
set -uo pipefail
prog=${1:?usage: gdb_test.sh PROGRAM WEFT_PY WORKDIR}
script=${2:?usage: gdb_test.sh PROGRAM WEFT_PY WORKDIR}
workdir=${3:?usage: gdb_test.sh PROGRAM WEFT_PY WORKDIR}
embedded=${4:-}

skip() { echo "skipped: $*"; exit 77; }
command -v gdb >/dev/null 2>&1 || skip "gdb is not installed (.ci/deps installs it)"
[ "$(gdb -nx -batch -ex 'python print(6*7)' 2>/dev/null)" = 42 ] || skip "this gdb has no Python"
if [ "$(id -u)" -ne 0 ] && [ "$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)" -ge 1 ]; then
  skip "ptrace of a non-child needs root here (kernel.yama.ptrace_scope=$(cat /proc/sys/kernel/yama/ptrace_scope))"
fi
[ -r "$script" ] || { echo "FAIL: no script at $script"; exit 1; }

out=$(mktemp) gdbout=$(mktemp)
core="$workdir/gdb_test.core"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -f "$out" "$gdbout"' EXIT
fail=0

# Starts the program with the given environment and waits for its "ready" line.
start() {
  # Emptied first, here: the background job's own redirection truncates it only once that job
  # runs, and the loop below could meanwhile find the previous run's "ready".
  : >"$out"
  env "$@" "$prog" >"$out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    grep -q '^ready$' "$out" && break
    kill -0 "$pid" 2>/dev/null || { cat "$out"; echo "FAIL: the program exited before it was ready"; exit 1; }
    sleep 0.1
  done
  grep -q '^ready$' "$out" || { cat "$out"; echo "FAIL: the program was not ready after 10 s"; exit 1; }
  for role in recv mutex sleep deep running main; do
    declare -g "id_$role=$(awk -v r="$role" '$1 == r { print $2 }' "$out")"
  done
}
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=; }

# The gdb commands both runs use, each output after a marker line.
add_bt() { queries+=(-ex "echo ==bt $1\\n" -ex "goroutine $2 bt"); }
make_queries() {
  queries=(-ex "source $script" -ex 'echo ==info\n' -ex 'info goroutines')
  add_bt recv "$id_recv"; add_bt mutex "$id_mutex"; add_bt sleep "$id_sleep"
  add_bt deep "$id_deep"; add_bt running "$id_running"
}

# The text between marker "==$1" and the next marker.
section() { awk -v m="==$1" '$0 == m { on = 1; next } /^==/ { on = 0 } on' "$gdbout"; }

expect_line() {  # what, regex
  if ! grep -Eq -- "$2" <<<"$(section info)"; then
    echo "FAIL ($mode): info goroutines has no line for $1 matching: $2"
    fail=1
  fi
}

# The backtrace of $1 names each of the following functions, in this order (each a regex on
# a frame line), and starts at frame #0.
expect_bt() {
  local who=$1 text
  shift
  text=$(section "bt $who")
  if ! grep -q '^#0 ' <<<"$text"; then
    echo "FAIL ($mode): goroutine bt for $who has no frame #0:"; echo "$text"; fail=1; return
  fi
  local line=0 n
  for fn in "$@"; do
    n=$(grep -nE -- "$fn" <<<"$text" | awk -F: -v after="$line" '$1 > after { print $1; exit }')
    if [ -z "$n" ]; then
      echo "FAIL ($mode): goroutine bt for $who: no frame matching '$fn' after frame line $line"
      fail=1; return
    fi
    line=$n
  done
}

check() {
  echo "--- $mode"
  cat "$gdbout"
  expect_line recv    "^  +$id_recv +waiting +chan receive +.*park_on_recv \\(gdb_program.cpp:"
  expect_line mutex   "^  +$id_mutex +waiting +mutex lock +.*park_on_mutex \\(gdb_program.cpp:"
  expect_line sleep   "^  +$id_sleep +waiting +sleep +.*park_in_sleep \\("
  expect_line deep    "^  +$id_deep +waiting +chan receive +.*park_at_bottom \\(gdb_program.cpp:"
  expect_line main    "^  +$id_main +waiting +sleep +.*main_goroutine \\(gdb_program.cpp:"
  expect_line running "^\\* +$id_running +running +- +.*\\[on thread [0-9]+ \\(LWP [0-9]+\\)\\]"
  expect_bt recv  'weft::detail::park[ (]' 'chan_recv' 'park_on_recv' 'goroutine_entry'
  expect_bt mutex 'weft::detail::park[ (]' 'mutex_lock_slow' 'park_on_mutex' 'goroutine_entry'
  expect_bt sleep 'weft::detail::park[ (]' 'sleep_until' 'park_in_sleep' 'goroutine_entry'
  local d='[^a-z_]descend '
  expect_bt deep 'chan_recv' 'park_at_bottom' "$d" "$d" "$d" "$d" "$d" "$d" 'main_goroutine' 'goroutine_entry'
  expect_bt running 'usleep' 'spin_in_usleep' 'goroutine_entry'
  if grep -q 'Python Exception\|Error occurred in Python' "$gdbout"; then
    echo "FAIL ($mode): the script raised"; fail=1
  fi
}

# (a) Live, with the runtime's default guards.
start
make_queries
attach_err=$(timeout 60 gdb -nx -batch -p "$pid" "${queries[@]}" 2>&1 >"$gdbout")
if grep -q 'ptrace: Operation not permitted\|Could not attach' <<<"$attach_err"; then
  skip "gdb cannot attach here: $(head -1 <<<"$attach_err")"
fi
if { cat "$gdbout"; echo "$attach_err"; } | grep -q 'no symbol weft::detail::g_current'; then
  skip "weft was built without debug info (the script reads weft's types): use RelWithDebInfo or -g"
fi
mode=live
check
stop

# (b) A core file.  gcore reads the process 1 MiB at a time, and a read that meets a
# MADV_GUARD_INSTALL guard page (WEFT_GUARD=automatic on Linux 6.13+) fails for the whole MiB,
# which gdb 13 then writes as zeros: goroutine stacks would be lost.  mprotect guards are
# mappings of their own, which gcore skips.
start WEFT_GUARD=mprotect
make_queries
rm -f "$core"
if ! timeout 60 gdb -nx -batch -p "$pid" -ex "gcore $core" >"$gdbout" 2>&1 || [ ! -s "$core" ]; then
  cat "$gdbout"; echo "FAIL: gcore wrote no core file"; exit 1
fi
stop
timeout 60 gdb -nx -batch "$prog" "$core" "${queries[@]}" >"$gdbout" 2>&1
mode=core
check

# (c) Auto-loading: the copy of weft.py in the .debug_gdb_scripts section of the program (a
# static weft) or of libweft.so, put there by tools/gdb/embed.py, loaded by gdb itself once
# the path is trusted.
if [ "$embedded" = embedded ]; then
  timeout 60 gdb -nx -batch -iex 'set auto-load safe-path /' "$prog" "$core" \
    -ex 'echo ==scripts\n' -ex 'info auto-load python-scripts' -ex 'echo ==info\n' -ex 'info goroutines' >"$gdbout" 2>&1
  mode=auto-load
  echo "--- $mode"
  cat "$gdbout"
  if ! section scripts | grep -Eq '^Yes +weft/gdb/weft\.py'; then
    echo "FAIL ($mode): gdb did not load weft/gdb/weft.py from a .debug_gdb_scripts section"; fail=1
  fi
  expect_line deep "^  +$id_deep +waiting +chan receive +.*park_at_bottom \\(gdb_program.cpp:"
else
  echo "--- auto-load not checked: weft was built without the embedded script (no Python 3 when configured)"
fi

if [ "$fail" -eq 0 ]; then
  rm -f "$core"
  echo "PASS"
fi
exit "$fail"
