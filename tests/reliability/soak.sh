#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# soak.sh — weft-stress for a long run, with its memory watched from outside (issue 9).
#
#   tests/reliability/soak.sh PATH/TO/weft-stress SECONDS [weft-stress args...]
#
# Passes when weft-stress passes (every checksum held) and memory is flat.  RSS is read from
# /proc several times a second.  A single reading says little: the scan phase gives pooled
# stacks back every 100 ms and the goroutines' random depths come and go, so RSS swings between
# about 8 and 55 MiB from one second to the next.  So the run is cut into windows (a minute
# each; a tenth of the run if it is shorter than ten minutes) and "flat" means: the mean RSS of
# the last window is within 10% of the mean RSS of the second window (the minute right after
# the first).  A leak lifts every later window's mean; the swings average out (window means
# stayed within 22-26 MiB over a 10-minute run here, while single peaks reached 55 MiB, which
# is why peaks are printed but not judged).  The table of windows (mean and peak) is printed.
set -euo pipefail
bin=${1:?usage: soak.sh weft-stress SECONDS [args...]}
seconds=${2:?usage: soak.sh weft-stress SECONDS [args...]}
shift 2
window=60
if (( seconds < 600 )); then window=$(( seconds / 10 > 0 ? seconds / 10 : 1 )); fi

out=$(mktemp) samples=$(mktemp)
trap 'rm -f "$out" "$samples"' EXIT
"$bin" --seconds "$seconds" "$@" >"$out" 2>&1 &
pid=$!
t0=$(date +%s%N)
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' /proc/$pid/status 2>/dev/null || true)
  [[ -n "$rss" ]] && echo "$(( ($(date +%s%N) - t0) / 1000000 )) $rss" >>"$samples"
  sleep 0.1
done
status=0
wait "$pid" || status=$?
cat "$out"
awk -v w="$window" -v status="$status" '
  { win = int($1 / 1000 / w); n[win]++; sum[win] += $2; if ($2 > max[win]) max[win] = $2; if (win > last) last = win }
  END {
    # The last window is cut short by the exit: use the last full one.
    if (n[last] < n[1] * 0.9 && last > 1) last--
    for (i = 0; i <= last; i++)
      printf "window %2d (%4d-%4d s): RSS mean %6d KiB, peak %6d KiB, %d samples\n", i, i * w, (i + 1) * w, sum[i] / n[i], max[i], n[i]
    base = sum[1] / n[1]; end = sum[last] / n[last]
    printf "mean RSS: %d KiB in the window after the first, %d KiB in the last; weft-stress exit status %d\n", base, end, status
    if (status != 0) { print "soak: FAILED: weft-stress failed"; exit 1 }
    if (last < 2) { print "soak: FAILED: too few samples"; exit 1 }
    if (end * 10 > base * 11) { print "soak: FAILED: the last window averages more than 10% above the second"; exit 1 }
    print "soak: passed"
  }' "$samples"
